/**
 * WGSL skeletons for the 32-element ggml block types (q4_0, q8_0). Quantize: a workgroup of 64
 * threads loads 64 blocks (2048 floats) coalesced into workgroup memory, each thread encodes one
 * block into words it ORs into a shared output tile, and the tile is stored coalesced (64 blocks
 * of 18 or 34 bytes is a whole number of words). Dequantize: one thread per 4 outputs.
 * @module
 */
import { dequantizeKernelWgsl, DIV_WGSL, HALF_WGSL, PARAMS_WGSL } from "./common.ts";

/** What a 32-element block type contributes to the skeletons. */
export interface Block32Format {
  /** ggml type name. */
  name: string;
  /** Bytes per block. */
  bytes: number;
  /**
   * WGSL `fn encode_block(o: u32, off: u32, w: ptr<function, array<u32, LW>>)`: encodes the 32
   * floats at `tile[o..o+32)` into bytes `off..off+bytes` of `w` via `put(w, k, byte)`.
   */
  encode: string;
  /**
   * WGSL `fn decode4(base: u32, j: u32) -> vec4<f32>`: values `j..j+3` of the block whose first
   * byte is `base`, read with `s_byte / s_u16 / s_u32`.
   */
  decode: string;
}

/** Blocks per quantize workgroup. */
export const BLOCKS_PER_GROUP = 64;

/**
 * Quantize kernel. Bindings: 1 `src` f32 (read), 2 `dst` u32 (write). `P.n` = blocks in the chunk.
 */
export function block32QuantizeWgsl(f: Block32Format): string {
  const wpg = (BLOCKS_PER_GROUP * f.bytes) / 4;
  const lw = Math.ceil((f.bytes + 2) / 4);
  return /* wgsl */ `
${PARAMS_WGSL}
${HALF_WGSL}
${DIV_WGSL}
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

const BPB: u32 = ${f.bytes}u;
const WPG: u32 = ${wpg}u;
const LW: u32 = ${lw}u;
var<workgroup> tile: array<f32, 2112>;
var<workgroup> outw: array<atomic<u32>, ${wpg}>;

fn put(w: ptr<function, array<u32, ${lw}>>, k: u32, v: u32) {
  (*w)[k >> 2u] = (*w)[k >> 2u] | ((v & 0xffu) << ((k & 3u) * 8u));
}

${f.encode}

@compute @workgroup_size(64)
fn quantize(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = group_index(wid, nwg);
  let first = g * 64u;
  if (first >= P.n) { return; }
  let nb = min(64u, P.n - first);
  let n = nb * 32u;
  let base = first * 32u;
  for (var i = lid; i < 2048u; i = i + 64u) {
    var v = 0.0;
    if (i < n) { v = src[base + i]; }
    tile[(i >> 5u) * 33u + (i & 31u)] = v;
  }
  for (var i = lid; i < WPG; i = i + 64u) { atomicStore(&outw[i], 0u); }
  workgroupBarrier();
  if (lid < nb) {
    var w: array<u32, ${lw}>;
    let start = lid * BPB;
    encode_block(lid * 33u, start & 3u, &w);
    let wb = start >> 2u;
    for (var k = 0u; k < LW; k = k + 1u) {
      if (w[k] != 0u) { atomicOr(&outw[wb + k], w[k]); }
    }
  }
  workgroupBarrier();
  let words = (nb * BPB + 3u) / 4u;
  for (var i = lid; i < words; i = i + 64u) { dst[g * WPG + i] = atomicLoad(&outw[i]); }
}
`;
}

/**
 * Dequantize kernel, one thread per 4 values. Bindings: 1 `src` u32 (read), 2 `dst` vec4<f32>
 * (write). `P.n` = values / 4 in the chunk.
 */
export function block32DequantizeWgsl(f: Block32Format): string {
  return dequantizeKernelWgsl(f.decode, 5, f.bytes);
}
