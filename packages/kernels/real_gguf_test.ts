/**
 * Slices of real published GGUF checkpoints (SmolLM2-135M, TinyLlama-1.1B) in
 * ../shared/fixtures/real-gguf-slices: dequantize() decodes every one to the values gguf-py gives
 * (stored rounded to bf16, so ours are rounded the same way before comparing).
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { f32BitsToBf16 } from "./cpu/float.ts";
import { dequantize } from "./quantize.ts";
import { ggmlType, rowSize } from "./types.ts";

const DIR = new URL("../../../shared/fixtures/real-gguf-slices/", import.meta.url);

const files = (await readdir(DIR)).filter((f) => f.endsWith(".bin")).sort();

Deno.test("real GGUF slices: all 12 are there", () => {
  assert.equal(files.length, 12, files.join(", "));
});

for (const file of files) {
  Deno.test(`real GGUF slice ${file} decodes exactly`, async () => {
    const bytes = new Uint8Array(await readFile(new URL(file, DIR)));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const typeId = view.getUint32(0, true);
    const count = view.getUint32(4, true);
    const rawLen = view.getUint32(8, true);
    const goldenLen = view.getUint32(12, true);
    assert.equal(bytes.length, 16 + rawLen + goldenLen);
    assert.equal(goldenLen, count * 2);
    const type = ggmlType(typeId);
    assert.equal(rawLen, rowSize(type, count), `${file}: ${type.name} block data length`);
    // the file name says the type too
    assert.ok(file.includes(type.name), `${file} is ${type.name}`);

    const raw = bytes.subarray(16, 16 + rawLen);
    const golden = bytes.subarray(16 + rawLen);
    const values = dequantize(type.name, raw, count);
    const bits = new Uint32Array(values.buffer);
    let nonzero = 0;
    for (let i = 0; i < count; i++) {
      const want = golden[2 * i] | (golden[2 * i + 1] << 8);
      const got = f32BitsToBf16(bits[i]);
      if (got !== want) {
        assert.fail(
          `${file}: value ${i} is ${values[i]} (bf16 ${got.toString(16)}), ` +
            `expected bf16 ${want.toString(16)}`,
        );
      }
      if (want & 0x7fff) nonzero++;
    }
    assert.ok(nonzero > count / 2, `${file}: the slice is mostly non-zero`);
  });
}
