import assert from "node:assert/strict";
import { join } from "node:path";
import { createFileSink, memorySink, QuantxError } from "@quantx/core";
import {
  fromF32,
  openCheckpoint,
  openSafetensors,
  planShards,
  safetensorsIndexJson,
  safetensorsLayout,
  SafetensorsWriter,
  shardFileName,
  writeSafetensors,
  writeShardedIndex,
} from "./mod.ts";

const enc = new TextEncoder();
const isEinval = (e: unknown) => e instanceof QuantxError && e.code === "EINVAL";

Deno.test("layout is byte-exact: length, compact JSON, space padding to 8, raw data", async () => {
  // The python `safetensors` package is not available here; this is the layout it writes,
  // worked out by hand: u64 LE header length (138 bytes of JSON padded to 144), the JSON with
  // __metadata__ first, then the data with no padding.
  const json =
    `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
    `"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}`;
  assert.equal(json.length, 138);
  const want = new Uint8Array([
    144,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ...enc.encode(json),
    ...enc.encode("      "), // 6 spaces: 138 -> 144
    0,
    0,
    0x80,
    0x3f,
    0,
    0,
    0,
    0xc0, // F32 1, -2
    7,
    8,
    9,
  ]);
  const sink = memorySink();
  const size = await writeSafetensors(sink, [
    { name: "a", dtype: "F32", shape: [2], data: fromF32("F32", new Float32Array([1, -2])) },
    { name: "b", dtype: "U8", shape: [3], data: new Uint8Array([7, 8, 9]) },
  ], { format: "pt" });
  assert.deepEqual(sink.bytes(), want);
  assert.equal(size, want.byteLength);

  // a scalar, no metadata: 53 bytes of JSON padded to 56
  const scalar = memorySink();
  await writeSafetensors(scalar, [
    { name: "s", dtype: "I64", shape: [], data: new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0]) },
  ]);
  assert.deepEqual(
    scalar.bytes(),
    new Uint8Array([
      56,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...enc.encode(`{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}   `),
      5,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    ]),
  );
  const f = await openSafetensors(scalar.bytes());
  assert.deepEqual(f.tensors[0].shape, []);
  assert.deepEqual(await f.readF32("s"), new Float32Array([5]));
});

Deno.test("header padding: every JSON length mod 8 pads with spaces to a multiple of 8", async () => {
  for (let n = 1; n <= 16; n++) {
    const name = "x".repeat(n);
    const { header } = safetensorsLayout([{ name, dtype: "U8", shape: [1] }], { "é": "ü" });
    const len = Number(new DataView(header.buffer).getBigUint64(0, true));
    assert.equal(len % 8, 0);
    assert.equal(header.byteLength, 8 + len);
    const text = new TextDecoder().decode(header.subarray(8));
    assert.equal(
      text.trimEnd().length + (len - enc.encode(text.trimEnd()).byteLength),
      text.length,
    );
    assert.ok(len - enc.encode(text.trimEnd()).byteLength < 8);
    assert.deepEqual(JSON.parse(text), {
      "__metadata__": { "é": "ü" },
      [name]: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
    });
    const sink = memorySink();
    await writeSafetensors(sink, [{ name, dtype: "U8", shape: [1], data: new Uint8Array([n]) }]);
    const f = await openSafetensors(sink.bytes());
    assert.deepEqual(await f.read(name), new Uint8Array([n]));
  }
});

Deno.test("streaming writer: chunks of any size, across tensor boundaries", async () => {
  const entries = [
    { name: "w1", dtype: "BF16", shape: [3, 4] },
    { name: "empty", dtype: "F32", shape: [0, 5] },
    { name: "w2", dtype: "F16", shape: [5] },
  ];
  const values = Float32Array.from({ length: 17 }, (_, i) => i - 8);
  const bytes = new Uint8Array([
    ...fromF32("BF16", values.subarray(0, 12)),
    ...fromF32("F16", values.subarray(12)),
  ]);
  const sink = memorySink("s.safetensors");
  const w = new SafetensorsWriter(sink, entries, { a: "1" });
  assert.deepEqual(w.offsets, [[0, 24], [24, 24], [24, 34]]);
  assert.equal(w.dataLength, 34);
  await w.writeHeader();
  for (let i = 0; i < bytes.byteLength; i += 5) await w.write(bytes.subarray(i, i + 5));
  assert.equal(w.written, 34);
  await w.finish();
  assert.equal(sink.bytes().byteLength, w.byteLength);
  const f = await openSafetensors(sink.bytes());
  assert.deepEqual(f.tensors.map((t) => t.name), ["w1", "empty", "w2"]);
  assert.deepEqual(await f.readF32("w1"), values.subarray(0, 12));
  assert.deepEqual(await f.readF32("w2"), values.subarray(12));
  assert.deepEqual(f.metadata, { a: "1" });
});

Deno.test("streaming writer: size checks", async () => {
  const entries = [{ name: "a", dtype: "F32", shape: [2] }, { name: "b", dtype: "U8", shape: [4] }];
  let w = new SafetensorsWriter(memorySink("x"), entries);
  await w.write(new Uint8Array(10)); // writes the header first
  await assert.rejects(
    w.write(new Uint8Array(3)),
    (e) => isEinval(e) && /1 bytes more/.test(String(e)),
  );
  await assert.rejects(
    w.finish(),
    (e) => isEinval(e) && /tensor "b" got 2 of its 4 bytes/.test(String(e)),
  );
  await w.write(new Uint8Array(2));
  await w.finish();
  await assert.rejects(w.write(new Uint8Array(0)), isEinval);
  await assert.rejects(w.finish(), isEinval);
  w = new SafetensorsWriter(memorySink("y"), entries);
  await assert.rejects(
    w.finish(),
    (e) => isEinval(e) && /tensor "a" got 0 of its 8 bytes/.test(String(e)),
  );
  await assert.rejects(
    (async () => {
      const w2 = new SafetensorsWriter(memorySink("z"), entries);
      await w2.writeHeader();
      await w2.writeHeader();
    })(),
    isEinval,
  );
});

Deno.test("bad entries are refused before anything is written", async () => {
  const bad: [string, () => unknown][] = [
    [
      "duplicate",
      () =>
        safetensorsLayout([{ name: "a", dtype: "U8", shape: [1] }, {
          name: "a",
          dtype: "U8",
          shape: [1],
        }]),
    ],
    ["reserved name", () => safetensorsLayout([{ name: "__metadata__", dtype: "U8", shape: [1] }])],
    ["unknown dtype", () => safetensorsLayout([{ name: "a", dtype: "f32", shape: [1] }])],
    ["negative dim", () => safetensorsLayout([{ name: "a", dtype: "U8", shape: [-1] }])],
    ["fractional dim", () => safetensorsLayout([{ name: "a", dtype: "U8", shape: [1.5] }])],
    ["odd F4", () => safetensorsLayout([{ name: "a", dtype: "F4", shape: [3] }])],
    ["metadata not string", () => safetensorsLayout([], { n: 1 as unknown as string })],
  ];
  for (const [what, fn] of bad) assert.throws(fn, isEinval, what);
  // F4 with an even count is fine: 4 values in 2 bytes
  assert.equal(safetensorsLayout([{ name: "a", dtype: "F4", shape: [2, 2] }]).dataLength, 2);

  const dir = await Deno.makeTempDir({ prefix: "quantx-stw-" });
  try {
    const path = join(dir, "out.safetensors");
    await assert.rejects(
      writeSafetensors(await createFileSink(path), [
        { name: "a", dtype: "F32", shape: [3], data: new Uint8Array(8) },
      ]),
      (e) => isEinval(e) && /8 bytes of data, but \[3\] of F32 needs 12/.test(String(e)),
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []); // the partial file was removed
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file sink round trip, names in errors are the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-stw-" });
  try {
    const path = join(dir, "m.safetensors");
    await writeSafetensors(await createFileSink(path), [
      {
        name: "w",
        dtype: "F32",
        shape: [2, 2],
        data: fromF32("F32", new Float32Array([1, 2, 3, 4])),
      },
    ]);
    const f = await openSafetensors(path);
    assert.equal(f.name, path);
    assert.equal(f.tensors[0].file, path);
    assert.deepEqual(await f.readF32("w", 2), new Float32Array([3, 4]));
    await f.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shards: plan, names, index text as transformers writes it", async () => {
  const entries = [
    { name: "a", dtype: "F32", shape: [4] }, // 16
    { name: "b", dtype: "F32", shape: [4] }, // 16
    { name: "big", dtype: "F32", shape: [16] }, // 64 > limit: own shard
    { name: "c", dtype: "U8", shape: [8] },
  ];
  const plan = planShards(entries, 32);
  assert.deepEqual(plan.map((s) => [s.file, s.entries.map((e) => e.name), s.dataLength]), [
    [shardFileName(1, 3), ["a", "b"], 32],
    [shardFileName(2, 3), ["big"], 64],
    [shardFileName(3, 3), ["c"], 8],
  ]);
  assert.equal(shardFileName(1, 3), "model-00001-of-00003.safetensors");
  assert.deepEqual(planShards(entries, 1000).map((s) => s.file), ["model.safetensors"]);

  const map = new Map(
    plan.flatMap((s) => s.entries.map((e) => [e.name, s.file] as [string, string])),
  );
  assert.equal(
    safetensorsIndexJson(map, 104),
    `{
  "metadata": {
    "total_size": 104
  },
  "weight_map": {
    "a": "model-00001-of-00003.safetensors",
    "b": "model-00001-of-00003.safetensors",
    "big": "model-00002-of-00003.safetensors",
    "c": "model-00003-of-00003.safetensors"
  }
}
`,
  );
  // sort_keys and ensure_ascii, as python's json.dumps
  assert.equal(
    safetensorsIndexJson({ "é": "x", "10": "y", "9": "z" }, 1, { total_parameters: 3 }),
    `{\n  "metadata": {\n    "total_parameters": 3,\n    "total_size": 1\n  },\n  "weight_map": {\n` +
      `    "10": "y",\n    "9": "z",\n    "\\u00e9": "x"\n  }\n}\n`,
  );

  const dir = await Deno.makeTempDir({ prefix: "quantx-stw-" });
  try {
    for (const shard of plan) {
      const sink = await createFileSink(join(dir, shard.file));
      const w = new SafetensorsWriter(sink, shard.entries, { format: "pt" });
      await w.writeHeader();
      await w.write(new Uint8Array(shard.dataLength).fill(1));
      await w.finish();
    }
    const path = await writeShardedIndex(dir, map, 104);
    assert.equal(path, join(dir, "model.safetensors.index.json"));
    await assert.rejects(
      writeShardedIndex(dir, map, 104),
      (e) => (e as QuantxError).code === "EEXIST",
    );
    await writeShardedIndex(dir, map, 104, { overwrite: true });
    const ck = await openCheckpoint(dir);
    assert.deepEqual(ck.tensors.map((t) => t.name), ["a", "b", "big", "c"]);
    assert.deepEqual(ck.warnings, []);
    assert.deepEqual(await ck.readF32("c"), new Float32Array(8).fill(1));
    await ck.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
