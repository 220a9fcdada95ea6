/**
 * Shared pieces of the k-quant reference quantizers (ggml-quants.c): `nearest_int`, the scale
 * searches `make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`, `get_scale_min_k4`, and the
 * scale-and-min half of a Q4_K / Q5_K super-block.
 * Every float operation is rounded to float32 exactly where C rounds it, so the results are
 * bit-identical to libggml's `quantize_row_*_ref`.
 * @module
 */
import { checkBlocks } from "./blocks.ts";
import { FP16_TABLE, fp32ToFp16 } from "./half.ts";

/** Elements per k-quant super-block. */
export const QK_K = 256;

/** ggml's `GROUP_MAX_EPS` (1e-15f) as a float32. */
export const GROUP_MAX_EPS: number = Math.fround(1e-15);

const fr = Math.fround;
/** 1.5 * 2^52: adding and subtracting it rounds a double to an integer, ties to even. */
const RND = 6755399441055744;

/** Unit roundoff of float32. */
const U = 2 ** -24;

/** A comparison as 0 or 1, to combine with `|` and `&` instead of branching. */
function bit(c: boolean): number {
  return c as unknown as number;
}

const bitsF = new Float32Array(1);
const bitsI = new Int32Array(bitsF.buffer);

/**
 * ggml's `nearest_int(fval)` for a float32 value: round half to even inside its asserted range
 * (|fval| <= 4194303), and outside it the same bits the `fval + 12582912.f` trick yields
 * (infinities give -4194304, NaN gives 0).
 */
export function nearestInt(f: number): number {
  if (f > -4194303.5 && f < 4194303.5) return (f + RND) - RND;
  bitsF[0] = f + 12582912;
  return (bitsI[0] & 0x007fffff) - 0x00400000;
}

/**
 * Checks a quantize/dequantize call: `elements` float values must be whole 256-element
 * super-blocks and the byte side must hold them (`typeSize` bytes each); returns the number of
 * super-blocks, or throws a RangeError saying what is wrong.
 */
export function checkKQuantArgs(
  name: string,
  elements: number,
  bytes: number,
  typeSize: number,
  srcIsFloat: boolean,
): number {
  return checkBlocks(name, elements, bytes, QK_K, typeSize, srcIsFloat);
}

// ---------------------------------------------------------------- make_q3_quants

const Q3_X = new Float64Array(32);
const Q3_W = new Float64Array(32); // float32(x*x)
const Q3_WX = new Float64Array(32); // float32(w*x)
const Q3_L = new Float64Array(32);

/**
 * `make_q3_quants(n, nmax, x, L, do_rmse)`: symmetric quantization with an iterative weighted
 * (x*x) refinement of each level. Reads x[xo..xo+n), writes `L[lo + i]` in [0, 2*nmax) and the
 * scale to `scales[j]`. n <= 32.
 */
export function makeQ3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Uint8Array,
  lo: number,
  scales: Float32Array,
  j: number,
  doRmse: boolean,
): void {
  const X = Q3_X, W = Q3_W, WX = Q3_WX, LS = Q3_L;
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    X[i] = v;
    const ax = Math.abs(v);
    if (ax > amax) {
      amax = ax;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    scales[j] = 0;
    return;
  }
  const iscale = fr(-nmax / max);
  const lmin = -nmax, lmax = nmax - 1;
  if (doRmse) {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = X[i];
      let l = nearestInt(fr(iscale * v));
      l = l < lmin ? lmin : l > lmax ? lmax : l;
      LS[i] = l;
      const w = fr(v * v), wx = fr(w * v);
      W[i] = w;
      WX[i] = wx;
      sumlx = fr(sumlx + fr(wx * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    for (let itry = 0; itry < 5; ++itry) {
      let changed = 0;
      for (let i = 0; i < n; i++) {
        const w = W[i], wx = WX[i], li = LS[i];
        let slx = fr(sumlx - fr(wx * li));
        if (slx > 0) {
          let sl2 = fr(suml2 - fr(fr(w * li) * li));
          let nl = nearestInt(fr(fr(X[i] * sl2) / slx));
          nl = nl < lmin ? lmin : nl > lmax ? lmax : nl;
          if (nl !== li) {
            slx = fr(slx + fr(wx * nl));
            sl2 = fr(sl2 + fr(fr(w * nl) * nl));
            if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
              LS[i] = nl;
              sumlx = slx;
              suml2 = sl2;
              ++changed;
            }
          }
        }
      }
      if (!changed) break;
    }
    for (let i = 0; i < n; i++) L[lo + i] = LS[i] + nmax;
    scales[j] = suml2 > 0 ? fr(sumlx / suml2) : 0;
    return;
  }
  for (let i = 0; i < n; i++) {
    let l = nearestInt(fr(iscale * X[i]));
    l = l < lmin ? lmin : l > lmax ? lmax : l;
    L[lo + i] = l + nmax;
  }
  scales[j] = fr(1 / iscale);
}

// ---------------------------------------------------------------- make_qkx2_quants

const K2_W = new Float64Array(32); // weights (float32 values)
const K2_X = new Float64Array(32); // x (float32 values)
const K2_WX = new Float64Array(32); // w*x, exact in a double
const K2_XM = new Float64Array(32); // float32(x - min) for the current min
const K2_LV = new Int32Array(32); // levels of the trial being looked at
const K2_LB = new Int32Array(32); // levels of the best fit so far
const K2_NUM = new Float64Array(64); // float32(rmin + rdelta*is + nmax) per trial
const K2_ISC = new Float64Array(64); // the trial's iscale for the current min
// level changes between consecutive trials, bucketed by trial (singly linked lists)
const EV_HEAD = new Int32Array(64);
const EV_NEXT = new Int32Array(2048);
const EV_ELEM = new Int32Array(2048);
const EV_L = new Int32Array(2048);

// Doubles shared by the search and its helpers (a typed array, so that no call boxes them).
const KS = new Float64Array(20);
// sums over the trial's levels l (double): w l, w l^2, w x l, w l |x|
const S_L = 0, S_L2 = 1, S_XL = 2, S_T = 3;
// per call: sum w, sum w x, sum w x^2, sum w |x| (double), C's float32 sum w and sum w x, g
const C_W = 4, C_X = 5, C_XX = 6, C_AX = 7, C_SW = 8, C_SX = 9, C_G = 10;
// the best fit's error interval; a trial's error interval, float32 scale and min
const B_LO = 11, B_HI = 12, R_LO = 13, R_HI = 14, R_SCALE = 15, R_MIN = 16;

/**
 * The (scale, min) C fits in float32 to the levels in `L` (its weighted least-squares solution,
 * min clamped to <= 0), left in KS[R_SCALE], KS[R_MIN]. False when C skips the trial (D <= 0).
 */
function trialFit(n: number, L: Int32Array): boolean {
  const W = K2_W, X = K2_X;
  const sumW = KS[C_SW], sumX = KS[C_SX];
  let sumL = 0, sumL2 = 0, sumXL = 0;
  for (let i = 0; i < n; i++) {
    const l = L[i];
    const wl = fr(W[i] * l);
    sumL = fr(sumL + wl);
    sumL2 = fr(sumL2 + fr(wl * l));
    sumXL = fr(sumXL + fr(wl * X[i]));
  }
  const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
  if (!(D > 0)) return false;
  let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
  let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
  if (thisMin > 0) {
    thisMin = 0;
    thisScale = fr(sumXL / sumL2);
  }
  KS[R_SCALE] = thisScale;
  KS[R_MIN] = thisMin;
  return true;
}

/** C's float32 error sum for (scale, min) = KS[at], KS[at + 1] and the levels in `L`. */
function trialError(n: number, L: Int32Array, at: number, useMad: boolean): number {
  const W = K2_W, X = K2_X;
  const scale = KS[at], min = KS[at + 1];
  let err = 0;
  if (useMad) {
    for (let i = 0; i < n; i++) {
      err = fr(err + fr(W[i] * Math.abs(fr(fr(fr(scale * L[i]) + min) - X[i]))));
    }
  } else {
    for (let i = 0; i < n; i++) {
      const diff = fr(fr(fr(scale * L[i]) + min) - X[i]);
      err = fr(err + fr(W[i] * fr(diff * diff)));
    }
  }
  return err;
}

/**
 * An interval [KS[R_LO], KS[R_HI]] holding C's float32 error sum for (scale, min) = KS[at],
 * KS[at + 1] and the levels in `L`, from the exact error in double precision. Each float32
 * residual is within 1.001u (|scale| l + |x| + 2|e|) of the exact residual e (three roundings), so
 * the sum moves by at most (n + 6)u relative plus 2.01u sqrt(E B) for squares (Cauchy-Schwarz) or
 * 1.01u B1 for absolute values, B = sum w (|scale| l + |min| + |x|)^2 (B1 unsquared; |min| covers
 * the double rounding here).
 */
function errorBounds(n: number, L: Int32Array, at: number, useMad: boolean): void {
  const W = K2_W, X = K2_X;
  const scale = KS[at], min = KS[at + 1];
  const as = Math.abs(scale), am = Math.abs(min);
  let e = 0, b = 0;
  if (useMad) {
    for (let i = 0; i < n; i++) {
      const l = L[i], x = X[i], w = W[i];
      e += w * Math.abs(scale * l + min - x);
      b += w * (as * l + am + Math.abs(x));
    }
    KS[R_LO] = (1 - 48 * U) * e - 1.02 * U * b;
    KS[R_HI] = (1 + 48 * U) * e + 1.02 * U * b;
  } else {
    for (let i = 0; i < n; i++) {
      const l = L[i], x = X[i], w = W[i];
      const r = scale * l + min - x, a = as * l + am + Math.abs(x);
      e += w * r * r;
      b += w * a * a;
    }
    const c = 2.02 * U * Math.sqrt(e * b);
    KS[R_LO] = (1 - 48 * U) * e - c;
    KS[R_HI] = (1 + 48 * U) * e + c + 3 * U * U * b;
  }
}

/**
 * Decides from the exact level sums KS[S_*] whether C's float32 squared error for this trial is
 * surely not below the best's upper bound (returns 0: the trial cannot win), surely below the
 * best's lower bound (returns 1, with an interval of that error in KS[R_LO], KS[R_HI]) or neither
 * (returns 2: evaluate it as C does).
 *
 * C's float32 sums are within g = (n + 2)u of the exact ones (relative; sum w l |x| and
 * sum w |x| bound the mixed-sign ones). That bounds how far C's scale and min lie from the exact
 * least-squares solution (s, m) (the system must be well conditioned), whether C clamps the min to
 * 0, and so the exact error E of C's (scale, min): between the least-squares minimum and that plus
 * the quadratic form of the deviation. C's float32 error sum is then within (n + 6)u E +
 * 2.01u sqrt(E B) (+ 2.1u^2 B above) of E, with B = sum w (|scale| l + |x|)^2.
 */
function judgeTrial(): number {
  const sL = KS[S_L], sL2 = KS[S_L2], sXL = KS[S_XL], T = KS[S_T];
  const Wd = KS[C_W], Xd = KS[C_X], Sxx = KS[C_XX], Ax = KS[C_AX], g = KS[C_G];
  const D = Wd * sL2 - sL * sL;
  if (!(D > 1e-3 * Wd * sL2)) return 2;
  const rD = 3 * g * (Wd * sL2 + sL * sL);
  const s = (Wd * sXL - Xd * sL) / D, m = (sL2 * Xd - sL * sXL) / D;
  const as = Math.abs(s), am = Math.abs(m);
  const ds = (3 * g * (Wd * T + Ax * sL) + as * rD) / (D - rD) * 1.001 + 2 * U * as;
  const dm = (3 * g * (sL2 * Ax + sL * T) + am * rD) / (D - rD) * 1.001 + 2 * U * am;
  let elo: number, eup: number, S: number;
  if (m + dm < 0) {
    // C keeps its min: E is the least-squares minimum plus at most the deviation's form
    const vlx = sXL - sL * Xd / Wd;
    elo = Sxx - Xd * Xd / Wd - vlx * vlx * Wd / D;
    eup = elo + ds * ds * sL2 + 2 * ds * dm * sL + dm * dm * Wd;
    S = as + ds;
  } else if (m - dm > 0) {
    // C clamps its min to 0 and refits the scale alone
    const s0 = sXL / sL2, a0 = Math.abs(s0);
    const dc = (g * T + a0 * g * sL2) / (sL2 * (1 - g)) * 1.001 + 2 * U * a0;
    elo = Sxx - sXL * s0;
    eup = elo + dc * dc * sL2;
    S = a0 + dc;
  } else return 2;
  elo -= 1e-9 * Sxx;
  eup += 1e-9 * Sxx;
  const B = S * S * sL2 + 2 * S * T + Sxx;
  if (!(elo > 2e-14 * B)) return 2;
  const lo = (1 - 48 * U) * elo - 2.02 * U * Math.sqrt(elo * B);
  if (lo >= KS[B_HI]) return 0;
  const hi = (1 + 48 * U) * eup + 2.02 * U * Math.sqrt(eup * B) + 3 * U * U * B;
  if (hi < KS[B_LO]) {
    KS[R_LO] = lo;
    KS[R_HI] = hi;
    return 1;
  }
  return 2;
}

/**
 * Bucket by trial the level changes of every element over trials k+1..kEnd, from the levels of
 * trial k in K2_LV, for the current min (K2_XM, `range`; K2_ISC holds the trials' iscales,
 * 0 for those not computed yet). Levels only grow with iscale. A level
 * changes where iscale*xm crosses a half-integer, in trial units at p = (c + 0.5) rq / xm + p0
 * (rq = range / rdelta); `win` bounds the float32 rounding of C's iscale and product in trial
 * units: away from an integer by more than that, ceil(p) is the trial, closer it is searched for.
 */
function buildEvents(
  n: number,
  nmax: number,
  k: number,
  kEnd: number,
  range: number,
  rq: number,
  p0: number,
  win: number,
): void {
  for (let kk = k + 1; kk <= kEnd; kk++) EV_HEAD[kk] = -1;
  const top = K2_ISC[kEnd];
  let nev = 0;
  for (let i = 0; i < n; i++) {
    const xm = K2_XM[i];
    let b = ((fr(top * xm) + RND) - RND) | 0;
    if (b > nmax) b = nmax;
    let c = K2_LV[i];
    if (b <= c) continue;
    const q = rq / xm;
    let lastK = -1;
    do {
      const p = (c + 0.5) * q + p0;
      const f = p | 0;
      let kk = f + 1;
      if (!(p - f > win && p - f < 1 - win && kk > k && kk <= kEnd)) {
        kk = f - 1 > k ? (f - 1 < kEnd ? f - 1 : kEnd) : k + 1;
        for (; kk < kEnd; kk++) {
          let isc = K2_ISC[kk];
          if (isc === 0) isc = K2_ISC[kk] = fr(K2_NUM[kk] / range);
          let t = ((fr(isc * xm) + RND) - RND) | 0;
          if (t > nmax) t = nmax;
          if (t > c) break;
        }
      }
      c++;
      if (kk === lastK) {
        EV_L[nev - 1] = c; // two levels up in one trial
      } else {
        EV_ELEM[nev] = i;
        EV_L[nev] = c;
        EV_NEXT[nev] = EV_HEAD[kk];
        EV_HEAD[kk] = nev++;
        lastK = kk;
      }
    } while (c < b);
  }
}

/**
 * `make_qkx2_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad)`:
 * asymmetric (scale, min) search over `nstep + 1` trial scales with a weighted least-squares fit
 * each. Reads x[xo..xo+n) and the n weights `w` (float32 values, from index 0), writes the levels
 * to `L[lo + i]` (0..nmax), the scale to `scales[j]` and `-min` (C's `the_min`) to `mins[j]`.
 * n <= 32, nstep < 64, `rdelta` a float32 value.
 *
 * Same result as the C loop with far less float32 work: a trial's levels move monotonically with
 * its scale, so they are tracked as a list of changes and a trial with the same levels as the
 * previous one (which cannot win again) is skipped; for squared errors a trial is decided from the
 * exact least-squares solution of its levels and proven bounds on C's float32 rounding (see
 * {@link judgeTrial}); only trials that win, or are too close to call, are fitted in float32
 * exactly as C does.
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  L: Uint8Array,
  lo: number,
  scales: Float32Array,
  mins: Float32Array,
  j: number,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): void {
  const W = K2_W, X = K2_X, WX = K2_WX, XM = K2_XM, LV = K2_LV, LB = K2_LB;
  let min = x[xo], max = min;
  let sumW = w[0], wmax = sumW;
  let sumX = fr(sumW * min);
  X[0] = min;
  W[0] = sumW;
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    X[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
    const wi = w[i];
    W[i] = wi;
    if (wi > wmax) wmax = wi;
    sumW = fr(sumW + wi);
    sumX = fr(sumX + fr(wi * v));
  }
  const xlo = min; // the smallest x, before min is clamped to <= 0
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    scales[j] = 0;
    mins[j] = -min;
    return;
  }
  // The rounding bounds assume float32 results that neither overflow nor go subnormal: with
  // |x| and the weights within 2^-30..2^30 every quantity C forms stays in range (or is too small
  // to matter against the bounds). Otherwise every trial that can win is evaluated as C does.
  const amax = max > -xlo ? max : -xlo;
  const bounded = amax >= 2 ** -30 && amax <= 2 ** 30 && wmax >= 2 ** -30 && wmax <= 2 ** 30;
  let range = fr(max - min);
  const iscale0 = fr(nmax / range);
  // the best fit so far: levels LB, float32 (scale, min), C's error within KS[B_LO], KS[B_HI]
  let scale = fr(1 / iscale0);
  // double-precision sums for judgeTrial: sum w, sum w x, sum w x^2, sum w |x|
  let Wd = 0, Xd = 0, Sxx = 0, Ax = 0;
  for (let i = 0; i < n; i++) {
    const v = X[i], wi = W[i];
    const xm = fr(v - min);
    XM[i] = xm;
    let l = nearestInt(fr(iscale0 * xm));
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    LB[i] = l;
    const wx = wi * v;
    WX[i] = wx;
    Wd += wi;
    Xd += wx;
    Sxx += wx * v;
    Ax += Math.abs(wx);
  }
  if (nstep < 1) {
    for (let i = 0; i < n; i++) L[lo + i] = LB[i];
    scales[j] = scale;
    mins[j] = -min;
    return;
  }
  KS[C_W] = Wd;
  KS[C_X] = Xd;
  KS[C_XX] = Sxx;
  KS[C_AX] = Ax;
  KS[C_SW] = sumW;
  KS[C_SX] = sumX;
  KS[C_G] = (n + 2) * U * 1.01;
  KS[R_SCALE] = scale;
  KS[R_MIN] = min;
  if (bounded) {
    errorBounds(n, LB, R_SCALE, useMad);
    KS[B_LO] = KS[R_LO];
    KS[B_HI] = KS[R_HI];
  } else KS[B_LO] = KS[B_HI] = trialError(n, LB, R_SCALE, useMad);

  for (let k = 0; k <= nstep; k++) K2_NUM[k] = fr(fr(rmin + fr(rdelta * k)) + nmax);
  // buildEvents' window: C's iscale*xm is within 5u (|rmin| + nmax + rdelta nstep) / rdelta
  // trials of the exact crossing point
  const win = 32 * U * (Math.abs(rmin) + nmax + rdelta * nstep) / rdelta;
  const p0 = -(rmin + nmax) / rdelta;
  const useEvents = rdelta > 0 && win < 0.01;

  let k = 0; // first trial of the current segment (trials share `min` within a segment)
  let havePrev = false; // LV holds the previous trial's levels
  segments: while (k <= nstep) {
    // iscales of this segment's trials, computed when needed (0 until then)
    for (let kk = k + 1; kk < nstep; kk++) K2_ISC[kk] = 0;
    const top = K2_ISC[nstep] = fr(K2_NUM[nstep] / range);
    const first = K2_ISC[k] = fr(K2_NUM[k] / range);
    // the fast path needs increasing positive scales and nearest_int inside its plain range
    const e0 = fr(top * fr(xlo - min)), e1 = fr(top * fr(max - min));
    if (
      !(useEvents && range > 0 && first > 0 && top >= first && e0 > -4194303 && e1 < 4194303)
    ) break;
    // trial k: levels computed directly
    let same = havePrev;
    let sL = 0, sL2 = 0, sXL = 0, T = 0;
    for (let i = 0; i < n; i++) {
      let a = ((fr(first * XM[i]) + RND) - RND) | 0;
      a = a < 0 ? 0 : a > nmax ? nmax : a;
      if (same && LV[i] !== a) same = false;
      LV[i] = a;
      const wi = W[i], wxa = WX[i] * a;
      sL += wi * a;
      sL2 += wi * a * a;
      sXL += wxa;
      T += Math.abs(wxa);
    }
    havePrev = true;
    for (let kk = k;;) {
      if (!same) {
        let better = false;
        KS[S_L] = sL;
        KS[S_L2] = sL2;
        KS[S_XL] = sXL;
        KS[S_T] = T;
        const verdict = useMad || !bounded ? 2 : judgeTrial();
        if (verdict === 1) {
          better = trialFit(n, LV);
        } else if (verdict === 2 && trialFit(n, LV)) {
          // does C's error for this fit beat the best one? decided on intervals when they part
          if (bounded) errorBounds(n, LV, R_SCALE, useMad);
          else KS[R_LO] = KS[R_HI] = trialError(n, LV, R_SCALE, useMad);
          better = KS[R_HI] < KS[B_LO];
          if (!better && KS[R_LO] < KS[B_HI]) {
            const err = trialError(n, LV, R_SCALE, useMad);
            if (KS[B_LO] !== KS[B_HI]) {
              KS[17] = scale;
              KS[18] = min;
              KS[B_LO] = KS[B_HI] = trialError(n, LB, 17, useMad);
            }
            better = err < KS[B_LO];
            KS[R_LO] = KS[R_HI] = err;
          }
        }
        if (better) {
          for (let i = 0; i < n; i++) LB[i] = LV[i];
          KS[B_LO] = KS[R_LO];
          KS[B_HI] = KS[R_HI];
          scale = KS[R_SCALE];
          const m = KS[R_MIN];
          if (m !== min) {
            min = m;
            range = fr(max - min);
            for (let i = 0; i < n; i++) XM[i] = fr(X[i] - min);
            k = kk + 1;
            continue segments;
          }
        }
      }
      if (kk === k) {
        if (k === nstep) {
          k = nstep + 1;
          break segments;
        }
        buildEvents(n, nmax, k, nstep, range, range / rdelta, p0, win);
      }
      // next trial: apply its level changes
      for (;;) {
        if (++kk > nstep) {
          k = nstep + 1;
          break segments;
        }
        let e = EV_HEAD[kk];
        if (e < 0) continue; // same levels as the previous trial
        do {
          const i = EV_ELEM[e], nl = EV_L[e], old = LV[i], d = nl - old, wi = W[i];
          sL += wi * d;
          sL2 += wi * (nl * nl - old * old);
          sXL += WX[i] * d;
          T += Math.abs(WX[i]) * d;
          LV[i] = nl;
          e = EV_NEXT[e];
        } while (e >= 0);
        break;
      }
      same = false;
    }
  }
  if (k <= nstep) {
    // Trials left over by the fast path (degenerate ranges): evaluated one by one as C does.
    KS[17] = scale;
    KS[18] = min;
    let best = KS[B_LO] === KS[B_HI] ? KS[B_LO] : trialError(n, LB, 17, useMad);
    for (; k <= nstep; k++) {
      const iscale = fr(K2_NUM[k] / range);
      let same = havePrev;
      for (let i = 0; i < n; i++) {
        let l = nearestInt(fr(iscale * XM[i]));
        l = l < 0 ? 0 : l > nmax ? nmax : l;
        if (same && LV[i] !== l) same = false;
        LV[i] = l;
      }
      havePrev = true;
      if (same || !trialFit(n, LV)) continue;
      const err = trialError(n, LV, R_SCALE, useMad);
      if (err < best) {
        for (let i = 0; i < n; i++) LB[i] = LV[i];
        best = err;
        scale = KS[R_SCALE];
        const m = KS[R_MIN];
        if (m !== min) {
          min = m;
          range = fr(max - min);
          for (let i = 0; i < n; i++) XM[i] = fr(X[i] - min);
        }
      }
    }
  }
  for (let i = 0; i < n; i++) L[lo + i] = LB[i];
  scales[j] = scale;
  mins[j] = -min;
}

// ---------------------------------------------------------------- make_qx_quants (rmse_type 1)

const QX_A = new Float64Array(32); // |x|
const QX_M0 = new Float64Array(32); // |level| at trial k = 0 (is = -9)
const QX_E1 = new Int32Array(32); // trial of the element's first |level| increase (>= 19: none)
const QX_E2 = new Int32Array(32); // trial of its second increase (>= 19: none)
const QX_LV = new Float64Array(32); // |levels| of one trial
const QX_LB = new Float64Array(32); // |levels| of the best trial
const QX_CAP = new Float64Array(32); // largest |level|: nmax for negative levels, nmax - 1 else
const QX_NEG = new Int32Array(32); // 1 where the level is negative
const QX_FIX = new Int32Array(32); // elements whose changes need a closer look
// per trial (1..18; 19.. collect changes past the last trial): changes of the exact sums
// sum w |x| |l|, sum w l^2, and the number of level changes
const QX_D1 = new Float64Array(64);
const QX_D2 = new Float64Array(64);
const QX_CNT = new Int32Array(64);
const QX_U8 = new Uint8ClampedArray(2);
const QX_NUM = new Float64Array(19); // float32(nmax + 0.1f*is), trial k = is + 9
const QX_IV = new Int32Array(32); // signed levels, for qxQuantsAsC
const QX_IB = new Int32Array(32);
const QX_RD = Math.fround(0.1);

/**
 * make_qx_quants' rounding factors for n elements: with g = (n + 2)u (C's float32 sums within
 * relative g), bounds of C's sumlx^2 (aHi, aLo) and best*suml2 (bHi, bLo) relative to the exact
 * values, and of C's best = float32(float32(sumlx / suml2) * sumlx) relative to sumlx^2 / suml2
 * (rLo, rHi). QX_BOUNDS[0] holds n.
 */
const QX_BOUNDS = new Float64Array(7);

function qxBounds(n: number): void {
  const g = (n + 2) * U * 1.01;
  QX_BOUNDS[0] = n;
  QX_BOUNDS[1] = (1 + g) * (1 + g) * (1 + U);
  QX_BOUNDS[2] = (1 - g) * (1 - g) * (1 - U);
  QX_BOUNDS[3] = (1 + g) * (1 + U);
  QX_BOUNDS[4] = (1 - g) * (1 - U);
  QX_BOUNDS[5] = (1 - g) * (1 - g) * (1 - U) * (1 - U) / (1 + g);
  QX_BOUNDS[6] = (1 + g) * (1 + g) * (1 + U) * (1 + U) / (1 - g);
}

/** |levels| of trial k into `M`: the level at k = 0 plus the increases up to k. */
function qxLevels(n: number, k: number, M: Float64Array): void {
  for (let i = 0; i < n; i++) {
    M[i] = QX_M0[i] + ((QX_E1[i] - k - 1) >>> 31) + ((QX_E2[i] - k - 1) >>> 31);
  }
}

/**
 * C's `best` (float32 scale * sum w x l, w = float32(x*x)) for the |levels| `M`, with C's float32
 * sum w x l in magnitude (every term has the sign of iscale) and sum w l^2 left in KS[0], KS[1].
 */
function qxBest(n: number, M: Float64Array): number {
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = QX_A[i], m = M[i];
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * m));
    suml2 = fr(suml2 + fr(fr(w * m) * m));
  }
  KS[0] = sumlx;
  KS[1] = suml2;
  return fr((suml2 !== 0 ? fr(sumlx / suml2) : 0) * sumlx);
}

/**
 * `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`: symmetric scale search with weights
 * x*x over 19 trial scales (is = 0 first, then -9..9). Reads x[xo..xo+n) (and its float32 bits
 * `xbits`), writes `L[lo + i]` in [0, 2*nmax) and the scale to `scales[j]`. n <= 32, nmax <= 32.
 *
 * Same result as the C loop with far less float32 work. Each level has the sign of iscale*x, so
 * the search runs on magnitudes, which grow with |iscale|: the trial where each passes its next
 * half-integer is computed directly (in double; when that is too close to call for C's float32
 * rounding, by evaluating levels as C does), giving every trial's exact sums by prefix sums. C's
 * test `sumlx^2 > best*suml2` is then decided from them and C's rounding bounds (all terms of each
 * sum share a sign, so its float32 sums are within (n + 2)u relative); only the final scale and
 * trials too close to call are computed in float32 as C does. A trial with the same levels as the
 * last one looked at cannot win and is skipped.
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  xbits: Int32Array,
  xo: number,
  L: Uint8Array,
  lo: number,
  scales: Float32Array,
  j: number,
): void {
  const A = QX_A, M0 = QX_M0, E1 = QX_E1, E2 = QX_E2, CAP = QX_CAP, NEG = QX_NEG;
  const D1 = QX_D1, D2 = QX_D2, CNT = QX_CNT;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[xo + i]);
    A[i] = a;
    amax = Math.max(amax, a);
  }
  // The rounding bounds below need float32 results that neither overflow nor go subnormal (or
  // are too small to matter): |x| within 2^-18..2^17 guarantees it (NaN fails the test).
  if (!(amax >= 2 ** -18 && amax <= 2 ** 17) || nmax > 32) {
    qxQuantsAsC(n, nmax, x, xo, L, lo, scales, j);
    return;
  }
  // C's max is the first x of largest magnitude; iscale has the sign of -max, and a level is
  // negative (down to -nmax, else up to nmax - 1) where x has the sign of max
  let im = 0;
  while (A[im] !== amax) im++;
  const maxBit = xbits[xo + im] >>> 31;
  if (QX_NUM[9] !== nmax) {
    for (let k = 0; k < 19; k++) QX_NUM[k] = fr(nmax + fr(QX_RD * (k - 9)));
  }
  for (let k = 0; k < 21; k++) {
    D1[k] = 0;
    D2[k] = 0;
    CNT[k] = 0;
  }
  // |levels| at k = 0 with their exact sums sum w |x| m, sum w m^2 (w = float32(x*x)). |level|
  // passes m + 0.5 at trial k = (m + 0.5) q + p0, q = |max| / (|x| 0.1f) >= 10 trials apart, so
  // an element changes at most twice; the crossing is exact up to C's float32 rounding of the
  // trial's iscale and product (< 5u 33 / 0.1 trials, `win`).
  const iscA = fr(QX_NUM[0] / amax);
  const qa = amax / QX_RD, p0 = 9 - nmax / QX_RD;
  const win = 32 * U * 33 / QX_RD, end = 18 + win;
  let t1 = 0, t2 = 0, nfix = 0;
  for (let i = 0; i < n; i++) {
    const a = A[i];
    const neg = ((xbits[xo + i] >>> 31) ^ maxBit ^ 1) & (a !== 0 ? 1 : 0);
    NEG[i] = neg;
    const cap = nmax - 1 + neg;
    CAP[i] = cap;
    const w = fr(a * a), wa = w * a;
    let m = (fr(iscA * a) + RND) - RND;
    if (m > cap) m = cap;
    M0[i] = m;
    t1 += wa * m;
    t2 += w * m * m;
    // The (at most two) crossings, kept free of data-dependent branches: comparisons are
    // combined with | and &, floor(p) clamped to 0..255 by a Uint8ClampedArray (it rounds half to
    // even; p - 0.5 near a tie means p near an integer, which goes to qxFixChanges anyway), and a
    // crossing past the last trial goes to a bucket of the element's own.
    const q = qa / a;
    const p = (m + 0.5) * q + p0, p2 = p + q;
    QX_U8[0] = p - 0.5;
    QX_U8[1] = p2 - 0.5;
    const f = QX_U8[0], f2 = QX_U8[1], fp = p - f, fp2 = p2 - f2;
    const in1 = bit(p < end) & bit(m < cap), in2 = in1 & bit(p2 < end) & bit(m + 1 < cap);
    const fix = (in1 & (bit(fp <= win) | bit(fp >= 1 - win))) |
      (in2 & (bit(fp2 <= win) | bit(fp2 >= 1 - win)));
    let k1 = (f + 1) * in1 + (21 + i) * (1 - in1);
    let k2 = (f2 + 1) * in2 + (37 + i) * (1 - in2);
    if (fix) {
      QX_FIX[nfix++] = i; // too close to call: below
      k1 = 21 + i;
      k2 = 37 + i;
    }
    E1[i] = k1;
    E2[i] = k2;
    D1[k1] += wa;
    D2[k1] += w * (2 * m + 1);
    CNT[k1]++;
    D1[k2] += wa;
    D2[k2] += w * (2 * m + 3);
    CNT[k2]++;
  }
  for (let f = 0; f < nfix; f++) qxFixChanges(QX_FIX[f], qa, p0, win, amax);
  // C's first trial: the levels at k = 9
  let s1 = t1, s2 = t2, s3 = 0, changed = 0;
  for (let k = 1; k <= 9; k++) {
    s1 += D1[k];
    s2 += D2[k];
    s3 += CNT[k];
  }
  changed = s3;
  // C's float32 sums lie within relative (n + 2)u of the exact ones (QX_BOUNDS)
  if (QX_BOUNDS[0] !== n) qxBounds(n);
  const aHi = QX_BOUNDS[1], aLo = QX_BOUNDS[2], bHi = QX_BOUNDS[3], bLo = QX_BOUNDS[4];
  const rLo = QX_BOUNDS[5], rHi = QX_BOUNDS[6];
  const ratio = s1 * s1 / s2;
  let bestLo = ratio * rLo, bestHi = ratio * rHi;
  // levels only grow, so two trials have the same levels exactly when as many changes precede
  // them: `nc` counts the changes up to the current trial, `ncb` up to the best one
  let nc = CNT[0], ncb = nc + s3;
  let kb = 9; // the best trial
  for (let k = 0; k < 19; k++) {
    if (k > 0) {
      t1 += D1[k];
      t2 += D2[k];
      changed |= CNT[k];
      nc += CNT[k];
    }
    // C: suml2 > 0 && sumlx*sumlx > best*suml2, with its float32 sums and best; the trial is
    // looked at when its levels changed since the last one looked at and differ from the best
    // one's (k = 9 is C's first trial, already counted; the same levels again change nothing)
    const a = t1 * t1;
    const look = bit(changed !== 0) & bit(k !== 9) & bit(nc !== ncb) &
      bit(a * aHi > bestLo * t2 * bLo);
    if (k !== 9) changed = 0;
    if (!look) continue; // the same levels as the last trial looked at, or surely not better
    if (a * aLo > bestHi * t2 * bHi) {
      kb = k;
      ncb = nc;
      const r = a / t2;
      bestLo = r * rLo;
      bestHi = r * rHi;
    } else {
      // too close to call: as C does
      if (bestLo !== bestHi) {
        qxLevels(n, kb, QX_LB);
        bestLo = bestHi = qxBest(n, QX_LB);
      }
      qxLevels(n, k, QX_LV);
      qxBest(n, QX_LV);
      const sl = KS[0], sq = KS[1];
      if (sq > 0 && fr(sl * sl) > fr(bestLo * sq)) {
        kb = k;
        ncb = nc;
        bestLo = bestHi = fr(fr(sl / sq) * sl);
      }
    }
  }
  // the best trial's levels, and its scale from C's float32 sums
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = A[i];
    const m = M0[i] + ((E1[i] - kb - 1) >>> 31) + ((E2[i] - kb - 1) >>> 31);
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * m));
    suml2 = fr(suml2 + fr(fr(w * m) * m));
    L[lo + i] = nmax + m - 2 * m * NEG[i];
  }
  // C's scale has the sign of iscale (-max)
  const r = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  scales[j] = r === 0 ? 0 : maxBit ? r : -r;
}

/**
 * The |level| changes of element i over trials 1..18 found the careful way (see makeQxQuants):
 * each crossing position is taken when clearly away from an integer, else the trial is found by
 * evaluating the level as C does.
 */
function qxFixChanges(i: number, qa: number, p0: number, win: number, amax: number): void {
  const a = QX_A[i], cap = QX_CAP[i], w = fr(a * a), wa = w * a, q = qa / a;
  let m = QX_M0[i], e = 0;
  let p = (m + 0.5) * q + p0;
  while (m < cap && p < 18 + win && e < 2) {
    const f = p | 0;
    let kk = f + 1;
    if (!(p - f > win && p - f < 1 - win && kk > 0)) {
      for (kk = f - 1 > 0 ? f - 1 : 1; kk < 19; kk++) {
        let t = (fr(fr(QX_NUM[kk] / amax) * a) + RND) - RND;
        if (t > cap) t = cap;
        if (t > m) break;
      }
    }
    if (kk > 18) break;
    if (e === 0) QX_E1[i] = kk;
    else QX_E2[i] = kk;
    QX_D1[kk] += wa;
    QX_D2[kk] += w * (2 * m + 1);
    QX_CNT[kk]++;
    m++;
    e++;
    p += q;
  }
}

/** make_qx_quants (rmse_type 1) exactly as C runs it, trial by trial. */
function qxQuantsAsC(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Uint8Array,
  lo: number,
  scales: Float32Array,
  j: number,
): void {
  const LV = QX_IV, LB = QX_IB;
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    scales[j] = 0;
    return;
  }
  let best = 0, scale = 0;
  for (let t = 0; t < 19; t++) {
    // C's first trial (k = 9, is = 0), then is = -9..-1, 1..9
    const k = t === 0 ? 9 : t <= 9 ? t - 1 : t;
    const iscale = t === 0 ? fr(-nmax / max) : fr(-fr(nmax + fr(QX_RD * (k - 9))) / max);
    let same = t !== 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(fr(iscale * x[xo + i]));
      l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
      if (same && LV[i] !== l) same = false;
      LV[i] = l;
    }
    if (same) continue;
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i], l = LV[i], w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (t === 0) {
      scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
      best = fr(scale * sumlx);
    } else if (!(suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2))) continue;
    else {
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
    for (let i = 0; i < n; i++) LB[i] = LV[i];
  }
  for (let i = 0; i < n; i++) L[lo + i] = LB[i] + nmax;
  scales[j] = scale;
}

/**
 * `get_scale_min_k4(j, q)`: the 6-bit scale and min of sub-block `j` (0..7) from the 12 packed
 * bytes at `q[qo]`, returned as `scale | min << 8`.
 */
export function getScaleMinK4(j: number, q: Uint8Array, qo: number): number {
  if (j < 4) return (q[qo + j] & 63) | ((q[qo + j + 4] & 63) << 8);
  const d = (q[qo + j + 4] & 0xf) | ((q[qo + j - 4] >> 6) << 4);
  const m = (q[qo + j + 4] >> 4) | ((q[qo + j] >> 6) << 4);
  return d | (m << 8);
}

const SB_W = new Float32Array(32);
const SB_SCALES = new Float32Array(8);
const SB_MINS = new Float32Array(8);
const SB_RDELTA = fr(0.1);

/**
 * The scale-and-min half of a Q4_K or Q5_K super-block, as both of ggml's quantizers run it: each
 * sub-block of 32 values at `src[xb..]` gets weights `av_x + |x|` and a scale and min from
 * `make_qkx2_quants` (levels 0..`nmax`, `rmin`, `nstep`); the 8 scales and mins become 6-bit
 * values packed into `dst[yb + 4 .. yb + 16)`, `d` and `dmin` go to `dst[yb .. yb + 4)` as fp16,
 * and every value is requantized with its packed scale and min into `levels[0 .. 256)` (a
 * sub-block whose scale is 0 keeps `make_qkx2_quants`' levels, as in C).
 */
export function quantizeScaleMinBlock(
  src: Float32Array,
  xb: number,
  dst: Uint8Array,
  yb: number,
  nmax: number,
  rmin: number,
  nstep: number,
  levels: Uint8Array,
): void {
  const W = SB_W, SCALES = SB_SCALES, MINS = SB_MINS;
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const xo = xb + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) {
      const v = src[xo + l];
      sumX2 = fr(sumX2 + fr(v * v));
    }
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) W[l] = avX + Math.abs(src[xo + l]);
    makeQkx2Quants(
      32,
      nmax,
      src,
      xo,
      W,
      levels,
      32 * j,
      SCALES,
      MINS,
      j,
      rmin,
      SB_RDELTA,
      nstep,
      false,
    );
    const scale = SCALES[j], min = MINS[j];
    if (scale > maxScale) maxScale = scale;
    if (min > maxMin) maxMin = min;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const so = yb + 4;
  for (let j = 0; j < 8; j++) {
    let ls = nearestInt(fr(invScale * SCALES[j])) & 255;
    let lm = nearestInt(fr(invMin * MINS[j])) & 255;
    if (ls > 63) ls = 63;
    if (lm > 63) lm = 63;
    if (j < 4) {
      dst[so + j] = ls;
      dst[so + j + 4] = lm;
    } else {
      dst[so + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      dst[so + j - 4] |= (ls >> 4) << 6;
      dst[so + j] |= (lm >> 4) << 6;
    }
  }
  const dh = fp32ToFp16(fr(maxScale / 63));
  const mh = fp32ToFp16(fr(maxMin / 63));
  dst[yb] = dh & 255;
  dst[yb + 1] = dh >> 8;
  dst[yb + 2] = mh & 255;
  dst[yb + 3] = mh >> 8;
  const dAll = FP16_TABLE[dh], mAll = FP16_TABLE[mh];
  for (let j = 0; j < 8; j++) {
    const sm = getScaleMinK4(j, dst, so);
    const d = fr(dAll * (sm & 255));
    if (d === 0) continue; // C: `if (!d)`, which NaN passes
    const dm = fr(mAll * (sm >> 8));
    const xo = xb + 32 * j;
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(src[xo + ii] + dm) / d));
      levels[32 * j + ii] = l < 0 ? 0 : l > nmax ? nmax : l;
    }
  }
}
