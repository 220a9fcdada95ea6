/**
 * WGSL helpers shared by every QuantX kernel. They make the GPU produce the CPU's exact bits even
 * where WGSL leaves results open:
 * - `f32_to_f16_bits` is ggml's fp32 -> fp16 (round to nearest even, subnormals kept, NaN ->
 *   0x7E00) in integer ops, since `pack2x16float` rounding is implementation-defined;
 * - `f16_bits_to_f32` widens exactly, subnormals included;
 * - `div_exact` is a correctly rounded float32 division done by integer long division, since WGSL's
 *   `/` may be off by 2.5 ulp;
 * - `opq` passes a product through an XOR with a uniform zero the compiler cannot see, so
 *   `a * b + c` can never be contracted into a fused multiply-add (ggml rounds the product).
 * @module
 */

/** Workgroups per dimension used for 2D dispatch before spilling into `y`. */
export const MAX_GROUPS_X = 65535;

/**
 * The uniform every kernel reads (8 x u32 = 32 bytes). `zero` must be 0 (see `opq`); the other
 * fields' meanings are documented by each kernel.
 */
export const PARAMS_WGSL = /* wgsl */ `
struct Params { n: u32, zero: u32, a: u32, b: u32, c: u32, d: u32, e: u32, f: u32 }
@group(0) @binding(0) var<uniform> P: Params;

fn opq(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ P.zero); }

// linear workgroup index of a 2D dispatch
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/** Exact fp16 <-> fp32 conversions on bit patterns. */
export const HALF_WGSL = /* wgsl */ `
fn f32_to_f16_bits(x: f32) -> u32 {
  let w = bitcast<u32>(x);
  let sign = (w >> 16u) & 0x8000u;
  let a = w & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u; }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }
  if (a >= 0x38800000u) {
    let m = a - 0x38000000u;
    return sign | ((m + 0x0fffu + ((m >> 13u) & 1u)) >> 13u);
  }
  let e = a >> 23u;
  if (e < 102u) { return sign; }
  let mant = (a & 0x7fffffu) | 0x800000u;
  let shift = 126u - e;
  let q = mant >> shift;
  let rem = mant & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  let up = rem > half || (rem == half && (q & 1u) == 1u);
  return sign | (q + select(0u, 1u, up));
}

fn f16_bits_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    let v = f32(m) * bitcast<f32>(0x33800000u);
    return bitcast<f32>(bitcast<u32>(v) | sign);
  }
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}
`;

/** Correctly rounded float32 division (round to nearest even, subnormal results included). */
export const DIV_WGSL = /* wgsl */ `
fn div_exact(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let sign = (ua ^ ub) & 0x80000000u;
  var ea = i32((ua >> 23u) & 0xffu);
  var eb = i32((ub >> 23u) & 0xffu);
  var ma = ua & 0x7fffffu;
  var mb = ub & 0x7fffffu;
  if (eb == 0 && mb == 0u) {
    if (ea == 0 && ma == 0u) { return bitcast<f32>(0x7fc00000u); }
    return bitcast<f32>(sign | 0x7f800000u);
  }
  if (ea == 0 && ma == 0u) { return bitcast<f32>(sign); }
  if (ea == 0) {
    let s = countLeadingZeros(ma) - 8u;
    ma = ma << s;
    ea = 1 - i32(s);
  } else {
    ma = ma | 0x800000u;
  }
  if (eb == 0) {
    let s = countLeadingZeros(mb) - 8u;
    mb = mb << s;
    eb = 1 - i32(s);
  } else {
    mb = mb | 0x800000u;
  }
  var e = ea - eb + 127;
  if (ma < mb) {
    ma = ma << 1u;
    e = e - 1;
  }
  var r = ma;
  var q = 0u;
  for (var i = 0u; i < 24u; i = i + 1u) {
    q = q << 1u;
    if (r >= mb) {
      r = r - mb;
      q = q | 1u;
    }
    r = r << 1u;
  }
  if (e >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  if (e >= 1) {
    var bits = (u32(e) << 23u) | (q & 0x7fffffu);
    if (r > mb || (r == mb && (q & 1u) == 1u)) { bits = bits + 1u; }
    return bitcast<f32>(sign | bits);
  }
  let shift = u32(1 - e);
  if (shift > 24u) { return bitcast<f32>(sign); }
  let m = q >> shift;
  let rem = q & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  let up = rem > half || (rem == half && (r != 0u || (m & 1u) == 1u));
  return bitcast<f32>(sign | (m + select(0u, 1u, up)));
}

fn is_zero_bits(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0u; }
`;

/**
 * WGSL reading bytes and unaligned words from a `array<u32>` storage buffer named `buf`:
 * `<fn>_byte(i)`, `<fn>_u16(i)` and `<fn>_u32(i)` (little-endian, any byte offset).
 */
export function byteReaders(buf: string, fn: string): string {
  return /* wgsl */ `
fn ${fn}_byte(i: u32) -> u32 { return (${buf}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
fn ${fn}_u16(i: u32) -> u32 { return ${fn}_byte(i) | (${fn}_byte(i + 1u) << 8u); }
fn ${fn}_u32(i: u32) -> u32 {
  let s = (i & 3u) * 8u;
  let lo = ${buf}[i >> 2u];
  if (s == 0u) { return lo; }
  return (lo >> s) | (${buf}[(i >> 2u) + 1u] << (32u - s));
}
`;
}

/** Number of workgroups along x and y for `groups` linear workgroups. */
export function dispatchSize(groups: number, maxPerDim = MAX_GROUPS_X): [number, number] {
  if (groups <= maxPerDim) return [Math.max(groups, 0), 1];
  const y = Math.ceil(groups / maxPerDim);
  if (y > maxPerDim) throw new RangeError(`${groups} workgroups exceed a 2D dispatch`);
  return [Math.ceil(groups / y), y];
}

/**
 * A dequantize kernel around `decode` (WGSL defining `decode4(base, y) -> vec4<f32>`: values
 * `y .. y + 3` of the block at byte `base`), one thread per 4 values, for blocks of
 * `2^log2Values` values in `blockBytes` bytes. Bindings: 1 `src` u32 (read), 2 `dst` vec4<f32>
 * (write). `P.n` = values / 4 in the chunk.
 */
export function dequantizeKernelWgsl(
  decode: string,
  log2Values: number,
  blockBytes: number,
): string {
  return /* wgsl */ `
${PARAMS_WGSL}
${HALF_WGSL}
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
${byteReaders("src", "s")}
${decode}

@compute @workgroup_size(256)
fn dequantize(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = group_index(wid, nwg) * 256u + lid;
  if (t >= P.n) { return; }
  let e = t * 4u;
  dst[t] = decode4((e >> ${log2Values}u) * ${blockBytes}u, e & ${(1 << log2Values) - 1}u);
}
`;
}
