import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type ByteSource,
  bytesSource,
  createFileSink,
  FormatError,
  memorySink,
  QuantxError,
} from "@quantx/core";
import {
  canDecodeF32,
  fromF32,
  openCheckpoint,
  openSafetensors,
  READ_CHUNK_BYTES,
  SAFETENSORS_DTYPES,
  type SafetensorsDataEntry,
  shardFileName,
  toF32,
  writeSafetensors,
  writeShardedIndex,
} from "./mod.ts";

const enc = new TextEncoder();

/** Raw little-endian bytes from numbers written with a DataView setter. */
function le(size: number, values: (number | bigint)[], set: string): Uint8Array {
  const out = new Uint8Array(size * values.length);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) =>
    (dv as unknown as Record<string, (o: number, v: number | bigint, le: boolean) => void>)[set](
      i * size,
      v,
      true,
    )
  );
  return out;
}

/** A safetensors file from a header string and raw data, built by hand. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = enc.encode(header);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

async function toBytes(entries: SafetensorsDataEntry[], meta?: Record<string, string>) {
  const sink = memorySink("t.safetensors");
  await writeSafetensors(sink, entries, meta);
  return sink.bytes();
}

const f32 = (xs: number[]) => Float32Array.from(xs);

interface Case {
  dtype: string;
  shape: number[];
  data: Uint8Array;
  want?: Float32Array;
}

// Expected values worked out by hand from each format's definition.
const CASES: Case[] = [
  {
    dtype: "F32",
    shape: [5],
    data: le(4, [1.5, -0, Infinity, 1e-45, -3.25], "setFloat32"),
    want: f32([1.5, -0, Infinity, 1e-45, -3.25]),
  },
  {
    dtype: "F64",
    shape: [3],
    data: le(8, [1 / 3, 1e300, -2.5], "setFloat64"),
    want: f32([Math.fround(1 / 3), Infinity, -2.5]),
  },
  {
    dtype: "F16",
    shape: [6],
    data: le(2, [0x3c00, 0xc000, 0x7c00, 0x0001, 0x7bff, 0x8000], "setUint16"),
    want: f32([1, -2, Infinity, 2 ** -24, 65504, -0]),
  },
  {
    dtype: "BF16",
    shape: [2, 2],
    data: le(2, [0x3f80, 0x4049, 0xff80, 0x0001], "setUint16"),
    want: f32([1, 3.140625, -Infinity, 2 ** -133]),
  },
  { dtype: "BOOL", shape: [3], data: new Uint8Array([0, 1, 2]), want: f32([0, 1, 1]) },
  { dtype: "U8", shape: [2], data: new Uint8Array([0, 255]), want: f32([0, 255]) },
  { dtype: "I8", shape: [2], data: new Uint8Array([0x80, 0x7f]), want: f32([-128, 127]) },
  { dtype: "U16", shape: [1], data: le(2, [65535], "setUint16"), want: f32([65535]) },
  { dtype: "I16", shape: [2], data: le(2, [-32768, 7], "setInt16"), want: f32([-32768, 7]) },
  {
    dtype: "U32",
    shape: [2],
    data: le(4, [4294967295, 16777217], "setUint32"),
    want: f32([4294967296, 16777216]),
  },
  { dtype: "I32", shape: [1], data: le(4, [-2147483648], "setInt32"), want: f32([-2147483648]) },
  {
    dtype: "I64",
    shape: [4],
    // 2^60 + 2^36 + 1 rounds (once) up to 2^60 + 2^37; rounding through a double first gives 2^60.
    data: le(8, [-(2n ** 63n), 2n ** 60n + 2n ** 36n + 1n, -5n, 2n ** 53n + 1n], "setBigInt64"),
    want: f32([-(2 ** 63), 2 ** 60 + 2 ** 37, -5, 2 ** 53]),
  },
  {
    dtype: "U64",
    shape: [2],
    data: le(8, [2n ** 64n - 1n, 12345n], "setBigUint64"),
    want: f32([2 ** 64, 12345]),
  },
  {
    dtype: "F8_E4M3",
    shape: [5],
    data: new Uint8Array([0x38, 0x7e, 0x7f, 0x01, 0xb8]),
    want: f32([1, 448, NaN, 2 ** -9, -1]),
  },
  {
    dtype: "F8_E5M2",
    shape: [5],
    data: new Uint8Array([0x3c, 0x7c, 0x7f, 0x01, 0x7b]),
    want: f32([1, Infinity, NaN, 2 ** -16, 57344]),
  },
  {
    dtype: "F8_E8M0",
    shape: [4],
    data: new Uint8Array([127, 0, 254, 255]),
    want: f32([1, 2 ** -127, 2 ** 127, NaN]),
  },
  {
    dtype: "F8_E4M3FNUZ",
    shape: [3],
    data: new Uint8Array([0x40, 0x80, 0x01]),
    want: f32([1, NaN, 2 ** -10]),
  },
  {
    dtype: "F8_E5M2FNUZ",
    shape: [3],
    data: new Uint8Array([0x40, 0x80, 0x7f]),
    want: f32([1, NaN, 57344]),
  },
  // F4 (E2M1), first element in the low nibble: 0x21 -> 0.5, 1; 0xf7 -> 6, -6
  { dtype: "F4", shape: [2, 2], data: new Uint8Array([0x21, 0xf7]), want: f32([0.5, 1, 6, -6]) },
  { dtype: "F6_E2M3", shape: [4], data: new Uint8Array([1, 2, 3]) },
  { dtype: "F6_E3M2", shape: [4], data: new Uint8Array([4, 5, 6]) },
  { dtype: "C64", shape: [1], data: le(4, [1, 2], "setFloat32") },
];

Deno.test("every dtype of the format has a round-trip case", () => {
  assert.deepEqual(CASES.map((c) => c.dtype).sort(), [...SAFETENSORS_DTYPES].sort());
});

Deno.test("round trip: every dtype, raw bytes and float32", async () => {
  const entries = CASES.map((c) => ({ name: `t.${c.dtype}`, ...c }));
  const file = await openSafetensors(await toBytes(entries), "all.safetensors");
  try {
    assert.deepEqual(file.tensors.map((t) => t.name), entries.map((e) => e.name));
    assert.deepEqual(file.warnings, []);
    for (const c of entries) {
      const t = file.tensor(c.name)!;
      assert.equal(t.dtype, c.dtype);
      assert.deepEqual(t.shape, c.shape);
      assert.equal(t.byteLength, c.data.byteLength);
      assert.deepEqual(await file.read(c.name), c.data, c.name);
      if (c.want) {
        assert.ok(canDecodeF32(c.dtype));
        // as plain arrays: values compared with Object.is (NaN == NaN, -0 != 0), not bit patterns
        assert.deepEqual(Array.from(await file.readF32(c.name)), Array.from(c.want), c.name);
        assert.deepEqual(Array.from(toF32(c.dtype, c.data)), Array.from(c.want), c.name);
      } else {
        assert.ok(!canDecodeF32(c.dtype));
        await assert.rejects(
          file.readF32(c.name),
          (e) => e instanceof QuantxError && e.code === "EUNSUPPORTED",
        );
      }
    }
    // element and byte sub-ranges, including an odd start inside an F4 byte
    assert.deepEqual(await file.readF32("t.F4", 1, 2), f32([1, 6]));
    assert.deepEqual(await file.readF32("t.F4", 3), f32([-6]));
    assert.deepEqual(await file.readF32("t.I64", 1, 1), f32([2 ** 60 + 2 ** 37]));
    assert.deepEqual(await file.read("t.F16", 2, 4), CASES[2].data.subarray(2, 6));
    assert.deepEqual(await file.readF32("t.F32", 5, 0), new Float32Array(0));
    await assert.rejects(file.readF32("t.F32", 4, 2), (e) => (e as QuantxError).code === "EINVAL");
    await assert.rejects(file.read("t.F32", 19, 2), (e) => (e as QuantxError).code === "EINVAL");
    await assert.rejects(file.readF32("nope"), (e) => (e as QuantxError).code === "ENOTENSOR");
    assert.equal(file.tensor("nope"), undefined);
  } finally {
    await file.close();
  }
});

Deno.test("E5M2 is the high byte of an fp16, for all 256 values", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const asF16 = new Uint8Array(512);
  all.forEach((b, i) => (asF16[2 * i + 1] = b));
  assert.deepEqual(toF32("F8_E5M2", all), toF32("F16", asF16));
});

Deno.test("fromF32 -> toF32 round trip for F32, F16, BF16, F64", () => {
  const xs = f32([0, -0, 1, -2.5, 65504, 1e-8, 3.1415927, Infinity]);
  assert.deepEqual(toF32("F32", fromF32("F32", xs)), xs);
  assert.deepEqual(toF32("F64", fromF32("F64", xs)), xs);
  assert.deepEqual(toF32("F16", fromF32("F16", f32([1, -2, 65504]))), f32([1, -2, 65504]));
  assert.deepEqual(toF32("BF16", fromF32("BF16", f32([1, 3.140625]))), f32([1, 3.140625]));
  // ggml rounding: nearest even
  assert.deepEqual(fromF32("BF16", f32([1 + 2 ** -8])), new Uint8Array([0x80, 0x3f]));
  assert.throws(() => fromF32("I8", xs), (e) => (e as QuantxError).code === "EUNSUPPORTED");
  assert.throws(() => toF32("F7", new Uint8Array(1)), (e) => (e as QuantxError).code === "EINVAL");
});

Deno.test("metadata and names: order kept, odd keys kept", async () => {
  const meta = { format: "pt", "__proto__": "p", "ключ": "значение", "2": "two" };
  const entries = ["10", "2", "__proto__", "é.weight", ""].map((name, i) => ({
    name,
    dtype: "U8",
    shape: [i],
    data: new Uint8Array(i).fill(i),
  }));
  const file = await openSafetensors(await toBytes(entries, meta));
  assert.deepEqual(file.tensors.map((t) => t.name), ["10", "2", "__proto__", "é.weight", ""]);
  assert.deepEqual(Object.entries(file.metadata).sort(), Object.entries(meta).sort());
  assert.equal(Object.getPrototypeOf(file.metadata), Object.prototype);
  assert.deepEqual(await file.read("é.weight"), new Uint8Array([3, 3, 3]));
  await file.close();
});

Deno.test("tensors listed in data order, whatever the header order", async () => {
  const bytes = rawFile(
    `{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`,
    new Uint8Array([1, 2, 3, 4]),
  );
  const file = await openSafetensors(bytes, "x");
  assert.deepEqual(file.tensors.map((t) => [t.name, t.dataOffset]), [["a", 8 + bytes[0]], [
    "b",
    10 + bytes[0],
  ]]);
  assert.deepEqual(await file.read("b"), new Uint8Array([3, 4]));
});

/** A source that records every read. */
function recorded(bytes: Uint8Array, name: string): ByteSource & { reads: [number, number][] } {
  const inner = bytesSource(bytes, name);
  const reads: [number, number][] = [];
  return {
    ...inner,
    reads,
    read(offset: number, length: number) {
      reads.push([offset, length]);
      return inner.read(offset, length);
    },
  };
}

Deno.test("lazy: open reads only the header; readF32 reads in bounded chunks", async () => {
  const n = 5_000_000; // 10 MB of F16: more than one chunk
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = (i % 2048) - 1024;
  const bytes = await toBytes([
    { name: "small", dtype: "F32", shape: [2], data: fromF32("F32", f32([1, 2])) },
    { name: "big", dtype: "F16", shape: [n / 1000, 1000], data: fromF32("F16", values) },
  ]);
  const src = recorded(bytes, "big.safetensors");
  const file = await openSafetensors(src);
  const headerEnd = file.dataStart;
  assert.deepEqual(src.reads, [[0, 8], [8, headerEnd - 8]]);
  src.reads.length = 0;
  assert.deepEqual(await file.readF32("small"), f32([1, 2]));
  assert.deepEqual(src.reads, [[headerEnd, 8]]);
  src.reads.length = 0;
  const got = await file.readF32("big");
  assert.deepEqual(got, values);
  assert.ok(src.reads.length >= 2);
  assert.ok(src.reads.every(([, len]) => len <= READ_CHUNK_BYTES), JSON.stringify(src.reads));
  assert.equal(src.reads.reduce((s, [, len]) => s + len, 0), 2 * n);
  // a range in the middle
  assert.deepEqual(await file.readF32("big", 4_194_300, 10), values.subarray(4_194_300, 4_194_310));
  // into a caller's buffer, F16 and F32 alike; a too-small one is not used
  const into = new Float32Array(12).fill(-7);
  const mid = await file.readF32("big", 4_194_300, 10, into);
  assert.equal(mid.buffer, into.buffer);
  assert.deepEqual(mid, values.subarray(4_194_300, 4_194_310));
  assert.deepEqual([...into.subarray(10)], [-7, -7]);
  const small = await file.readF32("small", 0, 2, into);
  assert.equal(small.buffer, into.buffer);
  assert.deepEqual(small, f32([1, 2]));
  assert.deepEqual(await file.readF32("small", 0, 2, new Float32Array(1)), f32([1, 2]));
  await file.close();
});

interface BadCase {
  name: string;
  bytes: Uint8Array;
  offset: number;
  reason: RegExp;
}

const T = (name: string, body: string) => `"${name}":${body}`;

function badCases(): BadCase[] {
  const ok = `{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`;
  const header = (...members: string[]) => `{${members.join(",")}}`;
  const cases: BadCase[] = [];
  const add = (name: string, h: string, key: string, reason: RegExp, data = 8) => {
    const bytes = rawFile(h, new Uint8Array(data));
    cases.push({
      name,
      bytes,
      offset: 8 + enc.encode(h.slice(0, h.indexOf(key))).byteLength,
      reason,
    });
  };
  cases.push({ name: "empty file", bytes: new Uint8Array(0), offset: 0, reason: /too small/ });
  cases.push({ name: "7 bytes", bytes: new Uint8Array(7), offset: 0, reason: /too small/ });
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 100_000_001n, true);
  cases.push({ name: "header over 100 MB", bytes: huge, offset: 0, reason: /over the 100000000/ });
  const past = rawFile(header(T("a", ok)), new Uint8Array(8));
  new DataView(past.buffer).setBigUint64(0, BigInt(past.byteLength - 7), true);
  cases.push({
    name: "header past end",
    bytes: past,
    offset: 0,
    reason: /past the end of the file/,
  });
  const u64max = new Uint8Array(16).fill(0xff);
  cases.push({
    name: "header length 2^64-1",
    bytes: u64max,
    offset: 0,
    reason: /18446744073709551615/,
  });
  cases.push({ name: "zero header", bytes: rawFile(""), offset: 8, reason: /invalid JSON/ });
  cases.push({
    name: "JSON syntax",
    bytes: rawFile(`{"a":{"dtype":"F32",,}}`),
    offset: 8 + 20,
    reason: /invalid JSON: expected a property name/,
  });
  const bad8 = rawFile(`{"aé":1}`);
  bad8[8 + 4] = 0xff; // second byte of "é"
  cases.push({ name: "invalid UTF-8", bytes: bad8, offset: 8 + 3, reason: /UTF-8/ });
  cases.push({
    name: "array header",
    bytes: rawFile(`  [1, 2]`),
    offset: 10,
    reason: /not a JSON object/,
  });
  cases.push({
    name: "null header",
    bytes: rawFile(`null`),
    offset: 8,
    reason: /not a JSON object/,
  });
  const bom = rawFile(`\uFEFF{}`);
  cases.push({ name: "byte order mark", bytes: bom, offset: 8, reason: /invalid JSON/ });
  add("entry not an object", header(T("a", ok), T("b", "[1]")), `"b"`, /tensor "b": expected/);
  add(
    "unknown dtype",
    header(T("w", `{"dtype":"F17","shape":[2],"data_offsets":[0,8]}`)),
    `"w"`,
    /unknown dtype "F17"/,
  );
  add(
    "lower-case dtype",
    header(T("w", `{"dtype":"f32","shape":[2],"data_offsets":[0,8]}`)),
    `"w"`,
    /unknown dtype "f32"/,
  );
  add(
    "missing dtype",
    header(T("w", `{"shape":[2],"data_offsets":[0,8]}`)),
    `"w"`,
    /unknown dtype undefined/,
  );
  add(
    "negative shape",
    header(T("a", ok), T("w", `{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}`)),
    `"w"`,
    /shape must be a list of non-negative integers, got \[-2\]/,
  );
  add(
    "fractional shape",
    header(T("w", `{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}`)),
    `"w"`,
    /shape must be/,
  );
  add(
    "string shape",
    header(T("w", `{"dtype":"F32","shape":"2","data_offsets":[0,8]}`)),
    `"w"`,
    /shape must be/,
  );
  add(
    "shape too big",
    header(T("w", `{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}`)),
    `"w"`,
    /not a whole number of bytes or too large/,
  );
  add(
    "odd number of F4",
    header(T("w", `{"dtype":"F4","shape":[3],"data_offsets":[0,2]}`)),
    `"w"`,
    /not a whole number of bytes/,
  );
  add(
    "offsets reversed",
    header(T("w", `{"dtype":"F32","shape":[2],"data_offsets":[8,0]}`)),
    `"w"`,
    /data_offsets must be \[begin, end\]/,
  );
  add(
    "three offsets",
    header(T("w", `{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}`)),
    `"w"`,
    /data_offsets must be/,
  );
  add(
    "length disagrees with shape",
    header(T("w", `{"dtype":"F32","shape":[3],"data_offsets":[0,8]}`)),
    `"w"`,
    /hold 8 bytes but shape \[3\] of F32 needs 12/,
  );
  add(
    "out of file",
    header(T("a", ok), T("w", `{"dtype":"F32","shape":[2],"data_offsets":[8,16]}`)),
    `"w"`,
    /past the end of the file/,
  );
  add(
    "overlap",
    header(T("a", ok), T("w", `{"dtype":"U8","shape":[4],"data_offsets":[4,8]}`)),
    `"w"`,
    /overlap tensor "a"/,
  );
  add(
    "duplicate tensor",
    header(T("a", ok), T("a", ok)),
    `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
    /duplicate key "a"/,
  );
  add(
    "metadata not an object",
    header(T("__metadata__", `"pt"`), T("a", ok)),
    `"pt"`,
    /__metadata__ must be an object/,
  );
  add(
    "metadata value not a string",
    header(T("__metadata__", `{"format":"pt","n":3}`), T("a", ok)),
    `"n"`,
    /__metadata__ value of "n" must be a string, got 3/,
  );
  add(
    "deep nesting",
    header(
      T("w", `{"dtype":"F32","shape":${"[".repeat(5000)}${"]".repeat(5000)},"data_offsets":[0,8]}`),
    ),
    `"w"`,
    /shape must be a list of non-negative integers, got \[\[\[\.\.\.\]\]\]/,
  );
  return cases;
}

Deno.test("validation: each bad header is a FormatError naming file and byte offset", async (t) => {
  for (const c of badCases()) {
    await t.step(c.name, async () => {
      await assert.rejects(openSafetensors(c.bytes, "bad.safetensors"), (e) => {
        assert.ok(e instanceof FormatError, String(e));
        assert.equal(e.file, "bad.safetensors");
        assert.equal(e.offset, c.offset, e.message);
        assert.match(e.reason, c.reason);
        assert.ok(e.message.startsWith(`bad.safetensors: at byte ${c.offset}: `));
        return true;
      });
    });
  }
});

Deno.test("gaps and trailing bytes are accepted with warnings; null metadata is no metadata", async () => {
  const h =
    `{"__metadata__":null,"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[4,5]},"z":{"dtype":"F32","shape":[0],"data_offsets":[1,1]}}`;
  const file = await openSafetensors(rawFile(h, new Uint8Array([1, 2, 0, 0, 5, 9, 9])));
  assert.deepEqual(file.metadata, {});
  assert.deepEqual(file.tensors.map((t) => t.name), ["a", "z", "b"]);
  assert.deepEqual(file.warnings, [
    '2 unused bytes before tensor "b"',
    "2 bytes after the last tensor",
  ]);
  assert.deepEqual(await file.readF32("b"), f32([5]));
  assert.deepEqual(await file.readF32("z"), new Float32Array(0));
});

Deno.test("open by path: errors name the path; a missing file is ENOENT", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-st-" });
  try {
    const path = join(dir, "m.safetensors");
    await Deno.writeFile(
      path,
      rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, new Uint8Array(4)),
    );
    await assert.rejects(
      openSafetensors(path),
      (e) => e instanceof FormatError && e.file === path && /past the end/.test(e.message),
    );
    await assert.rejects(
      openSafetensors(join(dir, "nope.safetensors")),
      (e) => e instanceof QuantxError && e.code === "ENOENT",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- checkpoints ------------------------------------------------------------------------------

function tensorsOf(seed: number, names: string[]): SafetensorsDataEntry[] {
  return names.map((name, i) => {
    const v = Float32Array.from({ length: 6 }, (_, k) => seed * 100 + i * 10 + k);
    return {
      name,
      dtype: i % 2 ? "BF16" : "F32",
      shape: [2, 3],
      data: fromF32(i % 2 ? "BF16" : "F32", v),
    };
  });
}

async function writeFile(
  path: string,
  entries: SafetensorsDataEntry[],
  meta?: Record<string, string>,
) {
  await writeSafetensors(await createFileSink(path), entries, meta);
}

/** A sharded folder: two shards, the index, config and tokenizer files. */
async function shardedFolder(dir: string): Promise<Record<string, string>> {
  const s1 = tensorsOf(1, ["model.embed.weight", "model.layers.0.q.weight"]);
  const s2 = tensorsOf(2, ["model.layers.0.k.weight", "lm_head.weight"]);
  const f1 = shardFileName(1, 2), f2 = shardFileName(2, 2);
  await writeFile(join(dir, f1), s1, { format: "pt" });
  await writeFile(join(dir, f2), s2, { format: "pt", extra: "x" });
  const map: Record<string, string> = {};
  for (const e of s1) map[e.name] = f1;
  for (const e of s2) map[e.name] = f2;
  const total = [...s1, ...s2].reduce((s, e) => s + e.data.byteLength, 0);
  await writeShardedIndex(dir, map, total);
  await Deno.writeTextFile(
    join(dir, "config.json"),
    `{"architectures": ["LlamaForCausalLM"], "hidden_size": 3}`,
  );
  await Deno.writeTextFile(join(dir, "tokenizer.json"), "{}");
  await Deno.writeTextFile(join(dir, "tokenizer_config.json"), "{}");
  await Deno.writeTextFile(join(dir, "README.md"), "# model");
  return map;
}

Deno.test("checkpoint: sharded index and HF folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-st-" });
  try {
    const map = await shardedFolder(dir);
    const sorted = Object.keys(map).sort();
    for (const path of [dir, join(dir, "model.safetensors.index.json")]) {
      const ck = await openCheckpoint(path);
      try {
        assert.equal(ck.kind, path === dir ? "folder" : "index");
        assert.equal(ck.dir, dir);
        assert.deepEqual(ck.config, { architectures: ["LlamaForCausalLM"], hidden_size: 3 });
        assert.deepEqual(ck.files, ["config.json", "tokenizer.json", "tokenizer_config.json"]);
        assert.deepEqual(ck.tensors.map((t) => t.name), sorted); // weight_map order
        assert.deepEqual(ck.metadata, { format: "pt", extra: "x" });
        assert.equal(ck.indexMetadata.total_size, 24 + 12 + 24 + 12);
        assert.deepEqual(ck.warnings, []);
        assert.equal(ck.shards.length, 2);
        assert.equal(ck.tensor("lm_head.weight")?.file, join(dir, shardFileName(2, 2)));
        assert.deepEqual(ck.tensor("lm_head.weight")?.shape, [2, 3]);
        assert.deepEqual(await ck.readF32("lm_head.weight", 1, 3), f32([211, 212, 213]));
        assert.deepEqual(
          await ck.readF32("model.embed.weight"),
          f32([100, 101, 102, 103, 104, 105]),
        );
        assert.deepEqual(
          await ck.read("model.layers.0.q.weight", 0, 2),
          fromF32("BF16", f32([110])),
        );
        // into the caller's buffers (file sources read straight into them)
        const values = new Float32Array(6);
        const embed = await ck.readF32("model.embed.weight", 0, 6, values);
        assert.equal(embed.buffer, values.buffer);
        assert.deepEqual(values, f32([100, 101, 102, 103, 104, 105]));
        const raw = new Uint8Array(2);
        assert.equal((await ck.read("model.layers.0.q.weight", 0, 2, raw)).buffer, raw.buffer);
        assert.deepEqual(raw, fromF32("BF16", f32([110])));
        await assert.rejects(
          ck.readF32("nope", 0, 1),
          (e) => (e as QuantxError).code === "ENOTENSOR",
        );
      } finally {
        await ck.close();
        await ck.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: single file, folder with model.safetensors, missing paths", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-st-" });
  try {
    const lone = join(dir, "lone");
    await Deno.mkdir(lone);
    await writeFile(join(lone, "w.safetensors"), tensorsOf(3, ["b", "a"]), { k: "v" });
    let ck = await openCheckpoint(join(lone, "w.safetensors"));
    assert.equal(ck.kind, "file");
    assert.equal(ck.dir, undefined);
    assert.equal(ck.config, undefined);
    assert.deepEqual(ck.files, []);
    assert.deepEqual(ck.tensors.map((t) => t.name), ["b", "a"]); // file order
    assert.deepEqual(ck.metadata, { k: "v" });
    await ck.close();
    // a folder with one .safetensors file and no model.safetensors
    ck = await openCheckpoint(lone);
    assert.equal(ck.kind, "folder");
    assert.deepEqual(ck.tensors.map((t) => t.name), ["b", "a"]);
    await ck.close();

    const hf = join(dir, "hf");
    await Deno.mkdir(hf);
    await writeFile(join(hf, "model.safetensors"), tensorsOf(4, ["x"]));
    await Deno.writeTextFile(join(hf, "config.json"), `{"model_type": "llama"}`);
    await Deno.writeTextFile(join(hf, "tokenizer.model"), "spm");
    await Deno.writeTextFile(join(hf, "generation_config.json"), "{}");
    for (const path of [hf, join(hf, "model.safetensors")]) {
      ck = await openCheckpoint(path);
      assert.equal(ck.dir, hf);
      assert.deepEqual(ck.config, { model_type: "llama" });
      assert.deepEqual(ck.files, ["config.json", "generation_config.json", "tokenizer.model"]);
      assert.deepEqual(await ck.readF32("x"), f32([400, 401, 402, 403, 404, 405]));
      await ck.close();
    }
    await Deno.writeTextFile(join(hf, "config.json"), `{"model_type": llama}`);
    await assert.rejects(
      openCheckpoint(hf),
      (e) => e instanceof FormatError && e.file === join(hf, "config.json") && e.offset === 15,
    );
    await Deno.writeTextFile(join(hf, "config.json"), `[]`);
    await assert.rejects(
      openCheckpoint(hf),
      (e) => e instanceof FormatError && /JSON object/.test(e.message),
    );

    const empty = join(dir, "empty");
    await Deno.mkdir(empty);
    await assert.rejects(
      openCheckpoint(empty),
      (e) => e instanceof QuantxError && e.code === "ENOENT",
    );
    await assert.rejects(
      openCheckpoint(join(dir, "missing")),
      (e) => e instanceof QuantxError && e.code === "ENOENT" && /no such file/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: a bad index is a FormatError at the entry's offset", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-st-" });
  try {
    const map = await shardedFolder(dir);
    const index = join(dir, "model.safetensors.index.json");
    const good = await Deno.readTextFile(index);
    const cases: { name: string; text: string; key: string; reason: RegExp; last?: boolean }[] = [
      {
        name: "missing shard",
        text: good.replace(`"lm_head.weight": "model-00002`, `"lm_head.weight": "model-00003`),
        key: `"lm_head.weight"`,
        reason: /names shard "model-00003-of-00002.safetensors", which does not exist/,
      },
      {
        name: "tensor in the wrong shard",
        text: good.replace(`"lm_head.weight": "model-00002`, `"lm_head.weight": "model-00001`),
        key: `"lm_head.weight"`,
        reason:
          /puts tensor "lm_head.weight" in "model-00001-of-00002.safetensors", which does not hold it/,
      },
      {
        name: "tensor in no shard",
        text: good.replace(
          `"weight_map": {`,
          `"weight_map": {\n    "ghost": "model-00001-of-00002.safetensors",`,
        ),
        key: `"ghost"`,
        reason: /puts tensor "ghost"/,
      },
      {
        name: "shard outside the folder",
        text: good.replace(`"lm_head.weight": "model-00002`, `"lm_head.weight": "../model-00002`),
        key: `"lm_head.weight"`,
        reason: /not a file in the index's folder/,
      },
      {
        name: "shard not a string",
        text: good.replace(
          `"lm_head.weight": "model-00002-of-00002.safetensors"`,
          `"lm_head.weight": 2`,
        ),
        key: `"lm_head.weight"`,
        reason: /must be a file name, got 2/,
      },
      {
        name: "duplicate entry",
        text: good.replace(
          `"weight_map": {`,
          `"weight_map": {\n    "lm_head.weight": "model-00002-of-00002.safetensors",`,
        ),
        key: `"lm_head.weight"`,
        reason: /duplicate tensor "lm_head.weight"/,
        last: true,
      },
      { name: "no weight_map", text: `{"metadata": {}}`, key: `{`, reason: /no weight_map/ },
      {
        name: "weight_map not an object",
        text: `{"weight_map": []}`,
        key: `[]`,
        reason: /weight_map must be an object/,
      },
      { name: "not JSON", text: `{"weight_map": {"a": }}`, key: `}}`, reason: /invalid JSON/ },
    ];
    for (const c of cases) {
      await t.step(c.name, async () => {
        await Deno.writeTextFile(index, c.text);
        const pos = c.last ? c.text.lastIndexOf(c.key) : c.text.indexOf(c.key);
        const offset = enc.encode(c.text.slice(0, pos)).byteLength;
        await assert.rejects(openCheckpoint(index), (e) => {
          assert.ok(e instanceof FormatError, String(e));
          assert.equal(e.file, index);
          assert.match(e.reason, c.reason);
          assert.equal(e.offset, offset, e.message);
          return true;
        });
      });
    }
    await t.step("extra tensor and wrong total_size are warnings", async () => {
      const fewer = { ...map };
      delete fewer["model.embed.weight"];
      await Deno.remove(index);
      await writeShardedIndex(dir, fewer, 1);
      const ck = await openCheckpoint(dir);
      assert.deepEqual(ck.tensors.map((x) => x.name), Object.keys(fewer).sort());
      assert.equal(ck.warnings.length, 2);
      assert.match(ck.warnings[0], /tensor "model.embed.weight" is not in the index's weight_map/);
      assert.match(ck.warnings[1], /total_size is 1 but the tensors hold/);
      await ck.close();
    });
    await t.step("a bad shard is a FormatError naming the shard", async () => {
      await Deno.writeTextFile(index, good);
      const shard = join(dir, shardFileName(2, 2));
      const bytes = await Deno.readFile(shard);
      await Deno.writeFile(shard, bytes.subarray(0, bytes.byteLength - 1));
      await assert.rejects(
        openCheckpoint(dir),
        (e) => e instanceof FormatError && e.file === shard,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("real checkpoint: the golden tiny Llama folder decodes to llama.cpp's F32 tensors", async () => {
  const dir = new URL("../../../shared/golden/llama-tiny/hf", import.meta.url).pathname;
  const sums = JSON.parse(
    await Deno.readTextFile(
      new URL("../../../shared/golden/llama-tiny/gguf/f32-tensors.json", import.meta.url),
    ),
  ) as Record<string, string>;
  const ck = await openCheckpoint(dir);
  try {
    assert.equal(ck.kind, "folder");
    assert.equal(ck.config?.architectures?.toString(), "LlamaForCausalLM");
    assert.deepEqual(ck.files, ["config.json", "tokenizer.json", "tokenizer_config.json"]);
    assert.equal(ck.tensors.length, 20); // 2 layers x 9 + embeddings + final norm
    assert.deepEqual(ck.warnings, []);
    assert.ok(ck.tensors.every((t) => t.dtype === "BF16"));
    // tensors that convert_hf_to_gguf.py copies without permutation: same values as float32
    const same: [string, string][] = [
      ["model.embed_tokens.weight", "token_embd.weight"],
      ["model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"],
      ["model.layers.1.self_attn.v_proj.weight", "blk.1.attn_v.weight"],
      ["model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"],
    ];
    for (const [hf, gguf] of same) {
      const f = await ck.readF32(hf);
      const digest = new Uint8Array(
        await crypto.subtle.digest("SHA-256", new Uint8Array(f.buffer as ArrayBuffer)),
      );
      const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(hex, sums[gguf], hf);
    }
  } finally {
    await ck.close();
  }
});
