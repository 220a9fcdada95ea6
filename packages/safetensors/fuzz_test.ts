/**
 * Bad input: a small valid safetensors file truncated at every byte, every byte corrupted with
 * several values, random multi-byte corruptions and random garbage. Every attempt must end in a
 * FormatError (naming the file and a byte offset inside it) or, for a corruption that still yields
 * a valid file, in success; then reading every tensor must also succeed or throw a FormatError.
 * Never another error, a hang, or a read past the end of the file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type ByteSource,
  bytesSource,
  createFileSink,
  FormatError,
  memorySink,
} from "@quantx/core";
import { rng } from "../../tests/support/random.ts";
import {
  canDecodeF32,
  fromF32,
  openCheckpoint,
  openSafetensors,
  shardFileName,
  writeSafetensors,
  writeShardedIndex,
} from "./mod.ts";

const NAME = "fuzz.safetensors";

async function smallFile(): Promise<Uint8Array> {
  const sink = memorySink();
  await writeSafetensors(sink, [
    {
      name: "a",
      dtype: "F32",
      shape: [2, 2],
      data: fromF32("F32", new Float32Array([1, -2, 3, 0.5])),
    },
    {
      name: "b.weight",
      dtype: "BF16",
      shape: [3],
      data: fromF32("BF16", new Float32Array([1, 2, 3])),
    },
    { name: "q", dtype: "F4", shape: [2, 2], data: new Uint8Array([0x21, 0xf7]) },
    { name: "i", dtype: "I64", shape: [1], data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 0x80]) },
    { name: "d", dtype: "F64", shape: [1], data: fromF32("F64", new Float32Array([7])) },
    { name: "e", dtype: "F8_E4M3", shape: [2], data: new Uint8Array([0x38, 0x7f]) },
  ], { format: "pt", "ключ": "v" });
  return sink.bytes();
}

/** A source that fails the test if a reader asks for bytes past the end of the file. */
function watched(bytes: Uint8Array): ByteSource {
  const inner = bytesSource(bytes, NAME);
  return {
    ...inner,
    read(offset: number, length: number) {
      assert.ok(offset >= 0 && length >= 0, `read ${offset}+${length}`);
      assert.ok(
        offset + length <= bytes.byteLength,
        `read ${offset}+${length} past ${bytes.byteLength}`,
      );
      return inner.read(offset, length);
    },
  };
}

function checkFormatError(e: unknown, size: number, what: string): void {
  if (!(e instanceof FormatError)) {
    throw new assert.AssertionError({ message: `${what}: expected FormatError, got ${e}` });
  }
  assert.equal(e.file, NAME, what);
  assert.ok(e.offset !== undefined && e.offset >= 0 && e.offset <= size, `${what}: ${e.message}`);
}

/** Open and read everything; "ok" or "format" (anything else fails the test). */
async function attempt(bytes: Uint8Array, what: string): Promise<"ok" | "format"> {
  let file;
  try {
    file = await openSafetensors(watched(bytes));
  } catch (e) {
    checkFormatError(e, bytes.byteLength, what);
    return "format";
  }
  for (const t of file.tensors) {
    try {
      const raw = await file.read(t.name);
      assert.equal(raw.byteLength, t.byteLength);
      if (canDecodeF32(t.dtype)) {
        const f = await file.readF32(t.name);
        assert.equal(f.length, t.shape.reduce((a, b) => a * b, 1), what);
      }
    } catch (e) {
      checkFormatError(e, bytes.byteLength, `${what} reading ${t.name}`);
    }
  }
  await file.close();
  return "ok";
}

Deno.test("truncated at every byte: always a FormatError", async () => {
  const good = await smallFile();
  assert.equal(await attempt(good, "intact"), "ok");
  for (let n = 0; n < good.byteLength; n++) {
    assert.equal(
      await attempt(good.slice(0, n), `truncated to ${n}`),
      "format",
      `truncated to ${n}`,
    );
  }
});

Deno.test("every byte corrupted with several values: FormatError or a valid file", async () => {
  const good = await smallFile();
  const counts = { ok: 0, format: 0 };
  const values = [0x00, 0xff, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0x2d, 0x80];
  for (let pos = 0; pos < good.byteLength; pos++) {
    for (const v of [...values, good[pos] ^ 1, good[pos] ^ 0x40]) {
      if (v === good[pos]) continue;
      const bad = good.slice();
      bad[pos] = v;
      counts[await attempt(bad, `byte ${pos} = ${v}`)]++;
    }
  }
  // both outcomes happen: data bytes are benign, header bytes mostly are not
  assert.ok(counts.ok > 0 && counts.format > counts.ok, JSON.stringify(counts));
});

Deno.test("random corruptions, insertions, deletions and garbage", async () => {
  const good = await smallFile();
  const r = rng(20240611);
  const int = (n: number) => Math.floor(r() * n);
  for (let k = 0; k < 20000; k++) {
    let bad: Uint8Array;
    const kind = k % 4;
    if (kind === 0) {
      bad = good.slice();
      for (let j = 1 + int(6); j > 0; j--) bad[int(bad.length)] = int(256);
    } else if (kind === 1) {
      const at = int(good.length), len = 1 + int(12);
      bad = new Uint8Array([...good.subarray(0, at), ...good.subarray(at + len)]);
    } else if (kind === 2) {
      const at = int(good.length);
      const ins = Uint8Array.from({ length: 1 + int(12) }, () => int(256));
      bad = new Uint8Array([...good.subarray(0, at), ...ins, ...good.subarray(at)]);
    } else {
      bad = Uint8Array.from({ length: int(400) }, () => int(256));
      if (k % 8 === 3 && bad.length >= 8) {
        // a plausible length, then garbage, so the JSON stage is reached
        new DataView(bad.buffer).setUint32(0, int(bad.length - 7), true);
        bad.fill(0, 4, 8);
        if (bad.length > 8) bad[8] = 0x7b;
      }
    }
    await attempt(bad, `random case ${k}`);
  }
});

Deno.test("corrupted index: FormatError or a valid checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-stf-" });
  try {
    const f1 = shardFileName(1, 2), f2 = shardFileName(2, 2);
    const data = fromF32("F32", new Float32Array([1, 2]));
    await writeSafetensors(await createFileSink(join(dir, f1)), [
      { name: "x", dtype: "F32", shape: [2], data },
    ]);
    await writeSafetensors(await createFileSink(join(dir, f2)), [
      { name: "y", dtype: "F32", shape: [2], data },
    ]);
    await writeShardedIndex(dir, { x: f1, y: f2 }, 16);
    const index = join(dir, "model.safetensors.index.json");
    const good = await Deno.readFile(index);
    let ok = 0;
    for (let pos = 0; pos < good.byteLength; pos++) {
      for (const v of [0x22, 0x7d, 0x31, good[pos] ^ 1]) {
        if (v === good[pos]) continue;
        const bad = good.slice();
        bad[pos] = v;
        await Deno.writeFile(index, bad);
        try {
          const ck = await openCheckpoint(index);
          for (const t of ck.tensors) await ck.readF32(t.name);
          await ck.close();
          ok++;
        } catch (e) {
          assert.ok(e instanceof FormatError, `byte ${pos} = ${v}: ${e}`);
          assert.ok(e.file === index && e.offset !== undefined && e.offset <= bad.byteLength);
        }
      }
    }
    assert.ok(ok > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
