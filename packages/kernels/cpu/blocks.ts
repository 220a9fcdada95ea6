/**
 * The argument check every block kernel starts with.
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
