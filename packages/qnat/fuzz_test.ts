/**
 * Bad input: small valid QNAT files (every flag combination) truncated at every byte and with
 * every byte corrupted. Opening and reading every tensor must end in a FormatError or (for a
 * corruption that still yields a valid file) success: never another error, a hang, or a read
 * beyond the file.
 */
import assert from "node:assert/strict";
import { type ByteSource, bytesSource, FormatError, memorySink } from "@quantx/core";
import { rng } from "../../tests/support/random.ts";
import { openQnat, QNAT_FLAG_DOUBLE_QUANT, QNAT_FLAG_ZERO_POINTS, writeQnat } from "./mod.ts";

async function smallFile(flags: number): Promise<Uint8Array> {
  const sink = memorySink();
  const wave = (n: number, k: number) => new Float32Array(n).map((_, i) => Math.sin(i * k) + 0.1);
  await writeQnat(sink, { modelName: "tiny", modelType: "llama", computeDtype: "bf16", flags }, [
    { name: "q.weight", shape: [2, 64], data: wave(128, 0.3) },
    { name: "norm", shape: [8], data: wave(8, 1), quantize: false },
    { name: "odd.weight", shape: [3, 66], data: wave(198, 0.7) },
  ]);
  return sink.bytes();
}

/** A source that fails the test on any read past its end (instead of the reader checking). */
function strictSource(bytes: Uint8Array): ByteSource {
  const inner = bytesSource(bytes, "fuzz.qnat");
  return {
    name: inner.name,
    size: inner.size,
    read(offset, length) {
      assert.ok(
        offset >= 0 && offset + length <= bytes.length,
        `read ${offset}+${length} past end`,
      );
      return inner.read(offset, length);
    },
    close: () => inner.close(),
  };
}

async function attempt(bytes: Uint8Array): Promise<"ok" | "format"> {
  try {
    const file = await openQnat(strictSource(bytes));
    for (const t of file.tensors) await file.readF32(t.name);
    await file.close();
    return "ok";
  } catch (e) {
    if (e instanceof FormatError) return "format";
    throw new Error(`not a FormatError: ${(e as Error)?.stack ?? e}`);
  }
}

for (const flags of [0, QNAT_FLAG_ZERO_POINTS, QNAT_FLAG_DOUBLE_QUANT, 3]) {
  Deno.test(`qnat (flags ${flags}): every truncation is a FormatError`, async () => {
    const file = await smallFile(flags);
    assert.equal(await attempt(file), "ok");
    for (let n = 0; n < file.length; n++) {
      assert.equal(await attempt(file.subarray(0, n)), "format", `truncated to ${n} bytes`);
    }
  });

  Deno.test(`qnat (flags ${flags}): corrupting any byte never crashes`, async () => {
    const file = await smallFile(flags);
    const rand = rng(flags + 7);
    let rejected = 0;
    for (let i = 0; i < file.length; i++) {
      for (const v of [0x00, 0xff, 0x80, file[i] ^ 1, Math.floor(rand() * 256)]) {
        if (v === file[i]) continue;
        const bad = file.slice();
        bad[i] = v;
        if ((await attempt(bad)) === "format") rejected++;
      }
    }
    assert.ok(rejected > 0);
  });
}
