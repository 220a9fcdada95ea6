/**
 * GGUF files as {@link Weights}: shapes reversed to row-major order, tensors decoded with the
 * kernels' dequantizers.
 * @module
 */
import { FormatError } from "@quantx/core";
import { type GgufFile, GgufValueType, openGguf } from "@quantx/gguf";
import { dequantize, ggmlType, type QuantType } from "@quantx/kernels";
import { locateValues, type Weights } from "../weights.ts";

/** Open a `.gguf` file. */
export async function openGgufWeights(path: string): Promise<Weights & { gguf: GgufFile }> {
  const file = await openGguf(path);
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of file.metadata) {
    metadata[k] = v.type === GgufValueType.FLOAT32 && typeof v.value === "number"
      ? shortestF32(v.value)
      : v.value;
  }
  const arch = metadata["general.architecture"];
  return {
    format: "gguf",
    path,
    gguf: file,
    tensors: file.tensors.map((t) => ({
      name: t.name,
      shape: [...t.shape].reverse(),
      dtype: t.typeName,
      byteLength: t.byteLength,
    })),
    architecture: typeof arch === "string" ? arch : undefined,
    metadata,
    details: { version: file.version, alignment: file.alignment },
    async readF32(name, start, count) {
      const t = byName.get(name);
      if (!t) throw new Error(`${path}: no tensor named ${name}`);
      const type = ggmlType(t.type);
      if (!type.canDequantize) {
        throw new FormatError(`tensor ${name} has type ${type.name}, which QuantX cannot decode`, {
          file: path,
        });
      }
      if (start % type.blockSize || count % type.blockSize) {
        throw new Error(`${name}: range ${start}+${count} is not whole ${type.name} blocks`);
      }
      const bytes = await file.read(
        t,
        (start / type.blockSize) * type.typeSize,
        (count / type.blockSize) * type.typeSize,
      );
      return dequantize(type.name as QuantType, bytes, count);
    },
    locate(name, start, count) {
      const t = byName.get(name);
      if (!t || !file.littleEndian) return undefined;
      const { byteLength, typeName: dtype } = t;
      return locateValues(
        { path, dataOffset: file.dataOffset + t.offset, byteLength, dtype },
        start,
        count,
      );
    },
    close: () => file.close(),
  };
}

/** The shortest decimal that reads back as the same float32 (1e-5, not 0.000009999999747...). */
export function shortestF32(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}
