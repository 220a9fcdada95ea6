import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { createFileSink, memorySink, QuantxError } from "./mod.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("memorySink collects writes in order", async () => {
  const sink = memorySink();
  const chunk = new Uint8Array([1, 2]);
  await sink.write(chunk);
  chunk[0] = 9; // the sink copied it
  await sink.write(new Uint8Array([3]));
  assert.equal(sink.position, 3);
  assert.deepEqual(sink.bytes(), new Uint8Array([1, 2, 3]));
});

Deno.test("createFileSink writes X.partial and renames it on close", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "out.bin");
    const sink = await createFileSink(path);
    await sink.write(new Uint8Array([1, 2, 3]));
    assert.ok(existsSync(path + ".partial"));
    assert.ok(!existsSync(path));
    await sink.write(new Uint8Array(100_000).fill(7));
    assert.equal(sink.position, 100_003);
    await sink.close();
    assert.ok(!existsSync(path + ".partial"));
    const bytes = await Deno.readFile(path);
    assert.equal(bytes.length, 100_003);
    assert.deepEqual(bytes.subarray(0, 4), new Uint8Array([1, 2, 3, 7]));
    await assert.rejects(() => sink.write(new Uint8Array(1)), /write after close/);
  });
});

Deno.test("createFileSink: an output larger than a background flush is complete", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "big.bin");
    const sink = await createFileSink(path);
    const piece = new Uint8Array(5 << 20);
    for (let k = 0; k < 30; k++) await sink.write(piece.fill(k)); // 150 MiB: two flushes or more
    await sink.close();
    const file = await Deno.open(path);
    try {
      assert.equal((await file.stat()).size, 30 * piece.length);
      const probe = new Uint8Array(1);
      for (const k of [0, 12, 13, 29]) {
        await file.seek(k * piece.length + 4321, Deno.SeekMode.Start);
        await file.read(probe);
        assert.equal(probe[0], k);
      }
    } finally {
      file.close();
    }
  });
});

Deno.test("createFileSink.reserve: ranges filled in by others; close checks the size", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "r.bin");
    const sink = await createFileSink(path);
    await sink.write(new Uint8Array([1, 2]));
    const r = sink.reserve!(3);
    assert.deepEqual(r, { path: path + ".partial", offset: 2, name: path });
    await sink.write(new Uint8Array([6])); // positional: after the reserved range
    assert.equal(sink.position, 6);
    assert.throws(() => sink.reserve!(-1), RangeError);
    const f = await Deno.open(r.path, { write: true });
    await f.seek(r.offset, Deno.SeekMode.Start);
    await f.write(new Uint8Array([3, 4, 5]));
    f.close();
    await sink.close();
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3, 4, 5, 6]));
    assert.throws(() => sink.reserve!(1), /write after close/);

    // a reserved tail never written: close refuses and leaves nothing behind
    const short = join(dir, "short.bin");
    const s2 = await createFileSink(short);
    await s2.write(new Uint8Array([1]));
    s2.reserve!(4);
    await assert.rejects(() => s2.close(), /5 bytes were written or reserved, but the file has 1/);
    assert.ok(!existsSync(short) && !existsSync(short + ".partial"));
  });
});

Deno.test("createFileSink: writes and reserves issued before earlier writes end keep their order", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "o.bin");
    const sink = await createFileSink(path);
    const first = sink.write(new Uint8Array(100_000).fill(1)); // not awaited
    const r = sink.reserve!(2);
    const second = sink.write(new Uint8Array([3, 4]));
    assert.equal(r.offset, 100_000);
    assert.equal(sink.position, 100_004);
    await Promise.all([first, second]);
    const f = await Deno.open(r.path, { write: true });
    await f.seek(r.offset, Deno.SeekMode.Start);
    await f.write(new Uint8Array([2, 2]));
    f.close();
    await sink.close();
    const bytes = await Deno.readFile(path);
    assert.deepEqual([...bytes.subarray(99_998)], [1, 1, 2, 2, 3, 4]);
  });
});

Deno.test("createFileSink: a failed background sync fails the next call, not just close", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "o.bin");
    // fdatasync on a character device fails (EINVAL): a stand-in for a disk that fails to sync
    await Deno.symlink("/dev/full", path + ".partial");
    const sink = await createFileSink(path);
    sink.reserve!(80 << 20); // past the 64 MiB mark: a background sync starts
    let error: unknown;
    for (let i = 0; i < 200 && !error; i++) {
      try {
        sink.reserve!(0);
        await new Promise((r) => setTimeout(r, 10));
      } catch (e) {
        error = e;
      }
    }
    assert.ok(error instanceof QuantxError, String(error));
    assert.match(error.message, /cannot write .*o\.bin: /);
    await assert.rejects(() => sink.write(new Uint8Array(1)), /write after abort/);
    await sink.abort();
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), [], "the partial file is gone");
  });
});

Deno.test("createFileSink refuses an existing file unless overwrite is set", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "out.bin");
    await Deno.writeTextFile(path, "old");
    await assert.rejects(() => createFileSink(path), (e) => {
      assert.ok(e instanceof QuantxError);
      assert.equal(e.code, "EEXIST");
      assert.match(e.message, /out\.bin: already exists/);
      return true;
    });
    assert.equal(await Deno.readTextFile(path), "old");
    const sink = await createFileSink(path, { overwrite: true });
    await sink.write(new TextEncoder().encode("new"));
    assert.equal(await Deno.readTextFile(path), "old"); // untouched until close
    await sink.close();
    assert.equal(await Deno.readTextFile(path), "new");
    await assert.rejects(() => createFileSink(dir, { overwrite: true }), /is a folder/);
  });
});

Deno.test("createFileSink abort() and an aborted signal remove the partial file", async () => {
  await withDir(async (dir) => {
    const a = join(dir, "a.bin");
    const sink = await createFileSink(a);
    await sink.write(new Uint8Array(10));
    await sink.abort();
    await sink.abort();
    assert.deepEqual([...Deno.readDirSync(dir)], []);

    const ac = new AbortController();
    const b = join(dir, "b.bin");
    const sink2 = await createFileSink(b, { signal: ac.signal });
    await sink2.write(new Uint8Array(10));
    ac.abort();
    await assert.rejects(() => sink2.write(new Uint8Array(1)));
    await sink2.abort();
    assert.deepEqual([...Deno.readDirSync(dir)], []);

    await assert.rejects(() => createFileSink(b, { signal: AbortSignal.abort() }));
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("createFileSink names the path when the folder is missing", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "missing", "out.bin");
    await assert.rejects(() => createFileSink(path), (e) => {
      assert.ok(e instanceof QuantxError);
      assert.equal(e.code, "ENOENT");
      assert.match(e.message, /cannot write .*out\.bin: no such file or directory/);
      return true;
    });
  });
});
