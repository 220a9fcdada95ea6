/**
 * bitsandbytes 4-bit quantization on the CPU: NF4 and FP4 over a flattened tensor, blockwise with
 * one float32 `absmax` per block, and bitsandbytes' double quantization of those absmax values
 * (`compress_statistics`) with its signed 8-bit dynamic map.
 *
 * What is matched, exactly (bitsandbytes `csrc/kernels.cu`, `kQuantizeBlockwise` /
 * `kQuantizeBlockwiseSmall`, `dQuantizeNF4`, `dQuantizeFP4`, `dQuantize<0>`, `kDequantizeBlockwise`),
 * with IEEE float32 arithmetic:
 * - `absmax` = max |x| over the block, NaN ignored (as `fmaxf` does); `inv = 1 / absmax` and
 *   `scaled = x * inv`, each rounded to float32. An all-zero block has `inv = inf`, `scaled = NaN`
 *   and so code 0 (byte 0x00), as the CUDA kernel stores it.
 * - NF4: the code is the number of the 15 float32 midpoints `(c[i] + c[i+1]) / 2` strictly below
 *   `scaled` (equal, as float32, to the thresholds of bitsandbytes' `dQuantizeNF4` decision tree;
 *   NaN gives code 0).
 * - FP4: bitsandbytes' `dQuantizeFP4` tree with its literal float32 thresholds (0.29166667,
 *   0.583333, 0.8333333, 0.4166667, 0.0859375, 0.20833333, 0.00260417 — not all exact midpoints);
 *   the sign bit (8) is set when `scaled < 0`, so -0 and NaN get sign 0.
 * - Packing: first element of each pair in the HIGH nibble; an odd length pads one element of
 *   value 0, quantized like the others (as the kernel's zero-filled load does).
 * - Dequantize: `float32(codebook[code] * absmax[block])`; FP4 decodes sign-magnitude
 *   ({@link FP4_CODEBOOK}, code 8 is -0), as `dDequantizeFP4Tree` does.
 * - Double quantization: `quantize_blockwise(absmax - offset, code=create_dynamic_map(), 256)`
 *   with the `dQuantize<0>` binary search (7 halvings from pivot 127, then the nearer neighbour by
 *   float32 midpoint `(a + b) * 0.5`, ties to the inner pivot).
 *
 * Known divergences from a real bitsandbytes CUDA build: bitsandbytes compiles with
 * `--use_fast_math`, so its `1.0f / absmax` is an approximate reciprocal and subnormal products
 * flush to zero; QuantX uses IEEE division (the project's reference vectors were made that way). A
 * block whose values are all NaN gets absmax 0 here (the CUDA kernel would store -FLT_MAX). The
 * double-quantization `offset` is `mean(absmax)` accumulated in float64 and rounded to float32;
 * bitsandbytes takes a float32 `torch.mean` on the device, whose summation order is the GPU's.
 * @module
 */

const fr = Math.fround;

/** The 16 NF4 values in code order (bitsandbytes `get_4bit_type("nf4")`), float32. */
export const NF4_CODEBOOK: Float32Array = new Float32Array([
  -1,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1,
]);

/**
 * The 16 FP4 values in bitsandbytes' code order, as its CUDA dequantizer decodes them
 * (sign-magnitude: `lut[code & 7] * (code & 8 ? -1 : 1)`, so code 8 is -0). The map that
 * bitsandbytes stores as `quant_map` (`get_4bit_type("fp4")`) is the same except that its entry 8
 * is +0.
 */
export const FP4_CODEBOOK: Float32Array = (() => {
  const mags = [0, 0.0625, 8, 12, 4, 6, 2, 3];
  const out = new Float32Array(16);
  for (let i = 0; i < 8; i++) {
    out[i] = fr(mags[i] / 12);
    out[i + 8] = -fr(mags[i] / 12);
  }
  return out;
})();

/** The 15 NF4 decision thresholds: float32 midpoints of neighbouring codebook values. */
export const NF4_MIDPOINTS: Float32Array = (() => {
  const m = new Float32Array(15);
  for (let i = 0; i < 15; i++) m[i] = fr(fr(NF4_CODEBOOK[i] + NF4_CODEBOOK[i + 1]) / 2);
  return m;
})();

/**
 * bitsandbytes' signed 8-bit dynamic map, `create_dynamic_map(signed=True)` (256 float32 values,
 * sorted), as PyTorch computes it on the CPU: `torch.linspace(0.1, 1, k)` in float32 with
 * `step = (1 - 0.1) / (k - 1)` and each point `start + step*i` (first half) or
 * `end - step*(k-1-i)` (second half) contracted to one rounding (FMA); `means` of neighbours in
 * float32; scaled by `float32(10^(i-6))` in float32. Verified against the `nested_quant_map` of a
 * real bitsandbytes checkpoint.
 */
export const BNB_DYNAMIC_MAP: Float32Array = (() => {
  const data: number[] = [];
  const start = fr(0.1), end = 1;
  for (let i = 0; i < 7; i++) {
    const k = 2 ** i + 1;
    const step = fr((end - start) / (k - 1));
    const half = Math.floor(k / 2);
    const b: number[] = [];
    // step * j is exact in float64 (24-bit by < 8-bit) and so is the sum: one rounding, like FMA.
    for (let j = 0; j < k; j++) {
      b.push(j < half ? fr(start + step * j) : fr(end - step * (k - 1 - j)));
    }
    const scale = fr(10 ** (i - 6));
    for (let j = 0; j < k - 1; j++) {
      const mean = fr(fr(b[j] + b[j + 1]) / 2);
      data.push(fr(scale * mean), fr(-scale * mean));
    }
  }
  data.push(0, 1);
  data.sort((a, b) => a - b);
  return new Float32Array(data);
})();

/** Packed 4-bit codes (first element of each pair in the high nibble) and absmax per block. */
export interface Bnb4bitQuantized {
  /** `ceil(n / 2)` bytes of codes. */
  codes: Uint8Array;
  /** One float32 absmax per block of `blockSize` values (`ceil(n / blockSize)`). */
  absmax: Float32Array;
}

/** Double-quantized absmax values (bitsandbytes `compress_statistics`). */
export interface DoubleQuantized {
  /** One byte per absmax value: an index into {@link BNB_DYNAMIC_MAP}. */
  quantized: Uint8Array;
  /** One float32 scale per block of `blockSize` absmax values. */
  nestedAbsmax: Float32Array;
  /** The float32 mean subtracted before quantizing (bitsandbytes `nested_offset`). */
  offset: number;
}

function checkBlockSize(blockSize: number, what: string): void {
  if (!Number.isSafeInteger(blockSize) || blockSize < 1 || blockSize > 1 << 24) {
    throw new RangeError(`${what}: block size ${blockSize} is not an integer in [1, 2^24]`);
  }
}

const T0 = NF4_MIDPOINTS;
const M0 = T0[0], M1 = T0[1], M2 = T0[2], M3 = T0[3], M4 = T0[4], M5 = T0[5], M6 = T0[6];
const M7 = T0[7], M8 = T0[8], M9 = T0[9], M10 = T0[10], M11 = T0[11], M12 = T0[12];
const M13 = T0[13], M14 = T0[14];

/** Count of NF4 midpoints strictly below x, branch-free (NaN: every test fails -> 0). */
function nf4Code(x: number): number {
  return +(x > M0) + +(x > M1) + +(x > M2) + +(x > M3) + +(x > M4) + +(x > M5) + +(x > M6) +
    +(x > M7) + +(x > M8) + +(x > M9) + +(x > M10) + +(x > M11) + +(x > M12) + +(x > M13) +
    +(x > M14);
}

// bitsandbytes `dQuantizeFP4` thresholds (float32 of its literals), in increasing order:
// 0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333.
const [F0, F1, F2, F3, F4, F5, F6] = [
  0.00260417,
  0.0859375,
  0.20833333,
  0.29166667,
  0.4166667,
  0.583333,
  0.8333333,
].map(fr);
/** FP4 magnitude code by rank of |x| among the thresholds (values 0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1). */
const FP4_RANK_CODE = new Uint8Array([0, 1, 6, 7, 4, 5, 2, 3]);

/**
 * bitsandbytes `dQuantizeFP4`: sign bit 8 when `x < 0`; magnitude code from the decision tree,
 * here as the rank of |x| among the sorted thresholds (the same tests, branch-free).
 */
function fp4Code(x: number): number {
  const a = Math.abs(x);
  const rank = +(a > F0) + +(a > F1) + +(a > F2) + +(a > F3) + +(a > F4) + +(a > F5) + +(a > F6);
  return FP4_RANK_CODE[rank] | (x < 0 ? 8 : 0);
}

/** max |x| over `src[s, e)`, NaN ignored, 0 when empty (bitsandbytes' fmaxf reduction). */
function blockAbsmax(src: Float32Array, s: number, e: number): number {
  let m = 0;
  for (let i = s; i < e; i++) {
    const a = Math.abs(src[i]);
    if (a > m) m = a;
  }
  return m;
}

function quantize4(
  src: Float32Array,
  blockSize: number,
  code: (x: number) => number,
  what: string,
): Bnb4bitQuantized {
  checkBlockSize(blockSize, what);
  const n = src.length;
  const codes = new Uint8Array(Math.ceil(n / 2));
  const blocks = Math.ceil(n / blockSize);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    absmax[b] = blockAbsmax(src, b * blockSize, Math.min(n, (b + 1) * blockSize));
  }
  if ((blockSize & 1) === 0) {
    // pairs never straddle a block
    for (let b = 0; b < blocks; b++) {
      const s = b * blockSize, e = Math.min(n, s + blockSize) & ~1;
      const inv = fr(1 / absmax[b]);
      for (let i = s; i < e; i += 2) {
        codes[i >> 1] = (code(fr(src[i] * inv)) << 4) | code(fr(src[i + 1] * inv));
      }
    }
  } else {
    for (let i = 0; i + 1 < n; i += 2) {
      const a = fr(1 / absmax[Math.floor(i / blockSize)]);
      const c = fr(1 / absmax[Math.floor((i + 1) / blockSize)]);
      codes[i >> 1] = (code(fr(src[i] * a)) << 4) | code(fr(src[i + 1] * c));
    }
  }
  if ((n & 1) === 1) {
    // the kernel's zero-filled load: the pad value 0 is quantized with the last block's scale
    const inv = fr(1 / absmax[blocks - 1]);
    codes[n >> 1] = (code(fr(src[n - 1] * inv)) << 4) | code(fr(0 * inv));
  }
  return { codes, absmax };
}

function dequantize4(
  codes: Uint8Array,
  absmax: Float32Array,
  count: number,
  blockSize: number,
  book: Float32Array,
  what: string,
): Float32Array {
  checkBlockSize(blockSize, what);
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`${what}: element count ${count} is not a non-negative integer`);
  }
  if (codes.length < Math.ceil(count / 2)) {
    throw new RangeError(
      `${what}: ${count} values need ${Math.ceil(count / 2)} code bytes, got ${codes.length}`,
    );
  }
  if (absmax.length < Math.ceil(count / blockSize)) {
    throw new RangeError(
      `${what}: ${count} values need ${
        Math.ceil(count / blockSize)
      } absmax values, got ${absmax.length}`,
    );
  }
  const out = new Float32Array(count);
  for (let b = 0, s = 0; s < count; b++, s += blockSize) {
    const m = absmax[b], e = Math.min(count, s + blockSize);
    for (let i = s; i < e; i++) {
      const byte = codes[i >> 1];
      out[i] = book[(i & 1) === 0 ? byte >> 4 : byte & 15] * m;
    }
  }
  return out;
}

/**
 * NF4-quantizes `src` (flattened, any length) with one absmax per `blockSize` values, exactly as
 * bitsandbytes' CUDA kernel does (see the module notes).
 *
 * @example
 * ```ts
 * import { dequantizeNf4, quantizeNf4 } from "@quantx/kernels";
 * const { codes, absmax } = quantizeNf4(new Float32Array([1, -0.5, 0.25, 0]));
 * console.log(codes, absmax); // Uint8Array [ 242, 167 ] Float32Array [ 1 ]
 * console.log(dequantizeNf4(codes, absmax, 4)[0]); // 1
 * ```
 */
export function quantizeNf4(src: Float32Array, blockSize = 64): Bnb4bitQuantized {
  return quantize4(src, blockSize, nf4Code, "nf4");
}

/** Decodes `count` NF4 values: `float32(NF4_CODEBOOK[code] * absmax[i / blockSize])`. */
export function dequantizeNf4(
  codes: Uint8Array,
  absmax: Float32Array,
  count: number,
  blockSize = 64,
): Float32Array {
  return dequantize4(codes, absmax, count, blockSize, NF4_CODEBOOK, "nf4");
}

/** FP4-quantizes `src` as bitsandbytes' CUDA `dQuantizeFP4` does (see the module notes). */
export function quantizeFp4(src: Float32Array, blockSize = 64): Bnb4bitQuantized {
  return quantize4(src, blockSize, fp4Code, "fp4");
}

/** Decodes `count` FP4 values sign-magnitude: `float32(FP4_CODEBOOK[code] * absmax[block])`. */
export function dequantizeFp4(
  codes: Uint8Array,
  absmax: Float32Array,
  count: number,
  blockSize = 64,
): Float32Array {
  return dequantize4(codes, absmax, count, blockSize, FP4_CODEBOOK, "fp4");
}

/** bitsandbytes `dQuantize<0>`: nearest entry of the sorted 256-value `map` by its binary search. */
function dynamicCode(map: Float32Array, x: number): number {
  let pivot = 127, upperPivot = 255, lowerPivot = 0;
  let lower = -1, upper = 1;
  let val = map[pivot];
  for (let i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = map[pivot];
  }
  if (upperPivot === 255) upper = map[255];
  if (lowerPivot === 0) lower = map[0];
  if (x > val) return x > fr(fr(upper + val) * 0.5) ? upperPivot : pivot;
  return x < fr(fr(lower + val) * 0.5) ? lowerPivot : pivot;
}

/**
 * bitsandbytes' double quantization of `absmax` (`compress_statistics=True`):
 * `offset = mean(absmax)` (float64 sum, rounded to float32), then `absmax - offset` (float32)
 * quantized blockwise (`blockSize`, 256 in bitsandbytes) with {@link BNB_DYNAMIC_MAP}.
 *
 * @example
 * ```ts
 * import { doubleDequantize, doubleQuantize } from "@quantx/kernels";
 * const absmax = new Float32Array([0.5, 0.25, 1]);
 * const { quantized, nestedAbsmax, offset } = doubleQuantize(absmax);
 * console.log(doubleDequantize(quantized, nestedAbsmax, offset)); // close to absmax
 * ```
 */
export function doubleQuantize(absmax: Float32Array, blockSize = 256): DoubleQuantized {
  checkBlockSize(blockSize, "double quantization");
  const n = absmax.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += absmax[i];
  const offset = n === 0 ? 0 : fr(sum / n);
  const centered = new Float32Array(n);
  for (let i = 0; i < n; i++) centered[i] = absmax[i] - offset;
  const { quantized, absmax: nestedAbsmax } = quantizeBlockwiseDynamic(centered, blockSize);
  return { quantized, nestedAbsmax, offset };
}

/** 8-bit blockwise quantized values: one byte per value and one float32 absmax per block. */
export interface BlockwiseDynamicQuantized {
  /** One byte per value: an index into the map. */
  quantized: Uint8Array;
  /** One float32 absmax per block. */
  absmax: Float32Array;
}

/**
 * bitsandbytes `quantize_blockwise` (CUDA `kQuantizeBlockwise`, General8bit, not stochastic):
 * per block `absmax = max |x|`, `scaled = x * float32(1 / absmax)`, and the code found by
 * `dQuantize<0>`'s binary search over the sorted 256-entry `map`.
 */
export function quantizeBlockwiseDynamic(
  src: Float32Array,
  blockSize: number,
  map: Float32Array = BNB_DYNAMIC_MAP,
): BlockwiseDynamicQuantized {
  checkBlockSize(blockSize, "blockwise 8-bit");
  if (map.length !== 256) {
    throw new RangeError(`blockwise 8-bit: the map has ${map.length} entries, not 256`);
  }
  const n = src.length;
  const blocks = Math.ceil(n / blockSize);
  const quantized = new Uint8Array(n);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const s = b * blockSize, e = Math.min(n, s + blockSize);
    let m = 0;
    for (let i = s; i < e; i++) {
      const a = Math.abs(src[i]);
      if (a > m) m = a;
    }
    absmax[b] = m;
    const inv = fr(1 / m);
    for (let i = s; i < e; i++) quantized[i] = dynamicCode(map, fr(src[i] * inv));
  }
  return { quantized, absmax };
}

/**
 * Decodes double-quantized absmax values:
 * `float32(float32(map[q[i]] * nestedAbsmax[i / blockSize]) + offset)` with `map` =
 * {@link BNB_DYNAMIC_MAP} unless given (a file's own `nested_quant_map`).
 */
export function doubleDequantize(
  quantized: Uint8Array,
  nestedAbsmax: Float32Array,
  offset: number,
  blockSize = 256,
  map: Float32Array = BNB_DYNAMIC_MAP,
): Float32Array {
  checkBlockSize(blockSize, "double quantization");
  const n = quantized.length;
  if (nestedAbsmax.length < Math.ceil(n / blockSize)) {
    throw new RangeError(
      `double quantization: ${n} values need ${
        Math.ceil(n / blockSize)
      } nested absmax values, got ${nestedAbsmax.length}`,
    );
  }
  if (map.length < 256) {
    throw new RangeError(`double quantization: the map has ${map.length} entries, not 256`);
  }
  const off = fr(offset);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = fr(map[quantized[i]] * nestedAbsmax[Math.floor(i / blockSize)]) + off;
  }
  return out;
}
