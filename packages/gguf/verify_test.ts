import assert from "node:assert/strict";
import { bytesSource, memorySink } from "@quantx/core";
import {
  type GgufContents,
  type GgufValue,
  GgufValueType as T,
  openGguf,
  verifyGguf,
  writeGguf,
} from "./mod.ts";

async function build(contents: GgufContents): Promise<Uint8Array> {
  const sink = memorySink();
  await writeGguf(sink, contents);
  return sink.bytes();
}

const verify = (b: Uint8Array) => verifyGguf(bytesSource(b, "v.gguf"));
const arch: [string, GgufValue] = ["general.architecture", { type: T.STRING, value: "llama" }];
const q8 = { name: "w", shape: [32, 2], type: "q8_0", data: new Uint8Array(68) };

Deno.test("verify: llama.cpp's golden files are clean", async () => {
  for (const name of ["q4_0", "q8_0", "q4_k_m"]) {
    const r = await verifyGguf(`../shared/golden/llama-tiny/gguf/${name}.gguf`);
    assert.deepStrictEqual(r, { ok: true, problems: [], warnings: [] }, name);
  }
});

Deno.test("verify: conventions", async () => {
  // Quantized without general.quantization_version (a problem) and general.file_type (a warning).
  let r = await verify(await build({ metadata: [arch], tensors: [q8] }));
  assert.equal(r.ok, false);
  assert.match(
    r.problems[0],
    /general.quantization_version is missing but 1 tensors are quantized \(e.g. w, q8_0\)/,
  );
  assert.match(r.warnings[0], /general.file_type is missing/);

  r = await verify(
    await build({
      metadata: [
        arch,
        ["general.quantization_version", { type: T.UINT32, value: 2 }],
        ["general.file_type", { type: T.UINT32, value: 7 }],
      ],
      tensors: [q8],
    }),
  );
  assert.deepStrictEqual(r, { ok: true, problems: [], warnings: [] });

  r = await verify(await build({ metadata: [] }));
  assert.deepStrictEqual(r.problems, ["general.architecture is missing"]);
  r = await verify(
    await build({ metadata: [["general.architecture", { type: T.UINT8, value: 1 }]] }),
  );
  assert.deepStrictEqual(r.problems, ["general.architecture is u8, not a string"]);

  // Arrays of arrays are valid GGUF but llama.cpp rejects them.
  r = await verify(
    await build({
      metadata: [arch, ["n", { type: T.ARRAY, itemType: T.ARRAY, value: [] }]],
    }),
  );
  assert.match(r.problems[0], /key 'n' is an array of arrays/);
});

/** Patch the written file: rename key bytes in place (same length) to reorder semantics. */
function replaceAscii(b: Uint8Array, from: string, to: string): Uint8Array {
  const s = new TextDecoder("latin1").decode(b);
  const i = s.indexOf(from);
  assert.ok(i >= 0 && from.length === to.length);
  const out = b.slice();
  out.set(new TextEncoder().encode(to), i);
  return out;
}

Deno.test("verify: warnings for unusual but readable files", async () => {
  // general.architecture second: write a decoy key, then swap the two names in place.
  const b = await build({
    metadata: [arch, ["general.architectur2", { type: T.STRING, value: "llama" }]],
    tensors: [{ name: "t", shape: [4], type: 0, data: new Uint8Array(16) }],
  });
  const swapped = replaceAscii(
    replaceAscii(b, "general.architecture", "general.architectur_"),
    "general.architectur2",
    "general.architecture",
  );
  let r = await verify(swapped);
  assert.deepStrictEqual(r, {
    ok: true,
    problems: [],
    warnings: ["general.architecture is key 1, not the first"],
  });
  // A missing trailing pad and trailing garbage.
  r = await verify(b.subarray(0, b.byteLength - 4));
  assert.ok(r.ok);
  assert.match(r.warnings[0], /before the padding after the last tensor/);
  const longer = new Uint8Array(b.byteLength + 3);
  longer.set(b);
  r = await verify(longer);
  assert.match(r.warnings[0], /3 bytes follow the end of the data section/);
  // A big-endian file, built by hand.
  const key = new TextEncoder().encode("general.architecture");
  const be = new Uint8Array(24 + 8 + key.length + 4 + 8 + 1);
  const dv = new DataView(be.buffer);
  be.set([0x47, 0x47, 0x55, 0x46]);
  dv.setUint32(4, 3, false);
  dv.setBigInt64(16, 1n, false);
  dv.setBigUint64(24, BigInt(key.length), false);
  be.set(key, 32);
  dv.setUint32(32 + key.length, T.STRING, false);
  dv.setBigUint64(36 + key.length, 1n, false);
  be[44 + key.length] = 0x78;
  r = await verify(be);
  assert.deepStrictEqual(r, {
    ok: true,
    problems: [],
    warnings: ["the file is big-endian; llama.cpp on little-endian machines rejects it"],
  });
  // Tensor names llama.cpp cannot hold.
  // Tensor names longer than llama.cpp's 63 bytes: the writer refuses them, so grow one by a byte
  // in a written file (taking the byte from the padding before the data section).
  const ok63 = await build({
    metadata: [arch],
    tensors: [{ name: "n".repeat(63), shape: [1], type: 0, data: new Uint8Array(4) }],
  });
  assert.ok((await verify(ok63)).ok);
  const f = await openGguf(bytesSource(ok63));
  const at = new TextDecoder("latin1").decode(ok63).indexOf("n".repeat(63));
  const grown = new Uint8Array(ok63.byteLength);
  grown.set(ok63.subarray(0, at + 63));
  grown[at + 63] = 0x6e;
  grown.set(ok63.subarray(at + 63, f.infoEnd), at + 64);
  grown.set(ok63.subarray(f.dataOffset), f.dataOffset);
  new DataView(grown.buffer).setBigUint64(at - 8, 64n, true);
  r = await verify(grown);
  assert.deepStrictEqual(r.problems, [
    `tensor name '${"n".repeat(64)}' is 64 bytes; llama.cpp allows at most 63`,
  ]);
});

Deno.test("verify: format errors become problems; other errors are thrown", async () => {
  const r = await verify(new Uint8Array([0x47, 0x47, 0x55, 0x46, 1, 0, 0, 0]));
  assert.deepStrictEqual(r.ok, false);
  assert.match(r.problems[0], /v\.gguf: at byte 0: .*needs 24 bytes/);
  await assert.rejects(() => verifyGguf("/nonexistent/dir/x.gguf"));
});
