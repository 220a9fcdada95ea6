import assert from "node:assert/strict";
import { join } from "node:path";
import { createFileSink } from "@quantx/core";
import { writeSafetensors } from "@quantx/safetensors";
import { formatBytes, formatDuration, ProgressBar, progressLine } from "./progress.ts";
import type { Io } from "./io.ts";
import { main } from "./mod.ts";

const EVENT = {
  phase: "quantize",
  tensorIndex: 4,
  tensorCount: 12,
  tensorName: "blk.3.ffn_down.weight",
  bytesDone: 250e6,
  bytesTotal: 1e9,
};

Deno.test("formatBytes and formatDuration", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1500), "1.50 kB");
  assert.equal(formatBytes(25_400_000), "25.4 MB");
  assert.equal(formatBytes(4.2e9), "4.20 GB");
  assert.equal(formatDuration(5), "0:05");
  assert.equal(formatDuration(125), "2:05");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(NaN), "--:--");
});

Deno.test("progressLine shows tensor i/n, bytes, MB/s, ETA and fits the width", () => {
  const line = progressLine(EVENT, 2.5, 100);
  assert.equal(
    line,
    "[ 5/12]  25% 250 MB/1.00 GB 100 MB/s ETA 0:08 blk.3.ffn_down.weight",
  );
  const narrow = progressLine(EVENT, 2.5, 60);
  assert.equal(narrow.length, 60);
  assert.ok(narrow.endsWith(" …n_down.weight"), narrow);
});

Deno.test("ProgressBar draws on one redrawn line, only when enabled", () => {
  const out: string[] = [];
  const dec = new TextDecoder();
  const bar = new ProgressBar(true, (b) => out.push(dec.decode(b)), () => 80);
  bar.update({ ...EVENT, bytesDone: EVENT.bytesTotal, tensorIndex: 11 });
  bar.clear();
  assert.equal(out.length, 2);
  assert.ok(out[0].startsWith("\r\x1b[2K[12/12] 100% "), JSON.stringify(out[0]));
  assert.equal(out[1], "\r\x1b[2K");
  const off: string[] = [];
  const quiet = new ProgressBar(false, (b) => off.push(dec.decode(b)));
  quiet.update(EVENT);
  quiet.clear();
  assert.deepEqual(off, []);
});

/** An in-process Io that records stdout and stderr. */
function recordingIo(tty: boolean) {
  const out: string[] = [], err: string[] = [];
  const dec = new TextDecoder();
  let bar: ProgressBar | undefined;
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => {
      bar?.clear();
      err.push(t);
    },
    stderrIsTerminal: tty,
    signal: new AbortController().signal,
    progress(quiet) {
      bar = new ProgressBar(tty && !quiet, (b) => err.push(dec.decode(b)), () => 100);
      return bar;
    },
    clearProgress: () => bar?.clear(),
    debug: false,
  };
  return { io, out, err };
}

Deno.test("quantize draws progress on a terminal, nothing otherwise or with --quiet", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-progress-" });
  try {
    const input = join(dir, "m.safetensors");
    const values = new Float32Array(64 * 256).map((_, i) => Math.sin(i));
    await writeSafetensors(await createFileSink(input), [
      { name: "w", dtype: "F32", shape: [64, 256], data: new Uint8Array(values.buffer) },
    ]);
    const args = ["quantize", input, "--type", "q8_0", "--no-card", "--force"];

    const tty = recordingIo(true);
    assert.equal(await main([...args, "-o", join(dir, "a.gguf")], tty.io), 0);
    const drawn = tty.err.join("");
    assert.ok(drawn.includes("\r\x1b[2K[1/1] 100% "), JSON.stringify(drawn));
    assert.match(tty.out.join(""), /^wrote .*a\.gguf/);

    const pipe = recordingIo(false);
    assert.equal(await main([...args, "-o", join(dir, "b.gguf")], pipe.io), 0);
    assert.deepEqual(pipe.err, []);

    const quiet = recordingIo(true);
    assert.equal(await main([...args, "-o", join(dir, "c.gguf"), "--quiet"], quiet.io), 0);
    assert.deepEqual(quiet.err, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
