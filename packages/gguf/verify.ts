/**
 * GGUF verification: the layout rules llama.cpp enforces (via {@link openGguf}) plus the
 * conventions a loadable model file follows.
 * @module
 */
import { type ByteSource, FormatError } from "@quantx/core";
import { GgufValueType, ggufValueTypeName } from "./metadata.ts";
import { ggmlTypeLayout, type GgufFile, openGguf, padTo } from "./read.ts";
import { GGUF_MAX_TENSOR_NAME_BYTES } from "./write.ts";

/** What {@link verifyGguf} found. */
export interface GgufVerifyReport {
  /** True when there are no problems (warnings allowed). */
  ok: boolean;
  /** Things that make llama.cpp (or the GGUF spec) reject the file. */
  problems: string[];
  /** Things that are legal but unusual or risky. */
  warnings: string[];
}

const utf8 = new TextEncoder();

/** The convention checks on a file that parsed. */
function checkConventions(f: GgufFile, problems: string[], warnings: string[]): void {
  const keys = [...f.metadata.keys()];
  const arch = f.metadata.get("general.architecture");
  if (!arch) problems.push("general.architecture is missing");
  else if (arch.type !== GgufValueType.STRING) {
    problems.push(`general.architecture is ${ggufValueTypeName(arch.type)}, not a string`);
  } else if (keys[0] !== "general.architecture") {
    warnings.push(
      `general.architecture is key ${keys.indexOf("general.architecture")}, not the first`,
    );
  }

  const quantized = f.tensors.filter((t) => (ggmlTypeLayout(t.type)?.blockSize ?? 1) > 1);
  if (quantized.length > 0) {
    const qv = f.metadata.get("general.quantization_version");
    const what = `${quantized.length} tensors are quantized (e.g. ${quantized[0].name}, ${
      quantized[0].typeName
    })`;
    if (!qv) problems.push(`general.quantization_version is missing but ${what}`);
    else if (qv.type !== GgufValueType.UINT32) {
      warnings.push(`general.quantization_version is ${ggufValueTypeName(qv.type)}, not u32`);
    }
    if (!f.metadata.has("general.file_type")) {
      warnings.push(`general.file_type is missing but ${what}`);
    }
  }

  for (const [k, v] of f.metadata) {
    if (v.type === GgufValueType.ARRAY && v.itemType === GgufValueType.ARRAY) {
      problems.push(`key '${k}' is an array of arrays, which llama.cpp's GGUF reader rejects`);
    }
  }
  for (const t of f.tensors) {
    const n = utf8.encode(t.name).byteLength;
    if (n > GGUF_MAX_TENSOR_NAME_BYTES) {
      problems.push(
        `tensor name '${t.name}' is ${n} bytes; llama.cpp allows at most ${GGUF_MAX_TENSOR_NAME_BYTES}`,
      );
    }
  }
  if (!f.littleEndian) {
    warnings.push("the file is big-endian; llama.cpp on little-endian machines rejects it");
  }
  if (f.tensors.length > 0) {
    const last = f.tensors[f.tensors.length - 1];
    const end = f.dataOffset + last.offset + padTo(last.byteLength, f.alignment);
    if (f.size < end) {
      warnings.push(
        `the file ends at ${f.size}, before the padding after the last tensor (${end}); ` +
          `llama.cpp's gguf_init_from_file with data loading would fail`,
      );
    } else if (f.size > end) {
      warnings.push(`${f.size - end} bytes follow the end of the data section`);
    }
  }
  warnings.push(...f.warnings);
}

/**
 * Check a GGUF file: every layout rule of llama.cpp's reader (magic, version, counts, keys, tensor
 * infos, types, block sizes, alignment, offsets, data inside the file), then conventions:
 * `general.architecture` present (and first: a warning), `general.quantization_version` present
 * when anything is quantized, no arrays of arrays, tensor names within llama.cpp's limit.
 * Errors other than {@link FormatError} (e.g. a missing file) are thrown.
 *
 * @example
 * ```ts
 * import { verifyGguf } from "@quantx/gguf";
 * const r = await verifyGguf("../shared/golden/llama-tiny/gguf/q4_0.gguf");
 * console.log(r.ok, r.problems); // true []
 * ```
 */
export async function verifyGguf(source: ByteSource | string): Promise<GgufVerifyReport> {
  const problems: string[] = [];
  const warnings: string[] = [];
  let file: GgufFile | undefined;
  try {
    file = await openGguf(source);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    problems.push(e.message);
  }
  if (file) {
    try {
      checkConventions(file, problems, warnings);
    } finally {
      if (typeof source === "string") await file.close();
    }
  }
  return { ok: problems.length === 0, problems, warnings };
}
