import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { loadFileAccess, readFileValues, writeFileBytes } from "./file_values.ts";

Deno.test("readFileValues / writeFileBytes: positional, whole, clear errors", async () => {
  await loadFileAccess();
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "v.bin");
    await Deno.writeFile(path, Uint8Array.from({ length: 100 }, (_, i) => i));
    const into = new Uint8Array(12).fill(255);
    readFileValues({ path, offset: 10, count: 2, dtype: "f32" }, into);
    assert.deepEqual([...into.subarray(0, 8)], [10, 11, 12, 13, 14, 15, 16, 17]);
    assert.deepEqual([...into.subarray(8)], [255, 255, 255, 255], "nothing past the values");
    readFileValues({ path, offset: 96, count: 2, dtype: "bf16" }, into);
    assert.deepEqual([...into.subarray(0, 4)], [96, 97, 98, 99]);
    assert.throws(
      () => readFileValues({ path, offset: 96, count: 2, dtype: "f32" }, into),
      /v\.bin: at byte 100: file ended early/,
    );
    assert.throws(
      () => readFileValues({ path, offset: 0, count: 4, dtype: "f32" }, into),
      RangeError,
    );

    writeFileBytes({ path, offset: 98 }, new Uint8Array([7, 8, 9, 10]));
    const back = await Deno.readFile(path);
    assert.equal(back.length, 102, "writes past the end extend the file");
    assert.deepEqual([...back.subarray(96)], [96, 97, 7, 8, 9, 10]);
    const missing = join(dir, "nope.bin");
    assert.throws(() => writeFileBytes({ path: missing, offset: 0 }, new Uint8Array(1)));
    assert.ok(!existsSync(missing), "a target file is never created");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
