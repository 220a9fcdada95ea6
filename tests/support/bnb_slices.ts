/**
 * The real bitsandbytes slices of ../shared/fixtures/real-bnb-slices (Llama-3.2-1B, NF4, NF4 with
 * double quantization, FP4) and the safetensors entries transformers saves for one parameter
 * holding such a slice.
 * @module
 */
import { readFile } from "node:fs/promises";
import { quantStateJson } from "@quantx/bnb";
import type { SafetensorsDataEntry } from "@quantx/safetensors";

const FIXTURES = new URL("../../../shared/fixtures/real-bnb-slices/", import.meta.url);

/** The parameter name the slices are stored under. */
export const P = "model.layers.3.mlp.down_proj.weight";

/** One slice as the fixture file holds it. */
export interface Slice {
  format: number;
  n: number;
  weight: Uint8Array;
  absmax: Uint8Array;
  quantMap: Uint8Array;
  nestedAbsmax: Uint8Array;
  nestedQuantMap: Uint8Array;
  expected: Uint16Array;
  offset: number;
}

/** Read the slice file `name` (layout: ../shared/fixtures/README.md). */
export async function slice(name: string): Promise<Slice> {
  const b = new Uint8Array(await readFile(new URL(name, FIXTURES)));
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const h = Array.from({ length: 9 }, (_, i) => v.getUint32(i * 4, true));
  let o = 40;
  const take = (len: number) => b.slice(o, o += len);
  const [format, n, , wl, al, ql, nal, nql, el] = h;
  const weight = take(wl), absmax = take(al), quantMap = take(ql);
  const nestedAbsmax = take(nal), nestedQuantMap = take(nql), expected = take(el);
  return {
    format,
    n,
    weight,
    absmax,
    quantMap,
    nestedAbsmax,
    nestedQuantMap,
    expected: new Uint16Array(expected.buffer),
    offset: v.getFloat32(36, true),
  };
}

/** The tensors transformers would save for one parameter holding the fixture's data. */
export function fixtureEntries(
  s: Slice,
  type: "nf4" | "fp4",
  shape = [16, 256],
): SafetensorsDataEntry[] {
  const nested = s.format === 2;
  const entries: SafetensorsDataEntry[] = [
    { name: P, dtype: "U8", shape: [s.weight.length, 1], data: s.weight },
    { name: `${P}.absmax`, dtype: nested ? "U8" : "F32", shape: [64], data: s.absmax },
    { name: `${P}.quant_map`, dtype: "F32", shape: [16], data: s.quantMap },
  ];
  if (nested) {
    entries.push(
      { name: `${P}.nested_absmax`, dtype: "F32", shape: [1], data: s.nestedAbsmax },
      { name: `${P}.nested_quant_map`, dtype: "F32", shape: [256], data: s.nestedQuantMap },
    );
  }
  const qs = quantStateJson({
    quantType: type,
    blockSize: 64,
    dtype: "bfloat16",
    shape,
    ...(nested ? { nested: { blockSize: 256, dtype: "float32" as const, offset: s.offset } } : {}),
  });
  const data = new TextEncoder().encode(qs);
  entries.push({
    name: `${P}.quant_state.bitsandbytes__${type}`,
    dtype: "U8",
    shape: [data.length],
    data,
  });
  return entries;
}
