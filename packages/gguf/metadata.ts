/**
 * GGUF metadata: the 13 value types, typed values (each keeps its GGUF type, so a read-then-write
 * round trip is exact), validation and lookup helpers.
 * @module
 */

/** GGUF key/value types, as numbered in the file. */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Types whose values are JavaScript numbers. */
export type GgufNumberType =
  | GgufValueType.UINT8
  | GgufValueType.INT8
  | GgufValueType.UINT16
  | GgufValueType.INT16
  | GgufValueType.UINT32
  | GgufValueType.INT32
  | GgufValueType.FLOAT32
  | GgufValueType.FLOAT64;

/** Types whose values are JavaScript bigints (64-bit integers). */
export type GgufBigIntType = GgufValueType.UINT64 | GgufValueType.INT64;

/** A plain value of a non-array type. */
export type GgufScalar = number | bigint | boolean | string;

/** One item of an array: a scalar, or (arrays of arrays) an array value. */
export type GgufItem = GgufScalar | GgufArrayValue;

/** An array value: items of one `itemType`; when `itemType` is ARRAY, every item is a GgufArrayValue. */
export interface GgufArrayValue {
  /** Always {@link GgufValueType.ARRAY}. */
  type: GgufValueType.ARRAY;
  /** Type of every item. */
  itemType: GgufValueType;
  /** The items (numbers, bigints for 64-bit integers, booleans, strings or nested arrays). */
  value: GgufItem[];
}

/** A typed metadata value. 64-bit integers are bigints; every other number is a JavaScript number. */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.STRING; value: string }
  | GgufArrayValue;

/** Metadata as a reader returns it: keys in file order. */
export type GgufMetadata = Map<string, GgufValue>;

const NAMES = [
  "u8",
  "i8",
  "u16",
  "i16",
  "u32",
  "i32",
  "f32",
  "bool",
  "str",
  "arr",
  "u64",
  "i64",
  "f64",
];

const FIXED_SIZES = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];

/** True when `t` is one of the 13 GGUF value types. */
export function isGgufValueType(t: number): t is GgufValueType {
  return Number.isInteger(t) && t >= 0 && t <= 12;
}

/** Short name of a value type as llama.cpp prints it (`u8`, `i32`, `f32`, `str`, `arr`, ...). */
export function ggufValueTypeName(t: GgufValueType): string {
  return NAMES[t] ?? `unknown(${t})`;
}

/** Bytes of one value of a fixed-size type; 0 for STRING and ARRAY. */
export function ggufFixedSize(t: GgufValueType): number {
  return FIXED_SIZES[t] ?? 0;
}

/**
 * The fewest bytes one encoded value of type `t` can take (a string is at least its u64 length, an
 * array its u32 item type and u64 count). Readers multiply this by a declared count and compare
 * with the bytes left before allocating anything.
 */
export function ggufMinSize(t: GgufValueType): number {
  if (t === GgufValueType.STRING) return 8;
  if (t === GgufValueType.ARRAY) return 12;
  return FIXED_SIZES[t];
}

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

const BIG_RANGES: Partial<Record<GgufValueType, [bigint, bigint]>> = {
  [GgufValueType.UINT64]: [0n, 0xffffffffffffffffn],
  [GgufValueType.INT64]: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

/** Nested arrays deeper than this are refused by the reader and the writer. */
export const MAX_ARRAY_DEPTH = 16;

function item(type: GgufValueType, v: unknown, where: string, depth: number): GgufItem {
  const bad = (what: string): never => {
    throw new TypeError(`${where}: ${what} is not a valid ${ggufValueTypeName(type)} value`);
  };
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
    case GgufValueType.UINT32:
    case GgufValueType.INT32: {
      const [lo, hi] = INT_RANGES[type]!;
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) bad(String(v));
      return v as number;
    }
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      if (typeof v !== "number") bad(String(v));
      return v as number;
    case GgufValueType.UINT64:
    case GgufValueType.INT64: {
      const [lo, hi] = BIG_RANGES[type]!;
      let b: bigint;
      if (typeof v === "bigint") b = v;
      else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
      else return bad(String(v));
      if (b < lo || b > hi) bad(String(v));
      return b;
    }
    case GgufValueType.BOOL:
      if (typeof v !== "boolean") bad(String(v));
      return v as boolean;
    case GgufValueType.STRING:
      if (typeof v !== "string") bad(String(v));
      return v as string;
    case GgufValueType.ARRAY:
      return arrayValue(v, where, depth + 1);
    default:
      throw new TypeError(`${where}: unknown GGUF value type ${type}`);
  }
}

function arrayValue(v: unknown, where: string, depth: number): GgufArrayValue {
  if (depth > MAX_ARRAY_DEPTH) {
    throw new TypeError(`${where}: arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
  }
  const a = v as { type?: unknown; itemType?: unknown; value?: unknown } | null;
  if (
    a === null || typeof a !== "object" || !Array.isArray(a.value) ||
    typeof a.itemType !== "number" || !isGgufValueType(a.itemType) ||
    (a.type !== undefined && a.type !== GgufValueType.ARRAY)
  ) {
    throw new TypeError(`${where}: an ARRAY value must be { itemType, value: [...] }`);
  }
  const itemType = a.itemType;
  const items = a.value as unknown[];
  const out: GgufItem[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = item(itemType, items[i], `${where}[${i}]`, depth);
  return { type: GgufValueType.ARRAY, itemType, value: out };
}

/**
 * Check `value` against GGUF type `type` and return it as a {@link GgufValue}. Integers must be in
 * range; UINT64/INT64 take bigints (or safe-integer numbers, converted to bigint). An ARRAY takes
 * `{ itemType, value: [...] }`; arrays of arrays nest the same shape. Throws TypeError otherwise.
 *
 * @example
 * ```ts
 * import { ggufValue, GgufValueType } from "@quantx/gguf";
 * const v = ggufValue(GgufValueType.ARRAY, { itemType: GgufValueType.STRING, value: ["a", "b"] });
 * console.log(v.type === GgufValueType.ARRAY); // true
 * ```
 */
export function ggufValue(type: GgufValueType, value: unknown, where = "value"): GgufValue {
  if (type === GgufValueType.ARRAY) return arrayValue(value, where, 1);
  return { type, value: item(type, value, where, 0) } as GgufValue;
}

/** The value of `key` when it is a STRING; undefined when absent. Throws TypeError for another type. */
export function getString(md: GgufMetadata, key: string): string | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (v.type !== GgufValueType.STRING) {
    throw new TypeError(`metadata ${key} is ${ggufValueTypeName(v.type)}, not a string`);
  }
  return v.value;
}

/**
 * The value of `key` as a number when it is any integer or float type (64-bit integers must be
 * safe integers); undefined when absent. Throws TypeError for other types.
 */
export function getNumber(md: GgufMetadata, key: string): number | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") {
    const n = Number(v.value);
    if (!Number.isSafeInteger(n)) throw new RangeError(`metadata ${key} = ${v.value} is too large`);
    return n;
  }
  throw new TypeError(`metadata ${key} is ${ggufValueTypeName(v.type)}, not a number`);
}

/** The value of `key` when it is a BOOL; undefined when absent. Throws TypeError for another type. */
export function getBool(md: GgufMetadata, key: string): boolean | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (v.type !== GgufValueType.BOOL) {
    throw new TypeError(`metadata ${key} is ${ggufValueTypeName(v.type)}, not a bool`);
  }
  return v.value;
}

/** The array value of `key`; undefined when absent. Throws TypeError when it is not an array. */
export function getArray(md: GgufMetadata, key: string): GgufArrayValue | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (v.type !== GgufValueType.ARRAY) {
    throw new TypeError(`metadata ${key} is ${ggufValueTypeName(v.type)}, not an array`);
  }
  return v;
}

/** A metadata value as plain JavaScript (arrays of arrays become nested arrays; bigints stay). */
export function plainValue(v: GgufValue | GgufItem): unknown {
  if (typeof v !== "object") return v;
  if (v.type === GgufValueType.ARRAY) {
    return v.itemType === GgufValueType.ARRAY ? v.value.map((x) => plainValue(x)) : v.value;
  }
  return v.value;
}
