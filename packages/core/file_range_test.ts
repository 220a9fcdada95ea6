import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { FormatError, QuantxError, readFileRangeSync, writeFileRangeSync } from "./mod.ts";

Deno.test("readFileRangeSync / writeFileRangeSync: positional, whole, clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "v.bin");
    await Deno.writeFile(path, Uint8Array.from({ length: 100 }, (_, i) => i));
    const into = new Uint8Array(8);
    readFileRangeSync({ path, offset: 10 }, into);
    assert.deepEqual([...into], [10, 11, 12, 13, 14, 15, 16, 17]);
    assert.throws(() => readFileRangeSync({ path, offset: 96 }, into), (e) => {
      assert.ok(e instanceof FormatError);
      assert.match(e.message, /v\.bin: at byte 100: file ended early/);
      return true;
    });
    writeFileRangeSync({ path, offset: 98 }, new Uint8Array([7, 8, 9, 10]));
    const back = await Deno.readFile(path);
    assert.equal(back.length, 102, "a write past the end extends the file");
    assert.deepEqual([...back.subarray(96)], [96, 97, 7, 8, 9, 10]);
    const missing = join(dir, "nope.bin");
    assert.throws(
      () => writeFileRangeSync({ path: missing, offset: 0 }, new Uint8Array(1)),
      (e) => {
        assert.ok(e instanceof QuantxError);
        assert.equal(e.code, "ENOENT");
        assert.match(e.message, /cannot write .*nope\.bin: no such file/);
        return true;
      },
    );
    assert.ok(!existsSync(missing), "a file is never created");
    assert.throws(() => readFileRangeSync({ path: missing, offset: 0 }, into), /cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
