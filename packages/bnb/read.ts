/**
 * Reading bitsandbytes 4-bit checkpoints: every parameter that has a
 * `quant_state.bitsandbytes__nf4|fp4` tensor is checked against its companions (weight codes,
 * absmax, quant_map, nested_*: dtypes, lengths, same shard) and decoded to float32 on demand,
 * as bitsandbytes' `dequantize_4bit` does (CUDA kernel semantics: `codebook[code] * absmax` in
 * float32, FP4 sign-magnitude; double-quantized absmax =
 * `float32(nested_quant_map[q] * nested_absmax[i / nested_blocksize]) + nested_offset`).
 * @module
 */
import { FormatError, QuantxError } from "@quantx/core";
import { FP4_CODEBOOK, NF4_CODEBOOK } from "@quantx/kernels";
import { openCheckpoint } from "@quantx/safetensors";
import { BNB_COMPANIONS } from "./plan.ts";
import {
  type BnbQuantState,
  type BnbQuantType,
  parseQuantState,
  type TorchFloatName,
} from "./quant_state.ts";
import { bnbQuantMap } from "./write.ts";

/** A tensor of the underlying checkpoint (a `SafetensorsTensor` fits). */
export interface BnbSourceTensor {
  /** Name. */
  name: string;
  /** Row-major shape. */
  shape: readonly number[];
  /** safetensors dtype, upper case. */
  dtype: string;
  /** Bytes of data. */
  byteLength: number;
  /** The file holding it (shard), when known. */
  file?: string;
  /** Absolute offset of its data in that file, when known. */
  dataOffset?: number;
}

/** A checkpoint to read (an opened `Checkpoint` or `SafetensorsFile` from `@quantx/safetensors` fits). */
export interface BnbSourceCheckpoint {
  /** Every stored tensor. */
  readonly tensors: readonly BnbSourceTensor[];
  /** config.json, when known. */
  readonly config?: Record<string, unknown>;
  /** Raw bytes of a tensor. */
  read(name: string, offset?: number, length?: number): Promise<Uint8Array>;
  /** Elements of a tensor as float32. */
  readF32(name: string, start?: number, count?: number): Promise<Float32Array>;
  /** Release the files. */
  close(): Promise<void>;
}

/** One 4-bit parameter of a bitsandbytes checkpoint. */
export interface BnbParam {
  /** Parameter name (`model.layers.0.mlp.up_proj.weight`), also the packed codes' tensor name. */
  name: string;
  /** Logical shape (the quant_state's `shape`). */
  shape: number[];
  /** Number of values. */
  count: number;
  /** `nf4` or `fp4`. */
  quantType: BnbQuantType;
  /** Values per absmax. */
  blockSize: number;
  /** The dtype the parameter had before quantization. */
  dtype: TorchFloatName;
  /** Whether absmax is double-quantized. */
  doubleQuant: boolean;
  /** `nested_blocksize`, with double quantization. */
  nestedBlockSize?: number;
  /** `nested_offset` (float32), with double quantization. */
  nestedOffset?: number;
  /** The parsed quant_state. */
  state: BnbQuantState;
  /** The shard holding all of the parameter's tensors, when known. */
  file?: string;
  /** Names of the stored tensors (codes, absmax, quant_map, nested_*, quant_state). */
  tensors: string[];
  /** Bytes of all those tensors. */
  byteLength: number;
}

/** A logical tensor: a 4-bit parameter (companions hidden) or a tensor kept as it is. */
export interface BnbTensor {
  /** Name. */
  name: string;
  /** Row-major shape. */
  shape: number[];
  /** `nf4` / `fp4` for a 4-bit parameter, else the stored safetensors dtype (`BF16`, ...). */
  dtype: string;
  /** Bytes stored (all companions included for a 4-bit parameter). */
  byteLength: number;
  /** The 4-bit parameter, when it is one. */
  param?: BnbParam;
}

/** An opened bitsandbytes 4-bit checkpoint. */
export interface BnbCheckpoint {
  /** The underlying checkpoint. */
  readonly source: BnbSourceCheckpoint;
  /** Logical tensors, in stored order. */
  readonly tensors: BnbTensor[];
  /** The 4-bit parameters. */
  readonly params: BnbParam[];
  /** config.json's `quantization_config`, when present. */
  readonly quantizationConfig?: Record<string, unknown>;
  /**
   * Summary for display: `quant_type` (`nf4`, `fp4` or `nf4, fp4`), `blocksize` (a number, or
   * the sizes joined by `, `), `double_quant` (`true`, `false` or `"mixed"`), `quantized_params`,
   * and `compute_dtype` when config.json says.
   */
  readonly details: Record<string, string | number | boolean>;
  /** Readable oddities (a stored quant_map that differs from the standard codebook, ...). */
  readonly warnings: string[];
  /** The 4-bit parameter named `name`, if any. */
  param(name: string): BnbParam | undefined;
  /** Elements `[start, start + count)` of a logical tensor as float32 (4-bit ones decoded). */
  readF32(name: string, start?: number, count?: number): Promise<Float32Array>;
  /** Close the underlying checkpoint. */
  close(): Promise<void>;
}

const QUANT_STATE_RE = /^(.+)\.quant_state\.bitsandbytes__([A-Za-z0-9_]+)$/;
const MAX_QUANT_STATE = 1 << 16;

/**
 * True when `ckpt` looks like a bitsandbytes 4-bit checkpoint: a `*.quant_state.bitsandbytes__*`
 * tensor, or a config.json `quantization_config` with `quant_method: "bitsandbytes"` and
 * `load_in_4bit`.
 */
export function isBnbCheckpoint(
  ckpt: { tensors: readonly { name: string }[]; config?: Record<string, unknown> },
): boolean {
  if (ckpt.tensors.some((t) => QUANT_STATE_RE.test(t.name))) return true;
  const qc = ckpt.config?.quantization_config as Record<string, unknown> | undefined;
  return qc?.quant_method === "bitsandbytes" && qc.load_in_4bit === true;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function f32(bytes: Uint8Array): Float32Array {
  const c = bytes.slice();
  return new Float32Array(c.buffer, 0, c.byteLength >> 2);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/**
 * Opens a bitsandbytes 4-bit checkpoint: a path (file, index or folder, through
 * `openCheckpoint`) or an already opened checkpoint (closed by {@link BnbCheckpoint.close}).
 *
 * @throws {FormatError} naming the parameter, its file and the tensor's offset: a quant_state
 * that is missing (companions or a U8 `[k, 1]` weight without one), in another shard than its
 * companions, not valid JSON, with unknown keys or a wrong shape; a missing companion; a
 * companion of the wrong dtype or length (absmax not one per block, ...).
 * @throws {QuantxError} `EUNSUPPORTED` for 8-bit (LLM.int8) checkpoints.
 *
 * @example
 * ```ts ignore
 * import { openBnb } from "@quantx/bnb";
 * const bnb = await openBnb("models/Llama-3.2-1B-bnb-4bit");
 * console.log(bnb.details); // { quant_type: "nf4", blocksize: 64, double_quant: true, ... }
 * const row = await bnb.readF32("model.layers.0.mlp.up_proj.weight", 0, 2048);
 * await bnb.close();
 * ```
 */
export async function openBnb(input: string | BnbSourceCheckpoint): Promise<BnbCheckpoint> {
  const source: BnbSourceCheckpoint = typeof input === "string"
    ? await openCheckpoint(input)
    : input;
  try {
    return await openFrom(source, typeof input === "string" ? input : "<checkpoint>");
  } catch (e) {
    if (typeof input === "string") await source.close().catch(() => {});
    throw e;
  }
}

async function openFrom(source: BnbSourceCheckpoint, label: string): Promise<BnbCheckpoint> {
  const byName = new Map(source.tensors.map((t) => [t.name, t]));
  const qc = source.config?.quantization_config as Record<string, unknown> | undefined;
  if (qc?.load_in_8bit === true || source.tensors.some((t) => t.name.endsWith(".SCB"))) {
    throw new QuantxError(`${label}: bitsandbytes 8-bit (LLM.int8) checkpoints are not supported`, {
      code: "EUNSUPPORTED",
      path: label,
    });
  }
  const where = (t: BnbSourceTensor) => ({ file: t.file ?? label, offset: t.dataOffset });
  const fail = (param: string, t: BnbSourceTensor, reason: string) =>
    new FormatError(`parameter ${JSON.stringify(param)}: ${reason}`, where(t));

  // quant_state tensors -> parameters
  const found = new Map<string, { qs: BnbSourceTensor; type: BnbQuantType }>();
  for (const t of source.tensors) {
    const m = QUANT_STATE_RE.exec(t.name);
    if (!m) continue;
    const [, param, type] = m;
    if (type !== "nf4" && type !== "fp4") {
      throw fail(param, t, `quant_state type bitsandbytes__${type} is not nf4 or fp4`);
    }
    if (found.has(param)) throw fail(param, t, "has two quant_state tensors");
    found.set(param, { qs: t, type });
  }
  // companions or 4-bit-looking weights without a quant_state
  for (const t of source.tensors) {
    for (const suffix of BNB_COMPANIONS) {
      if (!t.name.endsWith(suffix)) continue;
      const param = t.name.slice(0, -suffix.length);
      if (byName.has(param) && !found.has(param)) {
        throw fail(
          param,
          t,
          `has ${suffix.slice(1)} but no quant_state.bitsandbytes__nf4/fp4 tensor`,
        );
      }
    }
  }
  if (qc?.quant_method === "bitsandbytes" && qc.load_in_4bit === true) {
    for (const t of source.tensors) {
      if (
        t.dtype === "U8" && t.shape.length === 2 && t.shape[1] === 1 &&
        t.name.endsWith(".weight") && !found.has(t.name)
      ) {
        throw fail(t.name, t, `is packed 4-bit (U8 [${t.shape}]) but has no quant_state tensor`);
      }
    }
  }

  const warnings: string[] = [];
  const params: BnbParam[] = await Promise.all([...found].map(async ([name, { qs, type }]) => {
    if (qs.dtype !== "U8" || qs.shape.length !== 1 || qs.byteLength > MAX_QUANT_STATE) {
      throw fail(
        name,
        qs,
        `quant_state must be a U8 vector of at most ${MAX_QUANT_STATE} bytes, got ${qs.dtype} [${qs.shape}]`,
      );
    }
    const state = parseQuantState(await source.read(qs.name, 0, qs.byteLength), type, {
      param: name,
      ...where(qs),
    });
    const n = elementCount(state.shape);
    const blocks = Math.ceil(n / state.blockSize);
    const need = (suffix: string): BnbSourceTensor => {
      const t = byName.get(name + suffix);
      if (!t) {
        throw fail(
          name,
          qs,
          `${suffix ? suffix.slice(1) : "weight"} tensor ${
            JSON.stringify(name + suffix)
          } is missing`,
        );
      }
      if (qs.file !== undefined && t.file !== qs.file) {
        throw fail(
          name,
          t,
          `${
            suffix ? suffix.slice(1) : "weight"
          } is in ${t.file}, not in ${qs.file} with its quant_state`,
        );
      }
      return t;
    };
    const expect = (t: BnbSourceTensor, what: string, dtype: string, count: number) => {
      if (t.dtype !== dtype || elementCount(t.shape) !== count) {
        throw fail(
          name,
          t,
          `${what} must be ${dtype} with ${count} values, got ${t.dtype} [${t.shape}]`,
        );
      }
    };
    const weight = need("");
    const packed = Math.ceil(n / 2);
    if (weight.dtype === "U8") {
      expect(weight, "weight (packed codes)", "U8", packed);
    } else {
      // bnb_4bit_quant_storage other than uint8: ((n + 1) // (2 * itemsize), 1) elements
      const size = elementCount(weight.shape) > 0
        ? weight.byteLength / elementCount(weight.shape)
        : 0;
      const want = size > 0 ? Math.floor((n + 1) / (2 * size)) * size : -1;
      if (weight.byteLength !== want || weight.byteLength < packed) {
        throw fail(
          name,
          weight,
          `weight holds ${weight.byteLength} bytes of codes, ${packed} needed for shape [${state.shape}]`,
        );
      }
    }
    const absmax = need(".absmax");
    const quantMap = need(".quant_map");
    expect(quantMap, "quant_map", "F32", 16);
    const tensors = [name, absmax.name, quantMap.name];
    const nestedAbsmax = byName.get(name + ".nested_absmax");
    const nestedMap = byName.get(name + ".nested_quant_map");
    if (state.nested) {
      expect(absmax, "absmax (double-quantized)", "U8", blocks);
      const na = need(".nested_absmax"), nm = need(".nested_quant_map");
      expect(na, "nested_absmax", "F32", Math.ceil(blocks / state.nested.blockSize));
      expect(nm, "nested_quant_map", "F32", 256);
      tensors.push(na.name, nm.name);
    } else {
      if (nestedAbsmax || nestedMap) {
        throw fail(
          name,
          nestedAbsmax ?? nestedMap!,
          "has nested_* tensors but its quant_state has no nested_* fields",
        );
      }
      expect(absmax, "absmax", "F32", blocks);
    }
    tensors.push(qs.name);
    const stored = f32(await source.read(quantMap.name, 0, 64));
    if (
      !sameBits(stored, bnbQuantMap(type)) &&
      !sameBits(stored, type === "nf4" ? NF4_CODEBOOK : FP4_CODEBOOK)
    ) {
      warnings.push(
        `parameter ${
          JSON.stringify(name)
        }: quant_map differs from bitsandbytes' ${type} codebook; ` +
          `decoded with the standard codebook, as bitsandbytes' kernels do`,
      );
    }
    return {
      name,
      shape: [...state.shape],
      count: n,
      quantType: type,
      blockSize: state.blockSize,
      dtype: state.dtype,
      doubleQuant: state.nested !== undefined,
      nestedBlockSize: state.nested?.blockSize,
      nestedOffset: state.nested?.offset,
      state,
      file: qs.file,
      tensors,
      byteLength: tensors.reduce((s, t) => s + byName.get(t)!.byteLength, 0),
    };
  }));
  const paramByName = new Map(params.map((p) => [p.name, p]));
  const hidden = new Set(params.flatMap((p) => p.tensors.slice(1)));
  const tensors: BnbTensor[] = [];
  for (const t of source.tensors) {
    if (hidden.has(t.name)) continue;
    const p = paramByName.get(t.name);
    tensors.push(
      p
        ? {
          name: p.name,
          shape: [...p.shape],
          dtype: p.quantType,
          byteLength: p.byteLength,
          param: p,
        }
        : { name: t.name, shape: [...t.shape], dtype: t.dtype, byteLength: t.byteLength },
    );
  }

  const uniq = <T>(xs: T[]) => [...new Set(xs)];
  const types = uniq(params.map((p) => p.quantType)).sort();
  const sizes = uniq(params.map((p) => p.blockSize)).sort((a, b) => a - b);
  const dq = uniq(params.map((p) => p.doubleQuant));
  const details: Record<string, string | number | boolean> = {
    quant_type: types.join(", "),
    blocksize: sizes.length === 1 ? sizes[0] : sizes.join(", "),
    double_quant: dq.length === 1 ? dq[0] : dq.length === 0 ? false : "mixed",
    quantized_params: params.length,
  };
  if (typeof qc?.bnb_4bit_compute_dtype === "string") {
    details.compute_dtype = qc.bnb_4bit_compute_dtype;
  }

  const nestedMaps = new Map<string, Promise<Float32Array>>();
  const nestedMap = (p: BnbParam) => {
    let m = nestedMaps.get(p.name);
    if (!m) {
      m = source.read(p.name + ".nested_quant_map", 0, 1024).then(f32);
      m.catch(() => nestedMaps.delete(p.name));
      nestedMaps.set(p.name, m);
    }
    return m;
  };

  /** Decoded absmax of blocks [k0, k1). */
  const readAbsmax = async (p: BnbParam, k0: number, k1: number): Promise<Float32Array> => {
    if (!p.doubleQuant) return f32(await source.read(p.name + ".absmax", k0 * 4, (k1 - k0) * 4));
    const nbs = p.nestedBlockSize!;
    const j0 = Math.floor(k0 / nbs), j1 = Math.floor((k1 - 1) / nbs) + 1;
    const [q, nested, map] = await Promise.all([
      source.read(p.name + ".absmax", k0, k1 - k0),
      source.read(p.name + ".nested_absmax", j0 * 4, (j1 - j0) * 4).then(f32),
      nestedMap(p),
    ]);
    const off = p.nestedOffset!;
    const out = new Float32Array(k1 - k0);
    for (let k = k0; k < k1; k++) {
      out[k - k0] = Math.fround(map[q[k - k0]] * nested[Math.floor(k / nbs) - j0]) + off;
    }
    return out;
  };

  const decode = async (p: BnbParam, start: number, count: number): Promise<Float32Array> => {
    const out = new Float32Array(count);
    if (count === 0) return out;
    const end = start + count;
    const b0 = start >> 1, b1 = (end + 1) >> 1;
    const bs = p.blockSize;
    const k0 = Math.floor(start / bs), k1 = Math.floor((end - 1) / bs) + 1;
    const [codes, absmax] = await Promise.all([
      source.read(p.name, b0, b1 - b0),
      readAbsmax(p, k0, k1),
    ]);
    const book = p.quantType === "nf4" ? NF4_CODEBOOK : FP4_CODEBOOK;
    for (let i = start; i < end; i++) {
      const byte = codes[(i >> 1) - b0];
      out[i - start] = book[(i & 1) === 0 ? byte >> 4 : byte & 15] *
        absmax[Math.floor(i / bs) - k0];
    }
    return out;
  };

  return {
    source,
    tensors,
    params,
    quantizationConfig: qc,
    details,
    warnings,
    param: (name) => paramByName.get(name),
    async readF32(name, start = 0, count?) {
      const p = paramByName.get(name);
      if (!p) return await source.readF32(name, start, count);
      const n = count ?? p.count - start;
      if (
        !Number.isSafeInteger(start) || !Number.isSafeInteger(n) || start < 0 || n < 0 ||
        start + n > p.count
      ) {
        throw new QuantxError(
          `${label}: elements [${start}, ${start + n}) are outside ${
            JSON.stringify(name)
          } (${p.count} values)`,
          { code: "EINVAL", path: label },
        );
      }
      return await decode(p, start, n);
    },
    close: () => source.close(),
  };
}
