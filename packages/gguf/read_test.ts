import assert from "node:assert/strict";
import { type ByteSource, bytesSource, FormatError } from "@quantx/core";
import {
  getArray,
  getBool,
  getNumber,
  getString,
  type GgufValue,
  GgufValueType as T,
  openGguf,
} from "./mod.ts";

/** A hand-written GGUF builder (either byte order), independent of the writer under test. */
class B {
  out: number[] = [];
  constructor(readonly le = true) {}
  #put(n: number, f: (d: DataView) => void): this {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    this.out.push(...b);
    return this;
  }
  u8 = (v: number) => this.#put(1, (d) => d.setUint8(0, v));
  i8 = (v: number) => this.#put(1, (d) => d.setInt8(0, v));
  u16 = (v: number) => this.#put(2, (d) => d.setUint16(0, v, this.le));
  i16 = (v: number) => this.#put(2, (d) => d.setInt16(0, v, this.le));
  u32 = (v: number) => this.#put(4, (d) => d.setUint32(0, v, this.le));
  i32 = (v: number) => this.#put(4, (d) => d.setInt32(0, v, this.le));
  f32 = (v: number) => this.#put(4, (d) => d.setFloat32(0, v, this.le));
  f64 = (v: number) => this.#put(8, (d) => d.setFloat64(0, v, this.le));
  u64 = (v: bigint | number) => this.#put(8, (d) => d.setBigUint64(0, BigInt(v), this.le));
  i64 = (v: bigint | number) => this.#put(8, (d) => d.setBigInt64(0, BigInt(v), this.le));
  raw = (b: ArrayLike<number>) => (this.out.push(...Array.from(b)), this);
  str = (s: string) => {
    const b = new TextEncoder().encode(s);
    return this.u64(b.length).raw(b);
  };
  header = (version: number, nTensors: number | bigint, nKv: number | bigint) =>
    this.raw([0x47, 0x47, 0x55, 0x46]).u32(version).i64(nTensors).i64(nKv);
  kv = (key: string, type: T, f: (b: this) => void) => (this.str(key).u32(type), f(this), this);
  tensor = (name: string, ne: (number | bigint)[], type: number, offset: number | bigint) => {
    this.str(name).u32(ne.length);
    for (const d of ne) this.i64(d);
    return this.i32(type).u64(offset);
  };
  pad = (a = 32) => {
    while (this.out.length % a) this.out.push(0);
    return this;
  };
  bytes = () => new Uint8Array(this.out);
}

/** A file with every value type and two f32 tensors, in byte order `le`, GGUF version `version`. */
function allTypes(le: boolean, version: number): Uint8Array {
  const b = new B(le).header(version, 2, 15);
  b.kv("general.architecture", T.STRING, (b) => b.str("llama"));
  b.kv("u8", T.UINT8, (b) => b.u8(200));
  b.kv("i8", T.INT8, (b) => b.i8(-100));
  b.kv("u16", T.UINT16, (b) => b.u16(0xabcd));
  b.kv("i16", T.INT16, (b) => b.i16(-12345));
  b.kv("u32", T.UINT32, (b) => b.u32(0xdeadbeef));
  b.kv("i32", T.INT32, (b) => b.i32(-123456789));
  b.kv("f32", T.FLOAT32, (b) => b.f32(1.25));
  b.kv("bool", T.BOOL, (b) => b.u8(1));
  b.kv("str", T.STRING, (b) => b.str("größe 🦙"));
  b.kv("u64", T.UINT64, (b) => b.u64(0x0123456789abcdefn));
  b.kv("i64", T.INT64, (b) => b.i64(-0x0123456789abcdefn));
  b.kv("f64", T.FLOAT64, (b) => b.f64(-2.5e300));
  b.kv("arr.u32", T.ARRAY, (b) => b.u32(T.UINT32).u64(3).u32(1).u32(0x01020304).u32(3));
  b.kv(
    "arr.nested",
    T.ARRAY,
    (b) => b.u32(T.ARRAY).u64(2).u32(T.INT16).u64(1).i16(-2).u32(T.STRING).u64(1).str("z"),
  );
  b.tensor("a", [4], 0, 0).tensor("b", [2, 2], 0, 32).pad();
  for (const v of [1, 2, 3, 4]) b.f32(v);
  b.pad();
  for (const v of [5, 6, 7, 8]) b.f32(v);
  return b.pad().bytes();
}

const ALL_TYPES_EXPECTED: [string, GgufValue][] = [
  ["general.architecture", { type: T.STRING, value: "llama" }],
  ["u8", { type: T.UINT8, value: 200 }],
  ["i8", { type: T.INT8, value: -100 }],
  ["u16", { type: T.UINT16, value: 0xabcd }],
  ["i16", { type: T.INT16, value: -12345 }],
  ["u32", { type: T.UINT32, value: 0xdeadbeef }],
  ["i32", { type: T.INT32, value: -123456789 }],
  ["f32", { type: T.FLOAT32, value: 1.25 }],
  ["bool", { type: T.BOOL, value: true }],
  ["str", { type: T.STRING, value: "größe 🦙" }],
  ["u64", { type: T.UINT64, value: 0x0123456789abcdefn }],
  ["i64", { type: T.INT64, value: -0x0123456789abcdefn }],
  ["f64", { type: T.FLOAT64, value: -2.5e300 }],
  ["arr.u32", { type: T.ARRAY, itemType: T.UINT32, value: [1, 0x01020304, 3] }],
  ["arr.nested", {
    type: T.ARRAY,
    itemType: T.ARRAY,
    value: [
      { type: T.ARRAY, itemType: T.INT16, value: [-2] },
      { type: T.ARRAY, itemType: T.STRING, value: ["z"] },
    ],
  }],
];

Deno.test("reads big-endian (byte-swapped) and v2 files, all value types", async () => {
  for (const [le, version] of [[false, 3], [false, 2], [true, 2], [true, 3]] as const) {
    const bytes = allTypes(le, version);
    const f = await openGguf(bytesSource(bytes, "hand.gguf"));
    assert.equal(f.version, version);
    assert.equal(f.littleEndian, le);
    assert.deepStrictEqual(f.metadata, new Map(ALL_TYPES_EXPECTED));
    assert.deepStrictEqual(
      f.tensors.map((t) => [t.name, t.shape, t.typeName, t.offset, t.byteLength]),
      [["a", [4], "f32", 0, 16], ["b", [2, 2], "f32", 32, 16]],
    );
    // Tensor bytes come back as stored: big-endian floats for a big-endian file.
    const data = await f.read("b");
    assert.deepStrictEqual(
      [0, 1, 2, 3].map((i) => new DataView(data.buffer, data.byteOffset).getFloat32(4 * i, le)),
      [5, 6, 7, 8],
    );
    assert.equal(getString(f.metadata, "general.architecture"), "llama");
    assert.equal(getNumber(f.metadata, "u32"), 0xdeadbeef);
    assert.throws(() => getNumber(f.metadata, "u64"), RangeError); // not a safe integer
    assert.equal(getNumber(f.metadata, "f32"), 1.25);
    assert.equal(getBool(f.metadata, "bool"), true);
    assert.deepStrictEqual(getArray(f.metadata, "arr.u32")?.value, [1, 0x01020304, 3]);
    assert.equal(getString(f.metadata, "missing"), undefined);
    assert.throws(() => getString(f.metadata, "u8"), TypeError);
    assert.throws(() => getNumber(f.metadata, "str"), TypeError);
  }
});

Deno.test("lazy reads: ranges inside a tensor, refused outside", async () => {
  let reads = 0;
  const inner = bytesSource(allTypes(true, 3), "lazy.gguf");
  const src: ByteSource = { ...inner, read: (o, n) => (reads++, inner.read(o, n)) };
  const f = await openGguf(src);
  const before = reads;
  const t = f.tensor("a")!;
  assert.deepStrictEqual(
    new Float32Array((await f.read(t, 4, 8)).slice().buffer),
    new Float32Array([2, 3]),
  );
  assert.equal(reads, before + 1);
  assert.equal((await f.read(t, 16)).byteLength, 0);
  await assert.rejects(() => f.read(t, 8, 12), RangeError);
  await assert.rejects(() => f.read(t, -1), RangeError);
  await assert.rejects(() => f.read("nope"), RangeError);
});

Deno.test("golden llama.cpp files: tensor counts and types", async () => {
  const want: Record<string, Record<string, number>> = {
    q4_0: { f32: 5, q4_0: 14, q6_k: 1 },
    q8_0: { f32: 5, q8_0: 15 },
    q4_k_m: { f32: 5, q4_k: 12, q6_k: 3 },
  };
  const names = Object.keys(JSON.parse(
    await Deno.readTextFile("../shared/golden/llama-tiny/gguf/f32-tensors.json"),
  )).sort();
  for (const [name, types] of Object.entries(want)) {
    const f = await openGguf(`../shared/golden/llama-tiny/gguf/${name}.gguf`);
    assert.equal(f.version, 3);
    assert.equal(f.tensors.length, 20);
    const counts: Record<string, number> = {};
    for (const t of f.tensors) counts[t.typeName] = (counts[t.typeName] ?? 0) + 1;
    assert.deepStrictEqual(counts, types);
    assert.deepStrictEqual(f.tensors.map((t) => t.name).sort(), names);
    assert.deepStrictEqual(f.tensor("token_embd.weight")?.shape, [256, 32000]);
    assert.equal(getString(f.metadata, "general.architecture"), "llama");
    assert.equal(getNumber(f.metadata, "general.quantization_version"), 2);
    assert.equal(getArray(f.metadata, "tokenizer.ggml.tokens")?.value.length, 32000);
    const last = f.tensors.at(-1)!;
    assert.equal(f.dataOffset + last.offset + last.byteLength, f.size);
    await f.close();
  }
});

async function rejects(bytes: Uint8Array, pattern: RegExp, offset?: number): Promise<void> {
  await assert.rejects(() => openGguf(bytesSource(bytes, "bad.gguf")), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${e}`);
    assert.match(e.message, pattern);
    assert.equal(e.file, "bad.gguf");
    if (offset !== undefined) assert.equal(e.offset, offset);
    return true;
  });
}

const kvArch = (b: B) => b.kv("general.architecture", T.STRING, (b) => b.str("x"));

Deno.test("rejects what llama.cpp's gguf reader rejects, naming the byte offset", async () => {
  await rejects(new B().raw([0x47, 0x47, 0x55, 0x47]).u32(3).i64(0).i64(0).bytes(), /magic/, 0);
  await rejects(new B().header(1, 0, 0).bytes(), /version 1/, 4);
  await rejects(new B().header(4, 0, 0).bytes(), /version 4/, 4);
  await rejects(new B().header(0, 0, 0).bytes(), /version 0/, 4);
  await rejects(new B().header(3, -1, 0).bytes(), /negative/, 8);
  await rejects(new B().header(3, 0, 1000).bytes(), /cannot fit/, 8);
  await rejects(new B().header(3, 1n << 60n, 0).bytes(), /cannot fit/, 8);
  await rejects(new B().raw([0x47, 0x47, 0x55]).bytes(), /needs 24 bytes/, 0);
  // Keys.
  await rejects(
    new B().header(3, 0, 1).str("").u32(T.UINT8).u8(0).u8(0).bytes(),
    /key 0 is empty/,
    24,
  );
  await rejects(
    kvArch(new B().header(3, 0, 2)).kv("general.architecture", T.UINT8, (b) => b.u8(1)).bytes(),
    /duplicate key 'general.architecture'/,
    65,
  );
  await rejects(
    new B().header(3, 0, 1).str("k").u32(13).u8(0).bytes(),
    /invalid GGUF value type 13/,
    33,
  );
  await rejects(
    new B().header(3, 0, 1).str("k").u32(T.ARRAY).u32(99).u64(0).bytes(),
    /invalid GGUF value type 99/,
  );
  // Lengths are checked against the bytes left before anything is allocated.
  await rejects(
    new B().header(3, 0, 1).str("k").u32(T.STRING).u64(1n << 62n).bytes(),
    /exceeds the limit/,
  );
  await rejects(
    new B().header(3, 0, 1).str("k").u32(T.STRING).u64(100).raw([1, 2]).bytes(),
    /string length 100 needs at least 100 bytes but the file has 2 left/,
  );
  await rejects(
    new B().header(3, 0, 1).u64(0xffffffffffffffffn).raw(new Uint8Array(16)).bytes(),
    /exceeds the limit/,
    24,
  );
  await rejects(
    new B().header(3, 0, 1).str("k").u32(T.ARRAY).u32(T.UINT8).u64(1n << 40n).raw(
      new Uint8Array(64),
    ).bytes(),
    /array count 1099511627776 exceeds the limit/,
  );
  await rejects(
    new B().header(3, 0, 1).str("k").u32(T.ARRAY).u32(T.UINT64).u64(100).raw(new Uint8Array(64))
      .bytes(),
    /array count 100 needs at least 800 bytes but the file has 64 left/,
  );
  await rejects(
    new B().header(3, 0, 1).str("k").u32(T.ARRAY).u32(T.STRING).u64(10).raw(new Uint8Array(64))
      .bytes(),
    /array count 10 needs at least 80 bytes/,
  );
  await rejects(
    new B().header(3, 0, 1).str("k").u32(T.ARRAY).u32(T.ARRAY).u64(1000).raw(new Uint8Array(600))
      .bytes(),
    /array count 1000 needs at least 12000 bytes/,
  );
  // Deep nesting ends in a FormatError, not a stack overflow.
  const deep = new B().header(3, 0, 1).str("k").u32(T.ARRAY);
  for (let i = 0; i < 5000; i++) deep.u32(T.ARRAY).u64(1);
  await rejects(deep.u32(T.UINT8).u64(0).bytes(), /nested deeper than 16/);
  // general.alignment.
  await rejects(
    new B().header(3, 0, 1).kv("general.alignment", T.UINT64, (b) => b.u64(32)).bytes(),
    /general.alignment must be u32 but is u64/,
    53,
  );
  await rejects(
    new B().header(3, 0, 1).kv("general.alignment", T.UINT32, (b) => b.u32(48)).bytes(),
    /48 is not a power of 2/,
  );
  await rejects(
    new B().header(3, 0, 1).kv("general.alignment", T.UINT32, (b) => b.u32(0)).bytes(),
    /0 is not a power of 2/,
  );
  // Tensor infos.
  const t = (...infos: ((b: B) => void)[]) => {
    const b = kvArch(new B().header(3, infos.length, 1));
    for (const i of infos) i(b);
    return b.pad().raw(new Uint8Array(256)).bytes();
  };
  await rejects(t((b) => b.tensor("a", [1, 1, 1, 1, 1], 0, 0)), /5 dimensions/, 74);
  await rejects(t((b) => b.tensor("a", [4, -1], 0, 0)), /dimension 1 is negative/);
  await rejects(
    t((b) => b.tensor("a", [1n << 32n, 1n << 32n], 0, 0)),
    /too many elements/,
  );
  await rejects(t((b) => b.tensor("a", [4], 4, 0)), /invalid ggml type 4/);
  await rejects(t((b) => b.tensor("a", [4], -1, 0)), /invalid ggml type -1/);
  await rejects(t((b) => b.tensor("a", [4], 1000, 0)), /invalid ggml type 1000/);
  await rejects(
    t((b) => b.tensor("a", [33], 8, 0)),
    /33 elements per row, not a multiple of the block size 32/,
  );
  await rejects(
    t((b) => b.tensor("a", [4], 0, 0), (b) => b.tensor("a", [4], 0, 32)),
    /duplicate tensor name 'a'/,
  );
  await rejects(
    t((b) => b.tensor("a", [4], 0, 0), (b) => b.tensor("b", [4], 0, 16)),
    /offset 16, expected 32/,
  );
  await rejects(t((b) => b.tensor("a", [4], 0, 32)), /offset 32, expected 0/);
  await rejects(
    t((b) => b.tensor("a", [4], 0, 0), (b) => b.tensor("b", [4], 0, 64)),
    /offset 64, expected 32/,
  );
  await rejects(
    t((b) => b.tensor("a", [80], 0, 0)),
    /data \[128, 448\) is not inside the file \(size 384\)/,
  );
  await rejects(
    t((b) => b.tensor("a", [1n << 40n], 0, 0)),
    /needs 4398046511104 bytes, more than the file/,
  );
  // A file that ends inside the tensor infos or before its data section.
  await rejects(
    kvArch(new B().header(3, 1, 1)).str("a").u32(1).bytes(),
    /needs 20 bytes but the file has 0 left/,
  );
  await rejects(
    kvArch(new B().header(3, 1, 1)).tensor("a", [0], 0, 0).bytes(),
    /data section .* starts past the end/,
  );
});

Deno.test("accepts zero-element tensors and files without tensors", async () => {
  const b = kvArch(new B().header(3, 2, 1)).tensor("e", [0, 5], 0, 0).tensor("s", [], 0, 0).pad();
  b.f32(7).pad();
  const f = await openGguf(bytesSource(b.bytes()));
  assert.deepStrictEqual(f.tensors.map((t) => [t.shape, t.byteLength]), [[[0, 5], 0], [[], 4]]);
  assert.deepStrictEqual(
    new Float32Array((await f.read("s")).slice().buffer),
    new Float32Array([7]),
  );
  const empty = kvArch(new B().header(3, 0, 1)).bytes();
  const g = await openGguf(bytesSource(empty));
  assert.equal(g.dataOffset, empty.byteLength, "no padding when there are no tensors");
});

Deno.test("invalid UTF-8 is read with U+FFFD and reported as a warning", async () => {
  const b = kvArch(new B().header(3, 0, 2)).kv("bad", T.STRING, (b) => b.u64(2).raw([0xc3, 0x28]));
  const f = await openGguf(bytesSource(b.bytes()));
  assert.equal(f.metadata.get("bad")?.value, "\uFFFD(");
  assert.match(f.warnings[0], /byte 88: key 'bad' is not valid UTF-8/);
});
