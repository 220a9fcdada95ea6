/**
 * Planning a GGUF output: tensor names, `ne` shapes, per-tensor types and metadata, computed
 * before any data is read so the writer can lay out the file up front.
 * @module
 */
import { basename } from "node:path";
import { GgufValueType } from "@quantx/gguf";
import { ggmlType, rowSize } from "@quantx/kernels";
import type { Plan, PlanEntry, QuantizeOptions } from "./options.ts";
import { rowLength, tensorElements, type Weights } from "./weights.ts";
import { UserError } from "./user_error.ts";

/** One metadata key/value with its GGUF type. */
export interface GgufKv {
  /** Key, e.g. `general.architecture`. */
  key: string;
  /** GGUF value type. */
  type: GgufValueType;
  /** Value (arrays: `{ itemType, value }` as the writer takes them). */
  value: unknown;
}

/** Rows of a chunk rewritten before quantization (the q/k permutation). */
export interface RowTransform {
  /** Chunks must hold a multiple of this many rows. */
  rowMultiple: number;
  /** Return the transformed values of rows `[row, row + rows)`. */
  apply(values: Float32Array, row: number, rows: number): Float32Array;
}

/** A plan for a GGUF file. */
export interface GgufPlan extends Plan {
  /** `general.alignment`. */
  alignment: number;
  /** Metadata in write order (`general.architecture` first). */
  kv: GgufKv[];
  /** Per output tensor name, a row transform to apply. */
  transforms: Map<string, RowTransform>;
}

/** ggml types `--type` takes for GGUF output. */
export const GGUF_TENSOR_TYPES = [
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
] as const;

/** Bytes of a tensor of `type` with ggml shape `ne`. */
export function tensorBytes(type: string, ne: readonly number[]): number {
  const rows = ne.slice(1).reduce((a, b) => a * b, 1);
  return rowSize(type, ne[0]) * rows;
}

/** Plan a generic GGUF: names kept, shapes reversed, every eligible tensor of `type`. */
export function planGenericGguf(
  weights: Weights,
  output: string,
  options: QuantizeOptions,
): GgufPlan {
  const type = (options.type ?? "q8_0").toLowerCase();
  if (!(GGUF_TENSOR_TYPES as readonly string[]).includes(type)) {
    throw new UserError(
      `unknown --type "${options.type}" for GGUF; expected one of ${GGUF_TENSOR_TYPES.join(" ")}`,
    );
  }
  const notices: string[] = [];
  const entries: PlanEntry[] = [];
  for (const t of weights.tensors) {
    const ne = [...t.shape].reverse();
    if (ne.length === 0) ne.push(1);
    let chosen = t.shape.length >= 2 ? type : "f32";
    const override = options.tensorTypes?.find((o) => o.pattern.test(t.name));
    if (override) chosen = override.type;
    const block = ggmlType(chosen).blockSize;
    if (ne[0] % block !== 0 && override) {
      throw new UserError(
        `${t.name}: row length ${
          ne[0]
        } is not a multiple of ${chosen}'s block size ${block}, so it cannot be ${chosen}`,
      );
    }
    if (ne[0] % block !== 0) {
      notices.push(
        `${t.name}: row length ${
          ne[0]
        } is not a multiple of ${chosen}'s block size ${block}; kept as f32`,
      );
      chosen = "f32";
    }
    entries.push({
      name: t.name,
      source: t.name,
      shape: ne,
      type: chosen,
      bytes: tensorBytes(chosen, ne),
      elements: tensorElements(t),
    });
  }
  const kv: GgufKv[] = [
    {
      key: "general.architecture",
      type: GgufValueType.STRING,
      value: weights.architecture ?? "generic",
    },
    { key: "general.name", type: GgufValueType.STRING, value: basename(weights.path) },
    { key: "general.quantization_version", type: GgufValueType.UINT32, value: 2 },
  ];
  return {
    format: "gguf",
    output,
    architecture: weights.architecture,
    fileType: type,
    entries,
    totalBytes: entries.reduce((s, e) => s + e.bytes, 0),
    notices,
    alignment: 32,
    kv,
    transforms: new Map(),
  };
}

/** Row length helper re-exported for planners. */
export { rowLength };

/** Plan a GGUF output for any input (conversion rules where the architecture is known). */
export function planGguf(
  weights: Weights,
  output: string,
  options: QuantizeOptions,
): Promise<GgufPlan> {
  return Promise.resolve(planGenericGguf(weights, output, options));
}
