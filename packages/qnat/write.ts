/**
 * Streaming QNAT writer. The whole layout (header, metadata, tensor headers with absolute data
 * offsets) is computed from the plan before any data is written; tensor data then streams to a
 * {@link ByteSink} in plan order, in chunks of whole blocks, so memory stays bounded by the chunk
 * size plus one tensor's scales.
 * @module
 */
import type { ByteSink } from "@quantx/core";
import {
  QNAT_COMPUTE_DTYPES,
  QNAT_DEFAULT_BLOCK_SIZE,
  QNAT_FLAG_DOUBLE_QUANT,
  QNAT_FLAG_ZERO_POINTS,
  QNAT_HEADER_SIZE,
  QNAT_KNOWN_FLAGS,
  QNAT_MAGIC,
  QNAT_MAX_RANK,
  QNAT_VERSION,
  qnatBlockCount,
  type QnatComputeDtype,
  type QnatDataLayout,
  qnatDataLayout,
  qnatElementCount,
  qnatMetadataSize,
  qnatTensorHeaderSize,
  utf8,
} from "./format.ts";
import { encodeQnatBlocks, type QnatEncoded, qnatZeroPoints } from "./encode.ts";
import { dequantizeQnatScales, quantizeQnatScales } from "./scales.ts";

/** File-level options of a QNAT file. */
export interface QnatWriteOptions {
  /** Model name stored in the metadata (default `""`). */
  modelName?: string;
  /** Model type stored in the metadata (default `"qlora"`). */
  modelType?: string;
  /** Compute dtype stored in the metadata (default `"f32"`). */
  computeDtype?: QnatComputeDtype;
  /** Flag bits: {@link QNAT_FLAG_ZERO_POINTS}, {@link QNAT_FLAG_DOUBLE_QUANT} (default 0). */
  flags?: number;
}

/** One tensor of the plan. */
export interface QnatTensorPlan {
  /** Tensor name (unique, UTF-8). */
  name: string;
  /** Shape (PyTorch order, as given). */
  shape: number[];
  /** NF4 block size (an even number), or 0 to store the tensor unquantized as float32. */
  blockSize: number;
}

/** A planned tensor with its place in the file. */
export interface QnatPlannedTensor extends QnatTensorPlan {
  /** Number of elements. */
  elements: number;
  /** Number of blocks (0 when unquantized). */
  blockCount: number;
  /** Absolute offset of the tensor's data. */
  offset: number;
  /** Byte layout of the tensor's data. */
  layout: QnatDataLayout;
}

const MAX_U32 = 0xffffffff;

/** Bytes of `values` as little-endian float32 (a view when the host is little-endian). */
export function f32LeBytes(values: Float32Array): Uint8Array {
  const view = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (HOST_LE) return view;
  const out = new Uint8Array(values.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i], true);
  return out;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throw a RangeError unless `blockSize` is 0 or an even integer in [2, 2^31]. */
function checkBlockSize(name: string, blockSize: number): void {
  if (
    !Number.isInteger(blockSize) ||
    (blockSize !== 0 && (blockSize < 2 || blockSize % 2 !== 0 || blockSize > 2 ** 31))
  ) {
    throw new RangeError(`qnat: tensor "${name}": block size ${blockSize} is not 0 or even`);
  }
}

/**
 * Writes a QNAT file as a stream: `writeHeader()`, then `writeTensorData()` for the tensors in
 * plan order (each tensor in one or more chunks), then `finish()`, which checks that every
 * tensor was complete and closes the sink.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { QnatWriter } from "@quantx/qnat";
 * const sink = memorySink("tiny.qnat");
 * const w = new QnatWriter(sink, { modelName: "tiny" }, [
 *   { name: "w", shape: [2, 64], blockSize: 64 },
 *   { name: "norm", shape: [64], blockSize: 0 },
 * ]);
 * await w.writeHeader();
 * await w.writeTensorData(new Float32Array(128).fill(0.5)); // all of "w"
 * await w.writeTensorData(new Float32Array(64).fill(1)); // all of "norm"
 * await w.finish();
 * console.log(sink.bytes().length === w.byteLength); // true
 * ```
 */
export class QnatWriter {
  /** The planned tensors with offsets and layouts, in file order. */
  readonly tensors: readonly QnatPlannedTensor[];
  /** Size of the whole file in bytes. */
  readonly byteLength: number;
  /** Size of header + metadata + tensor headers (where the first tensor's data starts). */
  readonly dataOffset: number;
  readonly #sink: ByteSink;
  readonly #flags: number;
  readonly #head: Uint8Array;
  #state: "new" | "data" | "done" = "new";
  #index = 0;
  #done = 0;
  #scales = new Float32Array(0);
  #centers = new Float32Array(0);

  /** Plan the file. Throws RangeError/TypeError for a bad plan; nothing is written yet. */
  constructor(sink: ByteSink, options: QnatWriteOptions, plan: readonly QnatTensorPlan[]) {
    this.#sink = sink;
    const flags = options.flags ?? 0;
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~QNAT_KNOWN_FLAGS) !== 0) {
      throw new RangeError(`qnat: flags ${flags} has bits other than 0 and 1`);
    }
    this.#flags = flags;
    const dtype = QNAT_COMPUTE_DTYPES.indexOf(options.computeDtype ?? "f32");
    if (dtype < 0) throw new RangeError(`qnat: unknown compute dtype ${options.computeDtype}`);
    if (plan.length > MAX_U32) throw new RangeError("qnat: more than 2^32-1 tensors");
    const modelName = utf8(options.modelName ?? "");
    const modelType = utf8(options.modelType ?? "qlora");
    const metaSize = qnatMetadataSize(modelName.length, modelType.length);
    const names = new Set<string>();
    const encoded = plan.map((t) => {
      if (names.has(t.name)) throw new RangeError(`qnat: duplicate tensor name "${t.name}"`);
      names.add(t.name);
      if (t.shape.length > QNAT_MAX_RANK) {
        throw new RangeError(`qnat: tensor "${t.name}" has rank ${t.shape.length}`);
      }
      for (const d of t.shape) {
        if (!Number.isSafeInteger(d) || d < 0) {
          throw new RangeError(`qnat: tensor "${t.name}" has bad dimension ${d}`);
        }
      }
      checkBlockSize(t.name, t.blockSize);
      return utf8(t.name);
    });
    let headerBytes = QNAT_HEADER_SIZE + metaSize;
    plan.forEach((t, i) => headerBytes += qnatTensorHeaderSize(encoded[i].length, t.shape.length));
    this.dataOffset = headerBytes;
    let offset = headerBytes;
    this.tensors = plan.map((t) => {
      const elements = qnatElementCount(t.shape);
      if (Number.isNaN(elements)) throw new RangeError(`qnat: tensor "${t.name}" is too large`);
      const blockCount = qnatBlockCount(elements, t.blockSize);
      if (blockCount > MAX_U32) {
        throw new RangeError(`qnat: tensor "${t.name}" has too many blocks`);
      }
      const layout = qnatDataLayout(offset, elements, t.blockSize, blockCount, flags);
      const planned = { name: t.name, shape: [...t.shape], blockSize: t.blockSize };
      const out = { ...planned, elements, blockCount, offset, layout };
      offset += layout.byteLength;
      return out;
    });
    this.byteLength = offset;

    const head = new Uint8Array(headerBytes);
    const dv = new DataView(head.buffer);
    let at = 0;
    const u32 = (v: number) => {
      dv.setUint32(at, v, true);
      at += 4;
    };
    const u64 = (v: number) => {
      dv.setBigUint64(at, BigInt(v), true);
      at += 8;
    };
    const bytes = (b: Uint8Array) => {
      head.set(b, at);
      at += b.length;
    };
    bytes(utf8(QNAT_MAGIC));
    u32(QNAT_VERSION);
    u32(flags);
    u64(metaSize);
    u32(plan.length);
    u32(0);
    u32(modelName.length);
    bytes(modelName);
    u32(modelType.length);
    bytes(modelType);
    head[at++] = dtype;
    this.tensors.forEach((t, i) => {
      u32(encoded[i].length);
      bytes(encoded[i]);
      u32(t.shape.length);
      for (const d of t.shape) u64(d);
      u32(t.blockSize);
      u64(t.offset);
      u32(t.blockCount);
    });
    this.#head = head;
  }

  /** Write header, metadata and tensor headers. */
  async writeHeader(): Promise<void> {
    if (this.#state !== "new") throw new Error("qnat: header already written");
    this.#state = "data";
    await this.#sink.write(this.#head);
    this.#startTensor();
    this.#skipEmpty();
  }

  /** The tensor that the next {@link writeTensorData} call belongs to, if any is left. */
  get currentTensor(): QnatPlannedTensor | undefined {
    return this.tensors[this.#index];
  }

  /**
   * Write the next `values` of the current tensor (flattened, row-major). A quantized tensor takes
   * chunks of whole blocks; only its last chunk may end inside a block. Returns the chunk's NF4
   * encoding (codes, f32 scales, centers with zero points) for a quantized tensor.
   */
  async writeTensorData(values: Float32Array): Promise<QnatEncoded | undefined> {
    if (this.#state !== "data") throw new Error("qnat: writeHeader() first, or already finished");
    const t = this.tensors[this.#index];
    if (!t) throw new RangeError("qnat: all tensors are already complete");
    const left = t.elements - this.#done;
    if (values.length > left) {
      throw new RangeError(
        `qnat: tensor "${t.name}" needs ${left} more values, got ${values.length}`,
      );
    }
    let enc: QnatEncoded | undefined;
    if (t.blockSize === 0) {
      await this.#sink.write(f32LeBytes(values));
    } else {
      if (values.length < left && values.length % t.blockSize !== 0) {
        throw new RangeError(
          `qnat: tensor "${t.name}": a chunk must hold whole blocks of ${t.blockSize} values`,
        );
      }
      const zp = (this.#flags & QNAT_FLAG_ZERO_POINTS) !== 0;
      enc = encodeQnatBlocks(values, t.blockSize, zp);
      const firstBlock = this.#done / t.blockSize;
      this.#scales.set(enc.scales, firstBlock);
      if (enc.centers) this.#centers.set(enc.centers, firstBlock);
      await this.#sink.write(enc.codes);
    }
    this.#done += values.length;
    if (this.#done === t.elements) {
      await this.#endTensor(t);
      this.#index++;
      this.#startTensor();
      this.#skipEmpty();
    }
    return enc;
  }

  /** Check that every tensor is complete, then close the sink. */
  async finish(): Promise<void> {
    if (this.#state !== "data") throw new Error("qnat: writeHeader() first, or already finished");
    const t = this.tensors[this.#index];
    if (t) {
      throw new Error(
        `qnat: tensor "${t.name}" has ${this.#done} of ${t.elements} values (and ${
          this.tensors.length - this.#index - 1
        } tensors after it are missing)`,
      );
    }
    if (this.#sink.position !== this.byteLength) {
      throw new Error(`qnat: wrote ${this.#sink.position} bytes, planned ${this.byteLength}`);
    }
    this.#state = "done";
    await this.#sink.close();
  }

  /** Give up: abort the sink (a file sink removes its partial file). */
  async abort(): Promise<void> {
    this.#state = "done";
    await this.#sink.abort();
  }

  #startTensor(): void {
    const t = this.tensors[this.#index];
    this.#done = 0;
    if (!t) return;
    this.#scales = new Float32Array(t.blockCount);
    this.#centers = new Float32Array(this.#flags & QNAT_FLAG_ZERO_POINTS ? t.blockCount : 0);
  }

  #skipEmpty(): void {
    while (this.#index < this.tensors.length && this.tensors[this.#index].elements === 0) {
      this.#index++;
      this.#startTensor();
    }
  }

  async #endTensor(t: QnatPlannedTensor): Promise<void> {
    if (t.blockSize === 0) return;
    const zp = (this.#flags & QNAT_FLAG_ZERO_POINTS) !== 0;
    let stored: Float32Array = this.#scales;
    if (this.#flags & QNAT_FLAG_DOUBLE_QUANT) {
      const q = quantizeQnatScales(this.#scales);
      if (zp) {
        // a block whose scale rounds to 0 would lose its center: give it the smallest step
        for (let b = 0; b < q.quantized.length; b++) {
          if (q.quantized[b] === 0 && this.#centers[b] !== 0) q.quantized[b] = 1;
        }
        stored = dequantizeQnatScales(q.quantized, q.factors);
      }
      await this.#sink.write(q.quantized);
      await this.#sink.write(f32LeBytes(q.factors));
    } else {
      await this.#sink.write(f32LeBytes(this.#scales));
    }
    if (zp) await this.#sink.write(f32LeBytes(qnatZeroPoints(this.#centers, stored)));
  }
}

/** One tensor for {@link writeQnat}: its values now, or a function that loads them when due. */
export interface QnatTensorInput {
  /** Tensor name. */
  name: string;
  /** Shape. */
  shape: number[];
  /** Values (flattened, row-major), or a loader called when the tensor's turn comes. */
  data: Float32Array | (() => Float32Array | Promise<Float32Array>);
  /** Quantize to NF4 (default true); false stores float32 (block size 0). */
  quantize?: boolean;
  /** NF4 block size when quantized (default 64). */
  blockSize?: number;
}

/**
 * Write a whole QNAT file and close the sink; on any error the sink is aborted and the error
 * rethrown. Tensors given as loaders are loaded one at a time, so memory holds one tensor.
 *
 * @example
 * ```ts
 * import { memorySink } from "@quantx/core";
 * import { QNAT_FLAG_DOUBLE_QUANT, writeQnat } from "@quantx/qnat";
 * const sink = memorySink("m.qnat");
 * await writeQnat(sink, { modelName: "m", computeDtype: "bf16", flags: QNAT_FLAG_DOUBLE_QUANT }, [
 *   { name: "proj.weight", shape: [4, 64], data: new Float32Array(256).fill(0.25) },
 *   { name: "norm.weight", shape: [64], data: () => new Float32Array(64).fill(1), quantize: false },
 * ]);
 * console.log(sink.bytes().length);
 * ```
 */
export async function writeQnat(
  sink: ByteSink,
  options: QnatWriteOptions,
  tensors: readonly QnatTensorInput[],
): Promise<void> {
  let writer: QnatWriter | undefined;
  try {
    writer = new QnatWriter(
      sink,
      options,
      tensors.map((t) => ({
        name: t.name,
        shape: t.shape,
        blockSize: t.quantize === false ? 0 : t.blockSize ?? QNAT_DEFAULT_BLOCK_SIZE,
      })),
    );
    await writer.writeHeader();
    for (const [i, t] of tensors.entries()) {
      const values = typeof t.data === "function" ? await t.data() : t.data;
      const planned = writer.tensors[i];
      if (values.length !== planned.elements) {
        throw new RangeError(
          `qnat: tensor "${t.name}" has ${values.length} values, its shape needs ${planned.elements}`,
        );
      }
      if (values.length > 0) await writer.writeTensorData(values);
    }
    await writer.finish();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}
