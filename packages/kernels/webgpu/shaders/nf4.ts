/**
 * WGSL for bitsandbytes NF4: blockwise absmax + codes, and dequantization. Semantics follow
 * bitsandbytes' CUDA kernel: `scaled = x * (1/absmax)` with a correctly rounded reciprocal, code =
 * number of the 15 float32 codebook midpoints strictly below `scaled`, two codes per byte (first
 * in the HIGH nibble), an odd length pads a 0.0 element, an all-zero block stores codes 0.
 * @module
 */
import { NF4_CODEBOOK } from "../../nf4.ts";
import { DIV_WGSL, PARAMS_WGSL } from "./common.ts";

/** The NF4 codebook (bitsandbytes), index 0..15, as float32. */
export const NF4_CODEBOOK_F32: Float32Array = NF4_CODEBOOK;

/** The 15 midpoints `float32((c[i] + c[i+1]) / 2)` the encoder compares against. */
export const NF4_MIDPOINTS_F32: Float32Array = (() => {
  const c = NF4_CODEBOOK_F32, fr = Math.fround;
  return new Float32Array(15).map((_, i) => fr(fr(c[i] + c[i + 1]) / 2));
})();

/** A float32 constant as an exact WGSL expression. */
export function f32Literal(x: number): string {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return `bitcast<f32>(0x${u.toString(16).padStart(8, "0")}u)`;
}

/** WGSL `fn nf4_encode(s: f32) -> u32`: the code of a scaled value (NaN -> 0). */
export const NF4_ENCODE_WGSL = `
fn nf4_encode(s: f32) -> u32 {
  var c = 0u;
${[...NF4_MIDPOINTS_F32].map((m) => `  c = c + select(0u, 1u, s > ${f32Literal(m)});`).join("\n")}
  return c;
}
`;

/** WGSL filling `var<workgroup> CB: array<f32, 16>` from thread `lid` (call before a barrier). */
export const NF4_CODEBOOK_WGSL = `
var<workgroup> CB: array<f32, 16>;
fn load_codebook(lid: u32) {
  switch (lid) {
${
  [...NF4_CODEBOOK_F32].map((c, i) => `    case ${i}u: { CB[${i}] = ${f32Literal(c)}; }`).join("\n")
}
    default: {}
  }
}
`;

/**
 * Quantize kernel with two entry points. `absmax_pass`: one workgroup of 64 threads per block
 * writes `absmax` and `inv = 1/absmax`. `codes_pass`: one thread per output word (8 codes).
 * Bindings: 1 `src` f32 (read), 2 `inv` f32 (scratch), 3 `absmax` f32 (write), 4 `codes` u32
 * (write). `P.n` = values in the chunk, `P.a` = block size, `P.b` = blocks, `P.c` = words.
 */
export function nf4QuantizeWgsl(): string {
  return /* wgsl */ `
${PARAMS_WGSL}
${DIV_WGSL}
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> inv: array<f32>;
@group(0) @binding(3) var<storage, read_write> absmax: array<f32>;
@group(0) @binding(4) var<storage, read_write> codes: array<u32>;
${NF4_ENCODE_WGSL}
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn absmax_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = group_index(wid, nwg);
  if (blk >= P.b) { return; }
  let start = blk * P.a;
  let end = min(start + P.a, P.n);
  var m = 0.0;
  for (var i = start + lid; i < end; i = i + 64u) { m = max(m, abs(src[i])); }
  red[lid] = m;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let a = red[0];
    absmax[blk] = a;
    inv[blk] = select(div_exact(1.0, a), 0.0, is_zero_bits(a));
  }
}

fn code_of(e: u32) -> u32 {
  let blk = min(e / P.a, P.b - 1u);
  if (is_zero_bits(absmax[blk])) { return 0u; }
  var x = 0.0;
  if (e < P.n) { x = src[e]; }
  return nf4_encode(x * inv[blk]);
}

@compute @workgroup_size(256)
fn codes_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = group_index(wid, nwg) * 256u + lid;
  if (w >= P.c) { return; }
  var word = 0u;
  for (var k = 0u; k < 4u; k = k + 1u) {
    let e = w * 8u + 2u * k;
    word = word | (((code_of(e) << 4u) | code_of(e + 1u)) << (8u * k));
  }
  codes[w] = word;
}
`;
}

/**
 * Dequantize kernel, one thread per 8 values (one word of codes). Bindings: 1 `codes` u32 (read),
 * 2 `absmax` f32 (read), 3 `dst` f32 (write). `P.n` = values in the chunk, `P.a` = block size.
 */
export function nf4DequantizeWgsl(): string {
  return /* wgsl */ `
${PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> absmax: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
${NF4_CODEBOOK_WGSL}

@compute @workgroup_size(256)
fn dequantize(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  load_codebook(lid);
  workgroupBarrier();
  let w = group_index(wid, nwg) * 256u + lid;
  let e0 = w * 8u;
  if (e0 >= P.n) { return; }
  let word = codes[w];
  for (var k = 0u; k < 8u; k = k + 1u) {
    let e = e0 + k;
    if (e < P.n) {
      let code = (word >> (8u * (k >> 1u) + 4u * (1u - (k & 1u)))) & 15u;
      dst[e] = CB[code] * absmax[e / P.a];
    }
  }
}
`;
}
