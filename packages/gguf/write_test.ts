import assert from "node:assert/strict";
import { join } from "node:path";
import { bytesSource, createFileSink, memorySink } from "@quantx/core";
import { gguf } from "@huggingface/gguf";
import {
  type GgufFile,
  type GgufValue,
  GgufValueType as T,
  GgufWriter,
  openGguf,
  plainValue,
  verifyGguf,
  writeGguf,
} from "./mod.ts";

const ARR = (itemType: T, value: unknown[]) => ({ type: T.ARRAY, itemType, value }) as GgufValue;

/** Every value type, arrays of each, empty arrays and strings, unicode, nested arrays. */
const METADATA: [string, GgufValue][] = [
  ["general.architecture", { type: T.STRING, value: "llama" }],
  ["test.u8", { type: T.UINT8, value: 255 }],
  ["test.i8", { type: T.INT8, value: -128 }],
  ["test.u16", { type: T.UINT16, value: 65535 }],
  ["test.i16", { type: T.INT16, value: -32768 }],
  ["test.u32", { type: T.UINT32, value: 4294967295 }],
  ["test.i32", { type: T.INT32, value: -2147483648 }],
  ["test.f32", { type: T.FLOAT32, value: Math.fround(3.14159) }],
  ["test.bool", { type: T.BOOL, value: true }],
  ["test.str", { type: T.STRING, value: "héllo ✓ 🦙 日本語" }],
  ["test.u64", { type: T.UINT64, value: 18446744073709551615n }],
  ["test.i64", { type: T.INT64, value: -9223372036854775808n }],
  ["test.f64", { type: T.FLOAT64, value: Math.PI }],
  ["test.empty_str", { type: T.STRING, value: "" }],
  ["test.bom_str", { type: T.STRING, value: "\uFEFFbom\u0000nul" }],
  ["test.arr.u8", ARR(T.UINT8, [0, 1, 255])],
  ["test.arr.i8", ARR(T.INT8, [-128, 0, 127])],
  ["test.arr.u16", ARR(T.UINT16, [0, 65535])],
  ["test.arr.i16", ARR(T.INT16, [-32768, 32767])],
  ["test.arr.u32", ARR(T.UINT32, [0, 4294967295])],
  ["test.arr.i32", ARR(T.INT32, [-2147483648, 2147483647, -1])],
  ["test.arr.f32", ARR(T.FLOAT32, [0, -0, 1.5, Infinity, -Infinity, NaN, Math.fround(1e-40)])],
  ["test.arr.bool", ARR(T.BOOL, [true, false, true])],
  ["test.arr.str", ARR(T.STRING, ["a", "", "ü", "🦙🦙", "<0x0A>", "▁the"])],
  ["test.arr.u64", ARR(T.UINT64, [0n, 18446744073709551615n])],
  ["test.arr.i64", ARR(T.INT64, [-9223372036854775808n, 9223372036854775807n])],
  ["test.arr.f64", ARR(T.FLOAT64, [Math.E, -0, NaN, 5e-324])],
  ["test.arr.empty", ARR(T.UINT32, [])],
  ["test.arr.empty_str", ARR(T.STRING, [])],
  [
    "test.arr.nested",
    ARR(T.ARRAY, [ARR(T.UINT8, [1, 2]), ARR(T.UINT8, []), ARR(T.UINT8, [3])]),
  ],
  [
    "test.arr.nested3",
    ARR(T.ARRAY, [ARR(T.ARRAY, [ARR(T.STRING, ["x", "日本"])]), ARR(T.ARRAY, [])]),
  ],
  ["test.arr.nested_empty", ARR(T.ARRAY, [])],
];

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

const TENSORS = [
  { name: "f32.weight", shape: [8, 3], type: 0, data: bytes(96, 1) },
  { name: "f16.weight", shape: [32, 2], type: 1, data: bytes(128, 2) },
  { name: "q8_0.weight", shape: [64, 1, 1, 1], type: 8, data: bytes(68, 3) },
  { name: "empty.weight", shape: [0, 4], type: 0, data: new Uint8Array(0) },
  { name: "q4_k.weight", shape: [256], type: 12, data: bytes(144, 4) },
  { name: "bf16.bias", shape: [5], type: 30, data: bytes(10, 5) },
];

async function writeSample(alignment?: number): Promise<Uint8Array> {
  const sink = memorySink("sample.gguf");
  await writeGguf(sink, { metadata: METADATA, tensors: TENSORS, alignment });
  return sink.bytes();
}

async function checkSample(f: GgufFile, alignment: number): Promise<void> {
  assert.equal(f.version, 3);
  assert.equal(f.littleEndian, true);
  assert.equal(f.alignment, alignment);
  const expected = new Map(METADATA);
  if (alignment !== 32) expected.set("general.alignment", { type: T.UINT32, value: alignment });
  assert.deepStrictEqual(f.metadata, expected);
  assert.deepStrictEqual([...f.metadata.keys()], [...expected.keys()]);
  assert.equal(f.tensors.length, TENSORS.length);
  assert.equal(f.dataOffset % alignment, 0);
  let offset = 0;
  for (const [i, t] of f.tensors.entries()) {
    const src = TENSORS[i];
    assert.equal(t.name, src.name);
    assert.deepStrictEqual(t.shape, src.shape);
    assert.equal(t.type, src.type);
    assert.equal(t.byteLength, src.data.byteLength);
    assert.equal(t.offset, offset);
    offset += Math.ceil(t.byteLength / alignment) * alignment;
    assert.deepStrictEqual(await f.read(t), src.data);
  }
  assert.equal(f.size, f.dataOffset + offset, "the last tensor is padded too");
  assert.deepStrictEqual(f.warnings, []);
}

Deno.test("round trip: all 13 value types, nested arrays, unicode, tensors", async () => {
  for (const alignment of [32, 64, 1]) {
    const file = await writeSample(alignment);
    const f = await openGguf(bytesSource(file, "sample.gguf"));
    await checkSample(f, alignment);
    // Rewriting what was read gives the same bytes.
    const again = memorySink();
    await writeGguf(again, {
      metadata: f.metadata,
      alignment: f.alignment,
      tensors: await Promise.all(
        f.tensors.map(async (t) => ({ ...t, data: await f.read(t) })),
      ),
    });
    assert.deepStrictEqual(again.bytes(), file);
  }
});

Deno.test("padding bytes are zero; header layout is exactly what the spec describes", async () => {
  const sink = memorySink();
  const w = new GgufWriter(sink);
  w.set("general.architecture", T.STRING, "x");
  w.addTensor("a", [3], "f32");
  await w.writeHeader();
  assert.equal(w.dataOffset, 128);
  await w.writeTensorData(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
  await w.finish();
  const b = sink.bytes();
  const dv = new DataView(b.buffer);
  assert.equal(new TextDecoder().decode(b.subarray(0, 4)), "GGUF");
  assert.equal(dv.getUint32(4, true), 3);
  assert.equal(dv.getBigInt64(8, true), 1n); // tensors
  assert.equal(dv.getBigInt64(16, true), 1n); // kv
  assert.equal(dv.getBigUint64(24, true), 20n); // key length
  assert.equal(new TextDecoder().decode(b.subarray(32, 52)), "general.architecture");
  assert.equal(dv.getUint32(52, true), 8);
  assert.equal(dv.getBigUint64(56, true), 1n);
  assert.equal(b[64], "x".charCodeAt(0));
  assert.equal(dv.getBigUint64(65, true), 1n); // tensor name length
  assert.equal(dv.getUint32(74, true), 1); // n_dims
  assert.equal(dv.getBigInt64(78, true), 3n);
  assert.equal(dv.getInt32(86, true), 0); // f32
  assert.equal(dv.getBigUint64(90, true), 0n);
  assert.deepStrictEqual([...b.subarray(98, 128)], new Array(30).fill(0));
  assert.equal(b.byteLength, 128 + 32);
  assert.deepStrictEqual([...b.subarray(128, 140)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepStrictEqual([...b.subarray(140)], new Array(20).fill(0));
});

Deno.test("@huggingface/gguf parses what we write with the same kv and tensor infos", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const alignment of [32, 128]) {
      const path = join(dir, `sample-${alignment}.gguf`);
      await Deno.writeFile(path, await writeSample(alignment));
      const ours = await openGguf(path);
      const hf = await gguf(path, { allowLocalFile: true, typedMetadata: true });
      assert.equal(hf.littleEndian, true);
      assert.equal(hf.metadata.version, 3);
      assert.equal(hf.metadata.tensor_count, BigInt(ours.tensors.length));
      assert.equal(hf.metadata.kv_count, BigInt(ours.metadata.size));
      assert.equal(hf.tensorDataOffset, BigInt(ours.dataOffset));
      const typed = hf.typedMetadata as unknown as Record<
        string,
        { type: number; value: unknown; subType?: number }
      >;
      for (const [key, v] of ours.metadata) {
        const h = typed[key];
        assert.ok(h, key);
        assert.equal(h.type, v.type, key);
        if (v.type === T.ARRAY) assert.equal(h.subType, v.itemType, key);
        // @huggingface/gguf's TextDecoder drops a leading BOM; we keep it (exact round trip).
        const want = key === "test.bom_str" ? (v.value as string).slice(1) : plainValue(v);
        assert.deepStrictEqual(h.value, want, key);
      }
      assert.equal(
        Object.keys(typed).length,
        ours.metadata.size + 3,
        "version, tensor_count, kv_count + ours",
      );
      assert.deepStrictEqual(
        hf.tensorInfos.map((t) => ({
          name: t.name,
          n_dims: t.n_dims,
          shape: t.shape.map(Number),
          dtype: t.dtype as number,
          offset: Number(t.offset),
        })),
        ours.tensors.map((t) => ({
          name: t.name,
          n_dims: t.shape.length,
          shape: t.shape,
          dtype: t.type,
          offset: t.offset,
        })),
      );
      await ours.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("golden llama.cpp files: reading then rewriting gives byte-identical files", async () => {
  for (const name of ["q4_0", "q8_0", "q4_k_m"]) {
    const path = `../shared/golden/llama-tiny/gguf/${name}.gguf`;
    const original = await Deno.readFile(path);
    const f = await openGguf(path);
    const sink = memorySink();
    const w = new GgufWriter(sink, { alignment: f.alignment });
    for (const [k, v] of f.metadata) w.set(k, v);
    for (const t of f.tensors) w.addTensor(t.name, t.shape, t.type);
    await w.writeHeader();
    assert.equal(w.dataOffset, f.dataOffset);
    for (const t of f.tensors) {
      // Two chunks per tensor, to exercise chunking.
      const half = Math.floor(t.byteLength / 2);
      await w.writeTensorData(await f.read(t, 0, half), t.name);
      await w.writeTensorData(await f.read(t, half), t.name);
    }
    assert.equal(w.fileSize, original.byteLength);
    await w.finish();
    await f.close();
    assert.ok(sink.bytes().every((b, i) => b === original[i]), name);
    assert.equal(sink.bytes().byteLength, original.byteLength);
  }
});

Deno.test("writer: general.architecture first, general.alignment only when not 32", async () => {
  const sink = memorySink();
  const w = new GgufWriter(sink, { alignment: 64 });
  w.set("general.name", T.STRING, "n");
  w.set("general.architecture", T.STRING, "llama");
  w.set("general.name", T.STRING, "renamed"); // replaced in place
  await w.finish();
  const f = await openGguf(bytesSource(sink.bytes()));
  assert.deepStrictEqual([...f.metadata.keys()], [
    "general.architecture",
    "general.name",
    "general.alignment",
  ]);
  assert.equal(f.metadata.get("general.name")?.value, "renamed");
  assert.equal(f.alignment, 64);
  assert.equal(f.tensors.length, 0);

  const plain = memorySink();
  await writeGguf(plain, { metadata: { "general.architecture": { type: T.STRING, value: "a" } } });
  const g = await openGguf(bytesSource(plain.bytes()));
  assert.equal(g.metadata.has("general.alignment"), false);
  assert.ok((await verifyGguf(bytesSource(plain.bytes()))).ok);
});

Deno.test("writer refuses bad values, bad tensors and data out of order or of wrong length", async () => {
  const sink = memorySink();
  const w = new GgufWriter(sink);
  assert.throws(() => new GgufWriter(memorySink(), { alignment: 48 }), RangeError);
  assert.throws(() => w.set("k", T.UINT8, 256), TypeError);
  assert.throws(() => w.set("k", T.INT8, -129), TypeError);
  assert.throws(() => w.set("k", T.UINT32, 1.5), TypeError);
  assert.throws(() => w.set("k", T.UINT32, -1), TypeError);
  assert.throws(() => w.set("k", T.UINT64, -1n), TypeError);
  assert.throws(() => w.set("k", T.INT64, 2n ** 63n), TypeError);
  assert.throws(() => w.set("k", T.UINT64, 2 ** 60), TypeError); // not a safe integer
  assert.throws(() => w.set("k", T.STRING, 5), TypeError);
  assert.throws(() => w.set("k", T.BOOL, 1), TypeError);
  assert.throws(() => w.set("k", T.ARRAY, [1, 2]), TypeError);
  assert.throws(() => w.set("k", T.ARRAY, { itemType: T.UINT8, value: [1, 300] }), TypeError);
  assert.throws(() => w.set("k", 13 as T, 1), TypeError);
  assert.throws(() => w.set("", T.UINT8, 1), TypeError);
  assert.throws(() => w.set("general.alignment", T.UINT32, 64), RangeError);
  assert.throws(() => w.set("general.alignment", T.UINT64, 32n), RangeError);
  w.set("general.alignment", T.UINT32, 32);
  w.set("k", T.UINT64, 5); // a safe integer becomes a bigint

  assert.throws(() => w.addTensor("q", [33], "q8_0"), /block size 32/);
  assert.throws(() => w.addTensor("q", [1, 1, 1, 1, 1], "f32"), RangeError);
  assert.throws(() => w.addTensor("q", [-1], "f32"), RangeError);
  assert.throws(() => w.addTensor("q", [1.5], "f32"), RangeError);
  assert.throws(() => w.addTensor("q", [4], "nope"), /unknown ggml type/);
  assert.throws(() => w.addTensor("q", [4], 4), /unknown ggml type/); // removed Q4_2
  assert.throws(() => w.addTensor("x".repeat(64), [4], "f32"), /63 bytes/);
  w.addTensor("a", [4], "f32");
  assert.throws(() => w.addTensor("a", [4], "f32"), /duplicate/);
  w.addTensor("b", [32], "q8_0");

  await assert.rejects(() => w.writeTensorData(new Uint8Array(16)), /writeHeader/);
  await w.writeHeader();
  assert.throws(() => w.set("late", T.UINT8, 1), /before writeHeader/);
  assert.throws(() => w.addTensor("late", [1], "f32"), /before writeHeader/);
  await assert.rejects(() => w.writeTensorData(new Uint8Array(16), "b"), /'b' but tensor 0 'a'/);
  await assert.rejects(
    () => w.writeTensorData(new Uint8Array(17)),
    /17 bytes is longer than the 16/,
  );
  const before = sink.position;
  await w.writeTensorData(new Uint8Array(10), "a");
  await assert.rejects(() => w.writeTensorData(new Uint8Array(7)), /longer than the 6 bytes left/);
  assert.equal(sink.position, before + 10, "refused chunks write nothing");
  await w.writeTensorData(new Uint8Array(6));
  await w.writeTensorData(new Uint8Array(34), "b");
  await assert.rejects(() => w.writeTensorData(new Uint8Array(1)), /all tensor data/);
  await w.finish();
  await assert.rejects(() => w.finish(), /done/);
  const f = await openGguf(bytesSource(sink.bytes()));
  assert.equal(f.metadata.get("k")?.value, 5n);
  assert.equal(f.metadata.get("general.alignment")?.value, 32);
});

Deno.test("writer: finish with missing data aborts the sink", async () => {
  let aborted = false;
  const inner = memorySink();
  const sink = { ...inner, abort: () => (aborted = true, inner.abort()) };
  Object.defineProperty(sink, "position", { get: () => inner.position });
  const w = new GgufWriter(sink);
  w.addTensor("a", [4], "f32");
  w.addTensor("b", [4], "f32");
  await w.writeHeader();
  await w.writeTensorData(new Uint8Array(8));
  await assert.rejects(() => w.finish(), /'a' has 8 of 16 bytes written and 1 tensors after it/);
  assert.ok(aborted);
  await assert.rejects(
    () =>
      writeGguf(memorySink(), {
        tensors: [{ name: "a", shape: [4], type: 0, data: new Uint8Array(3) }],
      }),
    /3 bytes of data, expected 16/,
  );
});

Deno.test("writer: reserved ranges written by someone else give the same file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = {
      a: Uint8Array.from({ length: 40 }, (_, i) => i + 1), // 10 f32: padded to 64
      b: Uint8Array.from({ length: 68 }, (_, i) => 200 - i), // 64 q8_0 values: padded to 96
      c: Uint8Array.from({ length: 8 }, (_, i) => 50 + i),
    };
    const declare = (w: GgufWriter) => {
      w.set("general.architecture", T.STRING, "llama");
      w.addTensor("a", [10], "f32");
      w.addTensor("b", [64], "q8_0");
      w.addTensor("c", [2], "f32");
    };
    const plain = memorySink();
    const p = new GgufWriter(plain);
    declare(p);
    await p.writeHeader();
    for (const [name, bytes] of Object.entries(data)) await p.writeTensorData(bytes, name);
    await p.finish();

    assert.equal(new GgufWriter(memorySink()).canReserve, false);
    await assert.rejects(() => new GgufWriter(memorySink()).reserveTensorData(4), /reserve/);

    const path = join(dir, "r.gguf");
    const sink = await createFileSink(path);
    const w = new GgufWriter(sink);
    declare(w);
    assert.equal(w.canReserve, true);
    await w.writeHeader();
    // a's first half written here, its second half and all of b reserved, c written here
    await w.writeTensorData(data.a.subarray(0, 20), "a");
    const ranges = [
      { at: await w.reserveTensorData(20, "a"), bytes: data.a.subarray(20) },
      { at: await w.reserveTensorData(34, "b"), bytes: data.b.subarray(0, 34) },
      { at: await w.reserveTensorData(0, "b"), bytes: new Uint8Array(0) },
      { at: await w.reserveTensorData(34, "b"), bytes: data.b.subarray(34) },
    ];
    await assert.rejects(() => w.reserveTensorData(9, "c"), /longer than the 8 bytes left/);
    await w.writeTensorData(data.c, "c");
    // the reserved ranges, filled in last and in reverse order, through another handle
    const file = await Deno.open(path + ".partial", { write: true });
    for (const r of ranges.reverse()) {
      assert.equal(r.at.path, path + ".partial");
      await file.seek(r.at.offset, Deno.SeekMode.Start);
      await file.write(r.bytes);
    }
    file.close();
    await w.finish();
    assert.deepEqual(await Deno.readFile(path), plain.bytes());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
