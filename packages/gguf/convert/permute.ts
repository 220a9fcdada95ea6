/**
 * The q/k row permutation of llama.cpp's converter (`LlamaModel.permute`): within each head of
 * `d = rows / nHead` rows, output row `2i + j` is input row `j * d/2 + i` (the two halves of the
 * head interleaved), turning Hugging Face's rotate-half RoPE layout into ggml's.
 * @module
 */

/**
 * Permute a chunk of whole heads. `values` holds `rows` rows of `ne0` values each, starting at row
 * `row0` of a tensor of `totalRows` rows split into `nHead` heads; `row0` and `rows` must be
 * multiples of the head size. Returns the permuted chunk (a new array). For a bias, `ne0` is 1.
 *
 * @example
 * ```ts
 * import { permuteRows } from "@quantx/gguf";
 * // one head of 4 rows (1 value each): rows 0,1 | 2,3 -> 0,2,1,3
 * console.log([...permuteRows(new Float32Array([0, 1, 2, 3]), 0, 4, 1, 1, 4)]); // [0, 2, 1, 3]
 * ```
 */
export function permuteRows(
  values: Float32Array,
  row0: number,
  rows: number,
  ne0: number,
  nHead: number,
  totalRows: number,
): Float32Array {
  const hd = headRows(totalRows, nHead);
  if (!Number.isInteger(row0) || row0 < 0 || row0 % hd !== 0) {
    throw new RangeError(
      `permuteRows: first row ${row0} is not at a head boundary (head = ${hd} rows)`,
    );
  }
  if (!Number.isInteger(rows) || rows < 0 || rows % hd !== 0 || row0 + rows > totalRows) {
    throw new RangeError(
      `permuteRows: ${rows} rows from row ${row0} are not whole heads of ${hd} rows within ${totalRows}`,
    );
  }
  if (!Number.isInteger(ne0) || ne0 <= 0 || values.length !== rows * ne0) {
    throw new RangeError(
      `permuteRows: expected ${rows} rows of ${ne0} values (${rows * ne0}), got ${values.length}`,
    );
  }
  const out = new Float32Array(values.length);
  const half = hd / 2;
  for (let h = 0; h < rows; h += hd) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const dst = (h + 2 * i + j) * ne0;
        const src = (h + j * half + i) * ne0;
        out.set(values.subarray(src, src + ne0), dst);
      }
    }
  }
  return out;
}

/** Rows per head for the permutation; throws when the rows do not split into even-sized heads. */
export function headRows(totalRows: number, nHead: number): number {
  if (!Number.isInteger(nHead) || nHead <= 0 || !Number.isInteger(totalRows) || totalRows <= 0) {
    throw new RangeError(`permute: invalid head count ${nHead} for ${totalRows} rows`);
  }
  const hd = totalRows / nHead;
  if (!Number.isInteger(hd) || hd % 2 !== 0) {
    throw new RangeError(
      `permute: ${totalRows} rows do not split into ${nHead} heads of an even number of rows`,
    );
  }
  return hd;
}
