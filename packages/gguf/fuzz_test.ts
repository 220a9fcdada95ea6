/**
 * Bad input: a small valid GGUF truncated at every byte, every header byte corrupted, random
 * corruptions. Every attempt must end in a FormatError or (for a corruption that still yields a
 * valid file) success: never another error, a hang, or a read/allocation beyond the file.
 */
import assert from "node:assert/strict";
import { type ByteSource, bytesSource, FormatError, memorySink } from "@quantx/core";
import { rng } from "../../tests/support/random.ts";
import {
  type GgufItem,
  type GgufValue,
  GgufValueType as T,
  openGguf,
  verifyGguf,
  writeGguf,
} from "./mod.ts";

async function smallFile(): Promise<Uint8Array> {
  const sink = memorySink();
  const A = T.ARRAY;
  await writeGguf(sink, {
    metadata: [
      ["general.architecture", { type: T.STRING, value: "llama" }],
      ["general.quantization_version", { type: T.UINT32, value: 2 }],
      ["llama.rope.freq_base", { type: T.FLOAT32, value: 10000 }],
      ["x.i64", { type: T.INT64, value: -5n }],
      ["x.flag", { type: T.BOOL, value: false }],
      ["x.tokens", { type: A, itemType: T.STRING, value: ["<s>", "é", ""] }],
      ["x.scores", { type: A, itemType: T.FLOAT32, value: [0.5, -1] }],
      ["x.nested", { type: A, itemType: A, value: [{ type: A, itemType: T.UINT8, value: [7] }] }],
    ],
    tensors: [
      { name: "a", shape: [4], type: "f32", data: new Uint8Array(16).fill(1) },
      { name: "b.weight", shape: [32, 1], type: "q8_0", data: new Uint8Array(34).fill(2) },
      { name: "c", shape: [2, 2], type: "f16", data: new Uint8Array(8).fill(3) },
    ],
  });
  return sink.bytes();
}

function countItems(v: GgufValue | GgufItem): number {
  if (typeof v !== "object") return 1;
  if (v.type !== T.ARRAY) return 1;
  return 1 + v.value.reduce((s: number, x) => s + countItems(x), 0);
}

/** A source that fails the test if a reader asks for more than the file has. */
function watched(bytes: Uint8Array): ByteSource & { maxRead: number } {
  const inner = bytesSource(bytes, "fuzz.gguf");
  const s = {
    ...inner,
    maxRead: 0,
    read(offset: number, length: number) {
      s.maxRead = Math.max(s.maxRead, length);
      assert.ok(
        offset + length <= bytes.byteLength,
        `read ${offset}+${length} past ${bytes.byteLength}`,
      );
      return inner.read(offset, length);
    },
  };
  return s;
}

/** Parse `bytes`; returns true on success, false on FormatError; anything else fails the test. */
async function attempt(bytes: Uint8Array, label: string): Promise<boolean> {
  const src = watched(bytes);
  try {
    const f = await openGguf(src);
    let items = 0;
    for (const v of f.metadata.values()) items += countItems(v);
    assert.ok(items <= bytes.byteLength, `${label}: ${items} items from ${bytes.byteLength} bytes`);
    for (const t of f.tensors) assert.equal((await f.read(t)).byteLength, t.byteLength);
    const r = await verifyGguf(bytesSource(bytes, "fuzz.gguf"));
    assert.equal(typeof r.ok, "boolean");
    return true;
  } catch (e) {
    if (e instanceof FormatError) {
      assert.equal(e.file, "fuzz.gguf", label);
      assert.ok(e.offset !== undefined && e.offset >= 0 && e.offset <= bytes.byteLength, label);
      return false;
    }
    throw new Error(`${label}: ${e instanceof Error ? e.stack : e}`);
  } finally {
    assert.ok(src.maxRead <= bytes.byteLength, label);
  }
}

const base = await smallFile();
const info = await openGguf(bytesSource(base));
const last = info.tensors[info.tensors.length - 1];
const dataEnd = info.dataOffset + last.offset + last.byteLength;

Deno.test("fuzz: the base file is valid", async () => {
  assert.ok(await attempt(base, "base"));
  assert.equal(info.tensors.length, 3);
  assert.ok(base.byteLength < 1024);
});

Deno.test("fuzz: truncated at every byte position", async () => {
  for (let n = 0; n < base.byteLength; n++) {
    const ok = await attempt(base.slice(0, n), `truncated at ${n}`);
    // Only cutting the zero padding after the last tensor leaves a readable file.
    assert.equal(ok, n >= dataEnd, `truncated at ${n}`);
  }
});

Deno.test("fuzz: every header byte set to 0xFF, 0x00 and +1", async () => {
  let accepted = 0, rejected = 0;
  for (let i = 0; i < info.dataOffset; i++) {
    for (const v of [0xff, 0x00, (base[i] + 1) & 0xff]) {
      if (v === base[i]) continue;
      const b = base.slice();
      b[i] = v;
      if (await attempt(b, `byte ${i} = ${v}`)) accepted++;
      else rejected++;
    }
  }
  assert.ok(rejected > accepted, `${rejected} rejected, ${accepted} accepted`);
});

Deno.test("fuzz: random corruptions and truncations", async () => {
  const r = rng(12345);
  for (let k = 0; k < 20000; k++) {
    const b = base.slice(0, k % 4 === 0 ? Math.floor(r() * base.byteLength) : base.byteLength);
    const n = 1 + Math.floor(r() * 8);
    for (let j = 0; j < n; j++) {
      const at = Math.floor(r() * Math.min(b.byteLength, info.dataOffset + 8));
      b[at] = r() < 0.3 ? [0x00, 0xff, 0x7f, 0x80][Math.floor(r() * 4)] : Math.floor(r() * 256);
    }
    await attempt(b, `random ${k}`);
  }
});
