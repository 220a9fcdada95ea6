/**
 * Format detection by magic bytes and folder contents, never by file name alone.
 * @module
 */
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { FormatError } from "@quantx/core";

/** What a path holds. */
export type DetectedKind =
  | "hf-folder"
  | "safetensors"
  | "safetensors-index"
  | "gguf"
  | "qnat";

/** Detect what `path` holds. Throws a {@link FormatError} for anything QuantX cannot read. */
export async function detectKind(path: string): Promise<DetectedKind> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new FormatError("no such file or folder", { file: path });
  }
  if (info.isDirectory()) {
    const names = ["model.safetensors", "model.safetensors.index.json"];
    for (const n of names) {
      if (await exists(join(path, n))) return "hf-folder";
    }
    throw new FormatError(
      "folder has neither model.safetensors nor model.safetensors.index.json",
      { file: path },
    );
  }
  if (path.endsWith(".json")) {
    const text = await readFile(path, "utf8");
    if (/"weight_map"/.test(text)) return "safetensors-index";
    throw new FormatError("JSON file is not a safetensors index (no weight_map)", {
      file: path,
      offset: 0,
    });
  }
  const head = new Uint8Array(9);
  const fh = await open(path, "r");
  let got = 0;
  try {
    got = (await fh.read(head, 0, 9, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  const magic = new TextDecoder().decode(head.subarray(0, 4));
  if (got >= 4 && magic === "GGUF") return "gguf";
  if (got >= 4 && magic === "QNAT") return "qnat";
  if (got === 9 && head[8] === 0x7b /* { */) return "safetensors";
  throw new FormatError(
    "unknown format: expected GGUF, safetensors, a safetensors index, QNAT or a Hugging Face folder",
    { file: path, offset: 0 },
  );
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
