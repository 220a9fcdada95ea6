/**
 * Checkpoints: one `.safetensors` file, a sharded `*.safetensors.index.json`, or a Hugging Face
 * folder (config.json, the weights, tokenizer files), all seen as one list of tensors.
 * @module
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { FormatError, QuantxError } from "@quantx/core";
import { brief, isObject, parseJsonBytes, scanMembers, skipWs } from "./json.ts";
import { openSafetensors, type SafetensorsFile, type SafetensorsTensor } from "./read.ts";

/** File name of the index that `save_pretrained` writes for a sharded checkpoint. */
export const INDEX_FILE = "model.safetensors.index.json";
/** File name of an unsharded checkpoint's weights. */
export const WEIGHTS_FILE = "model.safetensors";
/** Largest index or config JSON file read (bytes). */
export const MAX_JSON_FILE = 100_000_000;

/** Config and tokenizer files of a Hugging Face folder that {@link Checkpoint.files} lists. */
export const CHECKPOINT_SIDE_FILES: readonly string[] = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "tokenizer.model",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "vocab.txt",
  "merges.txt",
  "spiece.model",
  "sentencepiece.bpe.model",
  "tokenizer.tiktoken",
  "chat_template.jinja",
  "chat_template.json",
  "preprocessor_config.json",
  "processor_config.json",
];

/** A checkpoint opened by {@link openCheckpoint}: headers read, tensor data read on demand. */
export interface Checkpoint {
  /** The path as given. */
  readonly path: string;
  /** What the path is: one safetensors file, an index JSON, or a folder. */
  readonly kind: "file" | "index" | "folder";
  /**
   * Folder holding the checkpoint's files: the folder itself, the index's folder, or a single
   * file's folder when a `config.json` sits beside it.
   */
  readonly dir?: string;
  /** Parsed `config.json` of {@link Checkpoint.dir}, when present. */
  readonly config?: Record<string, unknown>;
  /** Every tensor: in `weight_map` order for an index, in file order for a single file. */
  readonly tensors: SafetensorsTensor[];
  /** `__metadata__` of the file, or of all shards together (the first shard to set a key wins). */
  readonly metadata: Record<string, string>;
  /** The index's `metadata` object (`total_size`, ...); empty without an index. */
  readonly indexMetadata: Record<string, unknown>;
  /** Config and tokenizer files present in {@link Checkpoint.dir}, as names relative to it. */
  readonly files: string[];
  /** The safetensors files, open (one for an unsharded checkpoint). */
  readonly shards: SafetensorsFile[];
  /** Readable oddities (gaps in files, tensors a shard holds but the index does not list, ...). */
  readonly warnings: string[];
  /** The tensor named `name`, if any. */
  tensor(name: string): SafetensorsTensor | undefined;
  /** Raw bytes of a tensor (see {@link SafetensorsFile.read}). */
  read(name: string, offset?: number, length?: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Elements `[start, start + count)` of a tensor as float32 (see {@link SafetensorsFile.readF32}). */
  readF32(name: string, start?: number, count?: number, into?: Float32Array): Promise<Float32Array>;
  /** Close every shard. Safe to call twice. */
  close(): Promise<void>;
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  const bytes = await readSmallFile(path);
  const root = parseJsonBytes(bytes, path, 0);
  if (!isObject(root)) {
    throw new FormatError(`expected a JSON object, got ${brief(root)}`, {
      file: path,
      offset: skipWs(bytes, 0),
    });
  }
  return root;
}

async function readSmallFile(path: string): Promise<Uint8Array> {
  const info = await stat(path);
  if (info.size > MAX_JSON_FILE) {
    throw new FormatError(
      `JSON file of ${info.size} bytes is over the ${MAX_JSON_FILE}-byte limit`,
      {
        file: path,
        offset: 0,
      },
    );
  }
  return new Uint8Array(await readFile(path));
}

/** Pick the weights of a folder: the index, `model.safetensors`, or its only `.safetensors`. */
async function folderWeights(dir: string): Promise<{ path: string; index: boolean }> {
  if (await statOrUndefined(join(dir, INDEX_FILE))) {
    return { path: join(dir, INDEX_FILE), index: true };
  }
  if (await statOrUndefined(join(dir, WEIGHTS_FILE))) {
    return { path: join(dir, WEIGHTS_FILE), index: false };
  }
  const names = (await readdir(dir)).sort();
  const indexes = names.filter((n) => n.endsWith(".safetensors.index.json"));
  if (indexes.length === 1) return { path: join(dir, indexes[0]), index: true };
  const files = names.filter((n) => n.endsWith(".safetensors"));
  if (indexes.length === 0 && files.length === 1) {
    return { path: join(dir, files[0]), index: false };
  }
  const found = [...indexes, ...files];
  throw new QuantxError(
    `${dir}: folder has neither ${WEIGHTS_FILE} nor ${INDEX_FILE}` +
      (found.length ? ` (and more than one candidate: ${found.join(", ")})` : ""),
    { code: "ENOENT", path: dir },
  );
}

async function sideFiles(dir: string): Promise<string[]> {
  const known = new Set(CHECKPOINT_SIDE_FILES);
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (!known.has(name)) continue;
    const info = await statOrUndefined(join(dir, name));
    if (info?.isFile()) out.push(name);
  }
  return out;
}

interface IndexEntry {
  name: string;
  shard: string;
  keyPos: number;
}

/** Parse and check an index file: `weight_map` of tensor name -> shard file inside `dir`. */
async function parseIndex(
  path: string,
  dir: string,
): Promise<{ entries: IndexEntry[]; metadata: Record<string, unknown> }> {
  const bytes = await readSmallFile(path);
  const root = parseJsonBytes(bytes, path, 0);
  const rootPos = skipWs(bytes, 0);
  if (!isObject(root)) {
    throw new FormatError(`index is ${brief(root)}, not a JSON object`, {
      file: path,
      offset: rootPos,
    });
  }
  const members = scanMembers(bytes, rootPos);
  const wm = members.find((m) => m.key === "weight_map");
  if (!wm) throw new FormatError("index has no weight_map", { file: path, offset: rootPos });
  if (!isObject(root.weight_map)) {
    throw new FormatError(`weight_map must be an object, got ${brief(root.weight_map)}`, {
      file: path,
      offset: wm.valuePos,
    });
  }
  const meta = members.find((m) => m.key === "metadata");
  let metadata: Record<string, unknown> = {};
  if (meta && root.metadata !== null) {
    if (!isObject(root.metadata)) {
      throw new FormatError(`metadata must be an object, got ${brief(root.metadata)}`, {
        file: path,
        offset: meta.valuePos,
      });
    }
    metadata = root.metadata;
  }
  const map = root.weight_map;
  const seen = new Set<string>();
  const entries: IndexEntry[] = [];
  const base = resolve(dir);
  for (const m of scanMembers(bytes, wm.valuePos)) {
    const at = { file: path, offset: m.keyPos };
    if (seen.has(m.key)) {
      throw new FormatError(`duplicate tensor ${brief(m.key)} in weight_map`, at);
    }
    seen.add(m.key);
    const shard = map[m.key];
    if (typeof shard !== "string" || shard === "") {
      throw new FormatError(
        `weight_map[${brief(m.key)}] must be a file name, got ${brief(shard)}`,
        at,
      );
    }
    const rel = relative(base, resolve(base, shard));
    if (isAbsolute(shard) || rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
      throw new FormatError(
        `weight_map[${brief(m.key)}] names ${
          brief(shard)
        }, which is not a file in the index's folder`,
        at,
      );
    }
    entries.push({ name: m.key, shard, keyPos: m.keyPos });
  }
  return { entries, metadata };
}

/**
 * Open a checkpoint: a `.safetensors` file, a `*.safetensors.index.json`, or a Hugging Face
 * folder (`config.json` plus `model.safetensors` or `model.safetensors.index.json`; a folder with
 * a single `.safetensors` file or index is accepted too).
 *
 * Every shard is opened and its header validated, and every `weight_map` entry is checked: its
 * shard must exist inside the index's folder and hold that tensor. No tensor data is read.
 *
 * @throws {FormatError} for a malformed safetensors file, index or config.json (naming that file
 * and the byte offset), a missing shard or a tensor the map puts in the wrong shard (naming the
 * index and the offset of the entry).
 * @throws {QuantxError} `ENOENT` when the path does not exist or a folder holds no weights.
 *
 * @example
 * ```ts ignore
 * import { openCheckpoint } from "@quantx/safetensors";
 * const ckpt = await openCheckpoint("models/SmolLM2-135M");
 * console.log(ckpt.config?.architectures, ckpt.tensors.length, ckpt.files);
 * const row = await ckpt.readF32("model.embed_tokens.weight", 0, 576);
 * await ckpt.close();
 * ```
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const info = await statOrUndefined(path);
  if (!info) {
    throw new QuantxError(`${path}: no such file or folder`, { code: "ENOENT", path });
  }
  let kind: Checkpoint["kind"];
  let weights: string;
  let isIndex: boolean;
  let dir: string | undefined;
  if (info.isDirectory()) {
    kind = "folder";
    dir = path;
    const w = await folderWeights(path);
    weights = w.path;
    isIndex = w.index;
  } else {
    isIndex = path.endsWith(".json");
    kind = isIndex ? "index" : "file";
    weights = path;
    const folder = dirname(path);
    if (isIndex || (await statOrUndefined(join(folder, "config.json")))?.isFile()) dir = folder;
  }
  let config: Record<string, unknown> | undefined;
  if (dir !== undefined && (await statOrUndefined(join(dir, "config.json")))?.isFile()) {
    config = await readJsonObject(join(dir, "config.json"));
  }
  const files = dir === undefined ? [] : await sideFiles(dir);

  const shards: SafetensorsFile[] = [];
  const warnings: string[] = [];
  let tensors: SafetensorsTensor[];
  let owner: Map<string, SafetensorsFile>;
  let indexMetadata: Record<string, unknown> = {};
  try {
    if (!isIndex) {
      const f = await openSafetensors(weights);
      shards.push(f);
      tensors = f.tensors;
      owner = new Map(tensors.map((t) => [t.name, f]));
      warnings.push(...f.warnings.map((w) => `${f.name}: ${w}`));
    } else {
      const indexDir = dirname(weights);
      const { entries, metadata } = await parseIndex(weights, indexDir);
      indexMetadata = metadata;
      const byShard = new Map<string, SafetensorsFile>();
      for (const e of entries) {
        if (byShard.has(e.shard)) continue;
        const shardPath = join(indexDir, e.shard);
        if (!(await statOrUndefined(shardPath))?.isFile()) {
          throw new FormatError(
            `weight_map[${brief(e.name)}] names shard ${brief(e.shard)}, which does not exist ` +
              `(${shardPath})`,
            { file: weights, offset: e.keyPos },
          );
        }
        const f = await openSafetensors(shardPath);
        shards.push(f);
        byShard.set(e.shard, f);
        warnings.push(...f.warnings.map((w) => `${f.name}: ${w}`));
      }
      tensors = [];
      owner = new Map();
      for (const e of entries) {
        const f = byShard.get(e.shard)!;
        const t = f.tensor(e.name);
        if (!t) {
          throw new FormatError(
            `weight_map puts tensor ${brief(e.name)} in ${brief(e.shard)}, which does not hold it`,
            { file: weights, offset: e.keyPos },
          );
        }
        tensors.push(t);
        owner.set(e.name, f);
      }
      for (const f of shards) {
        for (const t of f.tensors) {
          if (owner.get(t.name) !== f) {
            warnings.push(`${f.name}: tensor ${brief(t.name)} is not in the index's weight_map`);
          }
        }
      }
      const total = metadata.total_size;
      const sum = tensors.reduce((s, t) => s + t.byteLength, 0);
      if (typeof total === "number" && total !== sum) {
        warnings.push(
          `${weights}: metadata.total_size is ${total} but the tensors hold ${sum} bytes`,
        );
      }
    }
  } catch (e) {
    await Promise.all(shards.map((s) => s.close().catch(() => {})));
    throw e;
  }

  const metadata: [string, string][] = [];
  const metaKeys = new Set<string>();
  for (const f of shards) {
    for (const [k, v] of Object.entries(f.metadata)) {
      if (metaKeys.has(k)) continue;
      metaKeys.add(k);
      metadata.push([k, v]);
    }
  }

  const shardOf = (name: string): SafetensorsFile => {
    const f = owner.get(name);
    if (!f) {
      throw new QuantxError(`${path}: no tensor named ${brief(name)}`, { code: "ENOTENSOR", path });
    }
    return f;
  };
  let closed = false;
  return {
    path,
    kind,
    dir,
    config,
    tensors,
    metadata: Object.fromEntries(metadata),
    indexMetadata,
    files,
    shards,
    warnings,
    tensor: (name) => owner.has(name) ? owner.get(name)!.tensor(name) : undefined,
    read: async (name, offset, length, into) =>
      await shardOf(name).read(name, offset, length, into),
    readF32: async (name, start, count, into) =>
      await shardOf(name).readF32(name, start, count, into),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(shards.map((s) => s.close()));
    },
  };
}
