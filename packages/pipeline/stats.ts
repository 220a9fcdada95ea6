/**
 * Error statistics between a reference tensor and its reconstruction, accumulated chunk by chunk
 * so that no whole tensor needs to be held.
 * @module
 */

import { ERROR_SUM_FIELDS, errorSumsInto } from "@quantx/kernels";

/** Scratch for {@link ErrorStats.add} (it runs to completion, so one is enough). */
const SUMS = new Float64Array(ERROR_SUM_FIELDS);

/** Summary of how far a reconstruction is from its reference. */
export interface ErrorSummary {
  /** Number of values compared. */
  count: number;
  /** Root mean square error. */
  rmse: number;
  /** Largest absolute error. */
  maxAbsError: number;
  /** Cosine similarity of the two tensors (1 when both are zero). */
  cosine: number;
  /** Signal-to-noise ratio in dB: 10 log10(sum ref^2 / sum err^2); Infinity when exact. */
  snrDb: number;
  /** Values that are NaN or infinite in either tensor. */
  nonFinite: number;
}

/** Accumulates {@link ErrorSummary} over chunks (sums in float64). */
export class ErrorStats {
  #count = 0;
  #sumErr2 = 0;
  #sumRef2 = 0;
  #sumOut2 = 0;
  #dot = 0;
  #maxAbs = 0;
  #nonFinite = 0;

  /** Add a chunk: `ref[i]` against `out[i]`. */
  add(ref: Float32Array, out: Float32Array): void {
    if (ref.length !== out.length) throw new Error("ErrorStats.add: length mismatch");
    errorSumsInto(ref, out, 0, ref.length, SUMS, 0);
    this.#count += ref.length;
    this.#sumErr2 += SUMS[0];
    this.#sumRef2 += SUMS[1];
    this.#dot += SUMS[2];
    this.#sumOut2 += SUMS[3];
    this.#maxAbs = Math.max(this.#maxAbs, SUMS[4]);
    this.#nonFinite += SUMS[5];
  }

  /**
   * An accumulator from sums computed elsewhere (the worker pool): squared error, squared
   * reference, dot product of reference and output, largest |error|, non-finite count, count.
   */
  static fromSums(sums: {
    sumSq: number;
    sumSqRef: number;
    dot: number;
    sumSqOut?: number;
    maxAbs: number;
    nonFinite: number;
    count: number;
  }): ErrorStats {
    const s = new ErrorStats();
    s.#count = sums.count;
    s.#sumErr2 = sums.sumSq;
    s.#sumRef2 = sums.sumSqRef;
    // |o|^2 = |o - r|^2 + 2 o.r - |r|^2
    s.#sumOut2 = sums.sumSqOut ?? Math.max(0, sums.sumSq + 2 * sums.dot - sums.sumSqRef);
    s.#dot = sums.dot;
    s.#maxAbs = sums.maxAbs;
    s.#nonFinite = sums.nonFinite;
    return s;
  }

  /** Merge another accumulator into this one. */
  merge(other: ErrorStats): void {
    this.#count += other.#count;
    this.#sumErr2 += other.#sumErr2;
    this.#sumRef2 += other.#sumRef2;
    this.#sumOut2 += other.#sumOut2;
    this.#dot += other.#dot;
    this.#maxAbs = Math.max(this.#maxAbs, other.#maxAbs);
    this.#nonFinite += other.#nonFinite;
  }

  /** The summary so far. */
  summary(): ErrorSummary {
    const n = this.#count;
    const denom = Math.sqrt(this.#sumRef2 * this.#sumOut2);
    return {
      count: n,
      rmse: n ? Math.sqrt(this.#sumErr2 / n) : 0,
      maxAbsError: this.#maxAbs,
      cosine: denom > 0 ? this.#dot / denom : (this.#sumRef2 === this.#sumOut2 ? 1 : 0),
      snrDb: this.#sumErr2 === 0 ? Infinity : 10 * Math.log10(this.#sumRef2 / this.#sumErr2),
      nonFinite: this.#nonFinite,
    };
  }
}
