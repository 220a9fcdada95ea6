/**
 * Shared pieces of the block kernels: the argument check every one starts with, and the block
 * extremes that q4_0/q5_0 (largest magnitude) and q4_1/q5_1 (min and max) take their scales from,
 * found without branches and exactly as ggml's C loops find them.
 * @module
 */

/**
 * Number of blocks in `values` values, after checking that they are whole blocks of `blockSize`
 * and that the byte side (`bytes`, of `typeSize` per block) is large enough. `srcIsFloat` says
 * which side the bytes are (the destination when quantizing). Throws a RangeError naming `name`.
 */
export function checkBlocks(
  name: string,
  values: number,
  bytes: number,
  blockSize: number,
  typeSize: number,
  srcIsFloat: boolean,
): number {
  if (values % blockSize !== 0) {
    throw new RangeError(
      `${name}: ${values} values is not a multiple of the block size ${blockSize}`,
    );
  }
  const nb = values / blockSize;
  if (bytes < nb * typeSize) {
    throw new RangeError(
      `${name}: ${srcIsFloat ? "destination" : "source"} has ${bytes} bytes, ` +
        `${nb} blocks need ${nb * typeSize}`,
    );
  }
  return nb;
}

const FLT_MAX = 3.4028234663852886e38;
const SCR_F = new Float32Array(1);
const SCR_I = new Int32Array(SCR_F.buffer);

/**
 * The first of the 32 values at `src[x]` with the largest magnitude, with its sign (ggml's q4_0 /
 * q5_0 `max`); 0 for an all-zero block. `bits` is `src` viewed as Int32Array. An integer max over
 * the bits of |v| (their order for non-NaN floats), then its first index; a block with a NaN goes
 * through C's loop, which never takes a NaN.
 */
export function signedAbsMax32(src: Float32Array, bits: Int32Array, x: number): number {
  let m = 0;
  for (let j = 0; j < 32; j++) m = Math.max(m, bits[x + j] & 0x7fffffff);
  if (m > 0x7f800000) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[x + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    return max;
  }
  if (m === 0) return 0;
  let j = x;
  while ((bits[j] & 0x7fffffff) !== m) j++;
  return src[j];
}

/**
 * The minimum and maximum of the 32 values at `src[x]` into `out[0]` and `out[1]`, as C's
 * `if (v < min) min = v` / `if (v > max) max = v` loops from ±FLT_MAX give them (ggml's q4_1 /
 * q5_1). `bits` is `src` viewed as Int32Array. An integer min / max over the float bits mapped to
 * an order-preserving int (negative floats get their magnitude bits flipped); blocks with a NaN
 * or a zero extreme (C keeps the first of -0 and +0) go through C's loops.
 */
export function minMax32(src: Float32Array, bits: Int32Array, x: number, out: Float32Array): void {
  let kmin = 0x7fffffff, kmax = -0x80000000;
  for (let j = 0; j < 32; j++) {
    const b = bits[x + j];
    const k = b ^ ((b >> 31) & 0x7fffffff);
    kmin = Math.min(kmin, k);
    kmax = Math.max(kmax, k);
  }
  if (
    kmax > 0x7f800000 || kmin < -0x7f800001 || kmin === 0 || kmin === -1 || kmax === 0 ||
    kmax === -1
  ) {
    let min = FLT_MAX, max = -FLT_MAX;
    for (let j = 0; j < 32; j++) if (src[x + j] < min) min = src[x + j];
    for (let j = 0; j < 32; j++) if (src[x + j] > max) max = src[x + j];
    out[0] = min;
    out[1] = max;
    return;
  }
  SCR_I[0] = kmin ^ ((kmin >> 31) & 0x7fffffff);
  out[0] = SCR_F[0];
  SCR_I[0] = kmax ^ ((kmax >> 31) & 0x7fffffff);
  out[1] = SCR_F[0];
}
