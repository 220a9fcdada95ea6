/**
 * The ggml tensor type registry: every type id of current ggml (`enum ggml_type`, ids 0..42; the
 * removed ids 4, 5, 31..33 and 36..38 are absent) with its block size and bytes per block, as
 * ggml's `type_traits` table has them, and which of them QuantX can quantize and dequantize.
 *
 * Names are ggml's type names in lower case (`q4_k`, not `q4_K`); lookups ignore case.
 * @module
 */

/** A ggml tensor type. */
export interface GgmlType {
  /** ggml's type id (`enum ggml_type`), as stored in GGUF tensor infos. */
  readonly id: number;
  /** ggml's type name in lower case: `f32`, `q4_0`, `q4_k`, `iq4_xs`, `bf16`, ... */
  readonly name: string;
  /** Values per block (1 for plain number types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /** Whether {@link QUANT_TYPES} has it: QuantX encodes float32 values to it. */
  readonly canQuantize: boolean;
  /** Whether QuantX decodes it to float32. */
  readonly canDequantize: boolean;
}

/** The types QuantX quantizes and dequantizes (a subset of the ggml types). */
export type QuantType =
  | "f32"
  | "f16"
  | "bf16"
  | "q4_0"
  | "q4_1"
  | "q5_0"
  | "q5_1"
  | "q8_0"
  | "q2_k"
  | "q3_k"
  | "q4_k"
  | "q5_k"
  | "q6_k"
  | "iq4_nl"
  | "iq4_xs";

/** Every {@link QuantType}, floats first, then by ggml type id. */
export const QUANT_TYPES: readonly QuantType[] = Object.freeze(
  [
    "f32",
    "f16",
    "bf16",
    "q4_0",
    "q4_1",
    "q5_0",
    "q5_1",
    "q8_0",
    "q2_k",
    "q3_k",
    "q4_k",
    "q5_k",
    "q6_k",
    "iq4_nl",
    "iq4_xs",
  ] as const,
);

const QUANT_SET: ReadonlySet<string> = new Set(QUANT_TYPES);

/** Whether `name` is a {@link QuantType} (exact, lower-case spelling). */
export function isQuantType(name: string): name is QuantType {
  return QUANT_SET.has(name);
}

// id, name, block size, bytes per block (ggml.c type_traits)
const TABLE: [number, string, number, number][] = [
  [0, "f32", 1, 4],
  [1, "f16", 1, 2],
  [2, "q4_0", 32, 18],
  [3, "q4_1", 32, 20],
  [6, "q5_0", 32, 22],
  [7, "q5_1", 32, 24],
  [8, "q8_0", 32, 34],
  [9, "q8_1", 32, 36],
  [10, "q2_k", 256, 84],
  [11, "q3_k", 256, 110],
  [12, "q4_k", 256, 144],
  [13, "q5_k", 256, 176],
  [14, "q6_k", 256, 210],
  [15, "q8_k", 256, 292],
  [16, "iq2_xxs", 256, 66],
  [17, "iq2_xs", 256, 74],
  [18, "iq3_xxs", 256, 98],
  [19, "iq1_s", 256, 50],
  [20, "iq4_nl", 32, 18],
  [21, "iq3_s", 256, 110],
  [22, "iq2_s", 256, 82],
  [23, "iq4_xs", 256, 136],
  [24, "i8", 1, 1],
  [25, "i16", 1, 2],
  [26, "i32", 1, 4],
  [27, "i64", 1, 8],
  [28, "f64", 1, 8],
  [29, "iq1_m", 256, 56],
  [30, "bf16", 1, 2],
  [34, "tq1_0", 256, 54],
  [35, "tq2_0", 256, 66],
  [39, "mxfp4", 32, 17],
  [40, "nvfp4", 64, 36],
  [41, "q1_0", 128, 18],
  [42, "q2_0", 64, 18],
];

/** Every ggml type id in use, ascending (ggml's `enum ggml_type` without its removed ids). */
export const GGML_TYPES: readonly GgmlType[] = Object.freeze(
  TABLE.map(([id, name, blockSize, typeSize]) =>
    Object.freeze({
      id,
      name,
      blockSize,
      typeSize,
      canQuantize: QUANT_SET.has(name),
      canDequantize: QUANT_SET.has(name),
    })
  ),
);

const BY_ID = new Map<number, GgmlType>(GGML_TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map<string, GgmlType>(GGML_TYPES.map((t) => [t.name, t]));

/**
 * The ggml type with this id (`12`) or name (`"q4_k"`, any case: `"Q4_K"`); a {@link GgmlType}
 * is returned as is. Throws a TypeError for an id or name ggml does not have.
 */
export function ggmlType(nameOrId: string | number | GgmlType): GgmlType {
  if (typeof nameOrId === "object" && nameOrId !== null) {
    const t = BY_ID.get(nameOrId.id);
    if (t) return t;
    throw new TypeError(`unknown ggml type id ${nameOrId.id}`);
  }
  if (typeof nameOrId === "number") {
    const t = BY_ID.get(nameOrId);
    if (t) return t;
    throw new TypeError(`unknown ggml type id ${nameOrId}`);
  }
  if (typeof nameOrId === "string") {
    const t = BY_NAME.get(nameOrId.toLowerCase());
    if (t) return t;
    throw new TypeError(`unknown ggml type "${nameOrId}"`);
  }
  throw new TypeError(`a ggml type is a name or an id, not ${typeof nameOrId}`);
}

/**
 * Bytes of `n` values of `type` (a row of a tensor: `ne[0]` values). Throws a RangeError when `n`
 * is not a non-negative whole number of blocks.
 */
export function rowSize(type: string | number | GgmlType, n: number): number {
  const t = ggmlType(type);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${t.name}: ${n} is not a valid number of values`);
  }
  if (n % t.blockSize !== 0) {
    throw new RangeError(
      `${t.name}: ${n} values is not a multiple of the block size ${t.blockSize}`,
    );
  }
  return (n / t.blockSize) * t.typeSize;
}
