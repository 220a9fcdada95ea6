/**
 * The GGUF output job: stream every planned tensor, chunk by chunk, through the kernels into a
 * {@link GgufWriter}, measuring the quantization error as it goes.
 * @module
 */
import type { ByteSink } from "@quantx/core";
import { GgufWriter } from "@quantx/gguf";
import { ggmlType, type QuantType, rowSize } from "@quantx/kernels";
import { readChunks, rowsPerChunk, SpareBuffers } from "./chunks.ts";
import type { Kernels, Quantized } from "./kernels.ts";
import type { RunControl } from "./options.ts";
import type { GgufPlan } from "./gguf_plan.ts";
import { ErrorStats } from "./stats.ts";
import { tensorElements, type Weights } from "./weights.ts";

/** Bytes per read when a tensor is copied unchanged. */
const COPY_CHUNK = 16 << 20;

/** Write `plan` from `weights` into `sink`; returns the error of every quantized tensor. */
export async function writeGgufModel(
  weights: Weights,
  plan: GgufPlan,
  sink: ByteSink,
  kernels: Kernels,
  control: RunControl = {},
): Promise<ErrorStats> {
  const writer = new GgufWriter(sink, { alignment: plan.alignment });
  for (const kv of plan.kv) writer.set(kv.key, kv.type, kv.value);
  for (const e of plan.entries) writer.addTensor(e.name, e.shape, ggmlType(e.type).id);
  await writer.writeHeader();

  const total = new ErrorStats();
  const byName = new Map(weights.tensors.map((t) => [t.name, t]));
  const bytesTotal = plan.totalBytes;
  let bytesDone = 0;
  const report = (i: number, name: string) =>
    control.onProgress?.({
      phase: "quantize",
      tensorIndex: i,
      tensorCount: plan.entries.length,
      tensorName: name,
      bytesDone,
      bytesTotal,
    });
  // Chunks are quantized while the next one is read, as many as the kernels take at once plus
  // one, and written in order.
  const inFlightMax = kernels.parallelism + 1;
  const spare = new SpareBuffers(inFlightMax + 1);
  // `reserved`: bytes the kernels write into the output themselves (see quantizeFile).
  interface InFlight {
    job: Promise<Quantized>;
    index: number;
    name: string;
    reserved?: number;
  }
  const inFlight: InFlight[] = [];
  const writeOldest = async () => {
    const { job, index, name, reserved } = inFlight.shift()!;
    const { bytes, stats, spare: done } = await job;
    spare.give(done);
    if (stats) total.merge(stats);
    if (reserved === undefined) await writer.writeTensorData(bytes);
    bytesDone += reserved ?? bytes.byteLength;
    report(index, name);
  };
  const writeAll = async () => {
    for (const [i, entry] of plan.entries.entries()) {
      if (inFlight.length && (plan.inline.has(entry.name) || plan.copies.has(entry.name))) {
        while (inFlight.length) await writeOldest();
      }
      const inline = plan.inline.get(entry.name);
      if (inline) {
        const bytes =
          (await kernels.quantize(entry.type as QuantType, inline, entry.shape[0], false))
            .bytes;
        await writer.writeTensorData(bytes);
        bytesDone += bytes.byteLength;
        report(i, entry.name);
        continue;
      }
      if (plan.copies.has(entry.name)) {
        const t = weights.gguf!.tensors.find((x) => x.name === entry.source)!;
        for (let off = 0; off < t.byteLength; off += COPY_CHUNK) {
          control.signal?.throwIfAborted();
          const bytes = await weights.gguf!.read(t, off, Math.min(COPY_CHUNK, t.byteLength - off));
          await writer.writeTensorData(bytes);
          bytesDone += bytes.byteLength;
          report(i, entry.name);
        }
        continue;
      }
      const tensor = byName.get(entry.source)!;
      const transform = plan.transforms.get(entry.name);
      const type = entry.type as QuantType;
      const cols = entry.shape[0];
      const quantized = type !== "f32" && type !== "f16" && type !== "bf16";
      const submit = async (job: Promise<Quantized>, reserved?: number) => {
        job.catch(() => {}); // awaited below, in order; never an unhandled rejection meanwhile
        inFlight.push({ job, index: i, name: entry.name, reserved });
        if (inFlight.length >= inFlightMax) await writeOldest();
      };
      // Plain f32/f16/bf16 in a file (an empty range locates the tensor): the workers read their
      // chunks themselves, and write their results straight into the output when it is a file.
      const inWorkers = !transform && kernels.quantizeFile !== undefined &&
        weights.locate?.(tensor.name, 0, 0) !== undefined;
      if (inWorkers) {
        // ranges are reserved in order: chunks still to be written here go first
        if (writer.canReserve) {
          while (inFlight.some((x) => x.reserved === undefined)) await writeOldest();
        }
        const totalRows = tensorElements(tensor) / cols;
        const per = rowsPerChunk(tensor);
        for (let row = 0; row < totalRows; row += per) {
          control.signal?.throwIfAborted();
          const count = Math.min(per, totalRows - row) * cols;
          const where = weights.locate!(tensor.name, row * cols, count)!;
          const size = rowSize(type, count);
          const target = writer.canReserve
            ? await writer.reserveTensorData(size, entry.name)
            : undefined;
          await submit(
            kernels.quantizeFile!(type, where, cols, quantized, target),
            target ? size : undefined,
          );
        }
        continue;
      }
      // Otherwise this thread reads ahead, into the buffers the kernels hand back.
      for await (
        const chunk of readChunks(weights, tensor, {
          rowMultiple: transform?.rowMultiple,
          signal: control.signal,
          spare,
        })
      ) {
        const values = transform ? transform.apply(chunk.data, chunk.row, chunk.rows) : chunk.data;
        if (values.buffer !== chunk.data.buffer) spare.give(chunk.data.buffer as ArrayBuffer);
        await submit(kernels.quantize(type, values, cols, quantized));
      }
    }
    while (inFlight.length) await writeOldest();
  };
  try {
    await writeAll();
  } catch (e) {
    // let no worker still write into the output once the caller discards it
    await Promise.allSettled(inFlight.map((x) => x.job));
    throw e;
  }
  await writer.finish();
  return total;
}
