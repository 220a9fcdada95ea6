/**
 * The `quant_state.bitsandbytes__nf4` / `__fp4` tensor: bitsandbytes' `QuantState.as_dict(packed=True)`
 * packs the non-tensor fields of a 4-bit parameter as the UTF-8 bytes of Python's
 * `json.dumps(dict)` (separators `", "` and `": "`, keys in insertion order):
 *
 * `{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2048, 2048]}` and, with
 * double quantization, `, "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.0505...`
 * before the closing brace. `QuantState.from_dict` asserts that the key set is a subset of its
 * known keys, so nothing else may appear.
 * @module
 */
import { FormatError } from "@quantx/core";

/** bitsandbytes 4-bit data types. */
export type BnbQuantType = "nf4" | "fp4";

/** Torch dtype names bitsandbytes records (`str(torch.bfloat16).strip("torch.")`). */
export type TorchFloatName = "float32" | "float16" | "bfloat16";

/** The non-tensor fields of a bitsandbytes 4-bit `QuantState`. */
export interface BnbQuantState {
  /** `quant_type`. */
  quantType: BnbQuantType;
  /** `blocksize`: values per absmax. */
  blockSize: number;
  /** `dtype`: the parameter's dtype before quantization. */
  dtype: TorchFloatName;
  /** `shape`: the parameter's shape (`[out_features, in_features]` for a Linear weight). */
  shape: number[];
  /** Double quantization (`nested_*` fields), when used. */
  nested?: {
    /** `nested_blocksize` (256 in bitsandbytes). */
    blockSize: number;
    /** `nested_dtype` (`float32`). */
    dtype: TorchFloatName;
    /** `nested_offset`: the float32 mean subtracted from absmax before quantizing it. */
    offset: number;
  };
}

/** Suffix of the packed quant_state tensor's name after the parameter name. */
export function quantStateSuffix(quantType: BnbQuantType): string {
  return `.quant_state.bitsandbytes__${quantType}`;
}

/** Keys `QuantState.from_dict` accepts in the packed JSON (its `valid_qs_keys` minus tensors). */
export const QUANT_STATE_KEYS: readonly string[] = [
  "quant_type",
  "blocksize",
  "dtype",
  "shape",
  "nested_blocksize",
  "nested_dtype",
  "nested_offset",
];

/**
 * Python's `repr(float)` (what `json.dumps` writes for a float): the shortest digits that round
 * trip, positional for exponents -4..15 with at least one fractional digit (`6.0`), otherwise
 * scientific with a signed two-digit exponent (`1e-05`, `1.5e+16`). `NaN`, `Infinity` and
 * `-Infinity` as `json.dumps` writes them.
 *
 * @example
 * ```ts
 * import { pythonFloatRepr } from "@quantx/bnb";
 * console.log(pythonFloatRepr(6), pythonFloatRepr(0.00001), pythonFloatRepr(Math.fround(0.05)));
 * // 6.0 1e-05 0.05000000074505806
 * ```
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant, expText] = Math.abs(x).toExponential().split("e");
  const digits = mant.replace(".", "");
  const e = Number(expText);
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const es = e < 0 ? "-" : "+";
    return `${sign}${m}e${es}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
  const int = digits.slice(0, e + 1).padEnd(e + 1, "0");
  const frac = digits.slice(e + 1);
  return `${sign}${int}.${frac || "0"}`;
}

/**
 * The exact text bitsandbytes packs into `quant_state.bitsandbytes__<type>` (see the module doc).
 *
 * @example
 * ```ts
 * import { quantStateJson } from "@quantx/bnb";
 * console.log(quantStateJson({ quantType: "nf4", blockSize: 64, dtype: "bfloat16", shape: [8, 16] }));
 * // {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [8, 16]}
 * ```
 */
export function quantStateJson(state: BnbQuantState): string {
  let s = `{"quant_type": "${state.quantType}", "blocksize": ${state.blockSize}, ` +
    `"dtype": "${state.dtype}", "shape": [${state.shape.join(", ")}]`;
  if (state.nested) {
    s +=
      `, "nested_blocksize": ${state.nested.blockSize}, "nested_dtype": "${state.nested.dtype}", ` +
      `"nested_offset": ${pythonFloatRepr(state.nested.offset)}`;
  }
  return s + "}";
}

/** {@link quantStateJson} as UTF-8 bytes (the tensor's data). */
export function quantStateBytes(state: BnbQuantState): Uint8Array {
  return new TextEncoder().encode(quantStateJson(state));
}

/** Where a quant_state was read from, for error messages. */
export interface QuantStateOrigin {
  /** The parameter name (`model.layers.0.mlp.up_proj.weight`). */
  param: string;
  /** The file holding the quant_state tensor. */
  file?: string;
  /** Byte offset of the tensor's data in that file. */
  offset?: number;
}

const TORCH_FLOATS: readonly string[] = ["float32", "float16", "bfloat16"];

function isCount(v: unknown, min: number): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min;
}

/**
 * Parses and checks a packed quant_state (the tensor's bytes). `expectedType` is the type named
 * by the tensor (`bitsandbytes__nf4`). Throws a {@link FormatError} naming the parameter for
 * invalid UTF-8 or JSON, unknown or missing keys, a `quant_type` other than the tensor's, a bad
 * block size, dtype or shape, or incomplete `nested_*` fields.
 */
export function parseQuantState(
  bytes: Uint8Array,
  expectedType: BnbQuantType,
  origin: QuantStateOrigin,
): BnbQuantState {
  const fail = (reason: string): FormatError =>
    new FormatError(`parameter ${JSON.stringify(origin.param)}: quant_state ${reason}`, {
      file: origin.file,
      offset: origin.offset,
    });
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw fail("is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw fail(`is not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw fail("is not a JSON object");
  }
  const obj = value as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !QUANT_STATE_KEYS.includes(k));
  if (unknown.length) {
    throw fail(
      `has unknown key${unknown.length > 1 ? "s" : ""} ${
        unknown.map((k) => JSON.stringify(k)).join(", ")
      }`,
    );
  }
  for (const k of ["quant_type", "blocksize", "dtype", "shape"]) {
    if (!(k in obj)) throw fail(`lacks "${k}"`);
  }
  if (obj.quant_type !== expectedType) {
    throw fail(
      `says quant_type ${
        JSON.stringify(obj.quant_type)
      } but the tensor is bitsandbytes__${expectedType}`,
    );
  }
  if (!isCount(obj.blocksize, 1) || obj.blocksize > 1 << 24) {
    throw fail(`has blocksize ${JSON.stringify(obj.blocksize)}, not a positive integer`);
  }
  if (typeof obj.dtype !== "string" || !TORCH_FLOATS.includes(obj.dtype)) {
    throw fail(`has dtype ${JSON.stringify(obj.dtype)}, not one of ${TORCH_FLOATS.join(", ")}`);
  }
  const shape = obj.shape;
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => isCount(d, 0))) {
    throw fail(`has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
  }
  let n = 1;
  for (const d of shape as number[]) n *= d;
  if (!Number.isSafeInteger(n)) throw fail(`has shape ${JSON.stringify(shape)}, too large`);
  const state: BnbQuantState = {
    quantType: expectedType,
    blockSize: obj.blocksize,
    dtype: obj.dtype as TorchFloatName,
    shape: shape as number[],
  };
  const nestedKeys = ["nested_blocksize", "nested_dtype", "nested_offset"];
  const present = nestedKeys.filter((k) => k in obj);
  if (present.length > 0) {
    if (present.length !== 3) {
      throw fail(
        `has ${present.join(", ")} without ${nestedKeys.filter((k) => !(k in obj)).join(", ")}`,
      );
    }
    if (!isCount(obj.nested_blocksize, 1) || obj.nested_blocksize > 1 << 24) {
      throw fail(
        `has nested_blocksize ${JSON.stringify(obj.nested_blocksize)}, not a positive integer`,
      );
    }
    if (typeof obj.nested_dtype !== "string" || !TORCH_FLOATS.includes(obj.nested_dtype)) {
      throw fail(`has nested_dtype ${JSON.stringify(obj.nested_dtype)}`);
    }
    if (typeof obj.nested_offset !== "number" || !Number.isFinite(obj.nested_offset)) {
      throw fail(`has nested_offset ${JSON.stringify(obj.nested_offset)}, not a finite number`);
    }
    state.nested = {
      blockSize: obj.nested_blocksize,
      dtype: obj.nested_dtype as TorchFloatName,
      offset: Math.fround(obj.nested_offset),
    };
  }
  return state;
}
