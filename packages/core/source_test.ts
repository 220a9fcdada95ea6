import assert from "node:assert/strict";
import { join } from "node:path";
import {
  blobSource,
  bytesSource,
  FormatError,
  openFileSource,
  openHttpSource,
  openSource,
  QuantxError,
} from "./mod.ts";

const DATA = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);

async function checkSource(src: { read(o: number, l: number): Promise<Uint8Array>; size: number }) {
  assert.equal(src.size, DATA.length);
  assert.deepEqual(await src.read(0, 4), DATA.subarray(0, 4));
  assert.deepEqual(await src.read(990, 10), DATA.subarray(990));
  assert.deepEqual(await src.read(500, 0), new Uint8Array(0));
  for (const [o, l] of [[995, 10], [-1, 2], [1001, 0], [0.5, 1]]) {
    await assert.rejects(() => src.read(o, l), (e) => {
      assert.ok(e instanceof FormatError, String(e));
      assert.match(e.message, /at byte/);
      return true;
    });
  }
}

Deno.test("bytesSource reads ranges and rejects out-of-range reads with the offset", async () => {
  await checkSource(bytesSource(DATA, "mem.bin"));
  await assert.rejects(
    () => bytesSource(DATA, "mem.bin").read(998, 4),
    /mem\.bin: at byte 998: needs 4 bytes but the file has 2 left/,
  );
});

Deno.test("blobSource reads ranges", async () => {
  await checkSource(blobSource(new Blob([DATA]), "blob.bin"));
});

Deno.test("openFileSource reads ranges; missing files and folders are clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "data.bin");
    await Deno.writeFile(path, DATA);
    const src = await openFileSource(path);
    await checkSource(src);
    // reading into a caller's buffer: no allocation, a view of that buffer comes back
    const into = new Uint8Array(16).fill(255);
    const got = await src.read(10, 8, into);
    assert.equal(got.buffer, into.buffer);
    assert.equal(got.byteOffset, 0);
    assert.deepEqual(got, DATA.subarray(10, 18));
    assert.deepEqual(into.subarray(8), new Uint8Array(8).fill(255), "nothing past `length`");
    assert.deepEqual(await src.read(0, 20, new Uint8Array(4)), DATA.subarray(0, 20), "too small");
    await src.close();
    await src.close();
    await assert.rejects(() => src.read(0, 1), /read after close/);
    await assert.rejects(() => openFileSource(join(dir, "nope.bin")), (e) => {
      assert.ok(e instanceof QuantxError);
      assert.equal(e.code, "ENOENT");
      assert.match(e.message, /nope\.bin: no such file or directory/);
      return true;
    });
    await assert.rejects(() => openFileSource(dir), /is a folder/);
    const viaUrl = await openSource(new URL(`file://${path}`));
    assert.deepEqual(await viaUrl.read(1, 2), DATA.subarray(1, 3));
    await viaUrl.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openHttpSource uses range requests and refuses servers without them", async () => {
  const ac = new AbortController();
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, signal: ac.signal, onListen() {} }, (req) => {
    const url = new URL(req.url);
    const range = req.headers.get("range");
    requests.push(`${req.method} ${url.pathname} ${range ?? ""}`);
    if (url.pathname === "/norange") return new Response(DATA);
    if (req.method === "HEAD") {
      return new Response(null, { headers: { "content-length": String(DATA.length) } });
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? "");
    if (!m) return new Response(DATA);
    const [a, b] = [Number(m[1]), Number(m[2])];
    return new Response(DATA.slice(a, b + 1), {
      status: 206,
      headers: { "content-range": `bytes ${a}-${b}/${DATA.length}` },
    });
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const src = await openSource(`${base}/model.bin`);
    await checkSource(src);
    assert.ok(requests.some((r) => r === "GET /model.bin bytes=990-999"));
    const plain = await openHttpSource(`${base}/norange`);
    await assert.rejects(() => plain.read(0, 4), (e) => {
      assert.ok(e instanceof QuantxError);
      assert.equal(e.code, "ERANGE");
      return true;
    });
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("openSource passes sources through and wraps bytes and blobs", async () => {
  const src = bytesSource(DATA);
  assert.equal(await openSource(src), src);
  assert.equal((await openSource(DATA)).size, 1000);
  assert.equal((await openSource(new Blob([DATA]))).size, 1000);
});
