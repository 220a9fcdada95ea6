/**
 * WGSL fused dequantize + matrix-vector product `y = W x` for q4_0, q8_0 and nf4 weights: one
 * workgroup of 64 threads per row, each thread dequantizing whole blocks and accumulating against
 * `x`, then a tree reduction. Results agree with the CPU within float32 summation tolerance (the
 * summation order differs).
 * @module
 */
import { byteReaders, HALF_WGSL, PARAMS_WGSL } from "./common.ts";
import { NF4_CODEBOOK_WGSL } from "./nf4.ts";

const REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, 64>;
fn reduce_store(lid: u32, acc: f32, row: u32) {
  red[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { y[row] = red[0]; }
}
`;

const ENTRY = /* wgsl */ `@compute @workgroup_size(64)
fn gemv(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
)`;

const BLOCK_DOT: Record<"q4_0" | "q8_0", string> = {
  q4_0: /* wgsl */ `
const BPB: u32 = 18u;
fn block_dot(base: u32, xb: u32) -> f32 {
  let d = f16_bits_to_f32(w_u16(base));
  var s = 0.0;
  for (var k = 0u; k < 4u; k = k + 1u) {
    let q = w_u32(base + 2u + 4u * k);
    let lo = vec4<f32>(vec4<u32>(q & 15u, (q >> 8u) & 15u, (q >> 16u) & 15u, (q >> 24u) & 15u));
    let hq = q >> 4u;
    let hi = vec4<f32>(vec4<u32>(hq & 15u, (hq >> 8u) & 15u, (hq >> 16u) & 15u, (hq >> 24u) & 15u));
    s = s + dot(lo - vec4<f32>(8.0), x[xb + k]) + dot(hi - vec4<f32>(8.0), x[xb + 4u + k]);
  }
  return d * s;
}
`,
  q8_0: /* wgsl */ `
const BPB: u32 = 34u;
fn block_dot(base: u32, xb: u32) -> f32 {
  let d = f16_bits_to_f32(w_u16(base));
  var s = 0.0;
  for (var k = 0u; k < 8u; k = k + 1u) {
    let q = w_u32(base + 2u + 4u * k);
    let v = vec4<i32>(i32(q << 24u) >> 24u, i32(q << 16u) >> 24u, i32(q << 8u) >> 24u, i32(q) >> 24u);
    s = s + dot(vec4<f32>(v), x[xb + k]);
  }
  return d * s;
}
`,
};

/**
 * GEMV for a 32-element block type. Bindings: 1 `wq` u32 (weight rows of the chunk, read),
 * 2 `x` vec4<f32> (read), 3 `y` f32 (write). `P.n` = rows in the chunk, `P.a` = blocks per row.
 */
export function gemvBlock32Wgsl(type: "q4_0" | "q8_0"): string {
  return /* wgsl */ `
${PARAMS_WGSL}
${HALF_WGSL}
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${byteReaders("wq", "w")}
${BLOCK_DOT[type]}
${REDUCE}
${ENTRY} {
  let row = group_index(wid, nwg);
  if (row >= P.n) { return; }
  let nbr = P.a;
  var acc = 0.0;
  for (var b = lid; b < nbr; b = b + 64u) {
    acc = acc + block_dot((row * nbr + b) * BPB, b * 8u);
  }
  reduce_store(lid, acc, row);
}
`;
}

/**
 * GEMV for NF4 weights stored flattened (row-major) with one absmax per `P.b` values.
 * Bindings: 1 `codes` u32, 2 `absmax` f32, 3 `x` f32 (read), 4 `y` f32 (write). `P.n` = rows in
 * the chunk, `P.a` = columns, `P.b` = block size, `P.c` = index of the chunk's first value in its
 * first code byte (0 or 1), `P.d` = index of that value in its first block, `P.e` = 1 when every
 * row starts on a word of codes and a block boundary is never inside a group of 8.
 */
export function gemvNf4Wgsl(): string {
  return /* wgsl */ `
${PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> absmax: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${byteReaders("codes", "c")}
${NF4_CODEBOOK_WGSL}
${REDUCE}
${ENTRY} {
  load_codebook(lid);
  workgroupBarrier();
  let row = group_index(wid, nwg);
  if (row >= P.n) { return; }
  let cols = P.a;
  let rowStart = row * cols;
  var acc = 0.0;
  if (P.e == 1u) {
    // 8 values per step: one word of codes, one absmax
    let words = cols >> 3u;
    let w0 = rowStart >> 3u;
    for (var k = lid; k < words; k = k + 64u) {
      let word = codes[w0 + k];
      let am = absmax[(rowStart + 8u * k + P.d) / P.b];
      var s = 0.0;
      for (var j = 0u; j < 4u; j = j + 1u) {
        let byte = (word >> (8u * j)) & 0xffu;
        s = s + CB[byte >> 4u] * x[8u * k + 2u * j] + CB[byte & 15u] * x[8u * k + 2u * j + 1u];
      }
      acc = acc + am * s;
    }
  } else {
    for (var c = lid; c < cols; c = c + 64u) {
      let e = rowStart + c;
      let ni = e + P.c;
      let byte = c_byte(ni >> 1u);
      let code = select(byte & 15u, byte >> 4u, (ni & 1u) == 0u);
      acc = acc + (CB[code] * absmax[(e + P.d) / P.b]) * x[c];
    }
  }
  reduce_store(lid, acc, row);
}
`;
}
