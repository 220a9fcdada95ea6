/**
 * End-to-end tests of the `quantx` command, run as a user would (spawned process): every command,
 * every bad input, exit codes, stdout/stderr, and nothing left behind on failure.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { openGguf } from "@quantx/gguf";
import { openSafetensors } from "@quantx/safetensors";
import { dequantize, type QuantType } from "@quantx/kernels";
import { ggmlQuantize } from "./support/libggml.ts";
import { gaussian } from "./support/random.ts";
import { listDir, quantx, writeTestSafetensors } from "./support/cli.ts";

const TENSORS = [
  { name: "tok_embeddings.weight", shape: [64, 256], values: gaussian(64 * 256, 1, 0.02) },
  { name: "layers.0.attention.wq.weight", shape: [256, 256], values: gaussian(256 * 256, 2, 0.05) },
  {
    name: "layers.0.feed_forward.w1.weight",
    shape: [96, 512],
    values: gaussian(96 * 512, 3, 0.03),
  },
  { name: "layers.0.attention_norm.weight", shape: [256], values: gaussian(256, 4, 0.1, 1) },
  { name: "odd.weight", shape: [8, 100], values: gaussian(800, 5, 0.1) },
];

async function fixture(): Promise<{ dir: string; input: string }> {
  const dir = await Deno.makeTempDir({ prefix: "quantx-cli-" });
  const input = join(dir, "model.safetensors");
  await writeTestSafetensors(input, TENSORS);
  return { dir, input };
}

Deno.test("quantize: every eligible tensor byte-identical to libggml, others f32", async (t) => {
  const { dir, input } = await fixture();
  try {
    const types = ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"]
      .concat(["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs"]);
    for (const type of types) {
      await t.step(type, async () => {
        const out = join(dir, `m-${type}.gguf`);
        const r = await quantx(["quantize", input, "-o", out, "--type", type, "--no-card"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /wrote .*bits\/weight/);
        const f = await openGguf(out);
        try {
          for (const src of TENSORS) {
            const info = f.tensors.find((x) => x.name === src.name)!;
            assert.deepEqual(info.shape, [...src.shape].reverse(), src.name);
            const cols = src.shape[src.shape.length - 1];
            const blockOk = type.endsWith("_k") || type === "iq4_xs"
              ? cols % 256 === 0
              : cols % 32 === 0;
            const expectType =
              src.shape.length >= 2 && (blockOk || type.startsWith("f") || type === "bf16")
                ? type
                : "f32";
            assert.equal(info.typeName, expectType, src.name);
            const bytes = await f.read(info);
            const rows = src.values.length / cols;
            const expected = expectType === "f32"
              ? new Uint8Array(src.values.buffer)
              : ggmlQuantize(expectType, src.values, rows);
            assert.deepEqual(bytes, expected, `${src.name} bytes`);
          }
        } finally {
          await f.close();
        }
        // a real client parses it too
        const parsed = await gguf(out, { allowLocalFile: true });
        assert.deepEqual(
          parsed.tensorInfos.map((x) => x.name).sort(),
          TENSORS.map((x) => x.name).sort(),
        );
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quantize: output identical for any thread count", async () => {
  const { dir, input } = await fixture();
  try {
    const outs: Uint8Array[] = [];
    for (const threads of ["1", "2", "3"]) {
      const out = join(dir, `t${threads}.gguf`);
      const r = await quantx([
        "quantize",
        input,
        "-o",
        out,
        "--type",
        "q4_k",
        "--threads",
        threads,
        "--no-card",
      ]);
      assert.equal(r.code, 0, r.stderr);
      outs.push(await Deno.readFile(out));
    }
    assert.deepEqual(outs[1], outs[0]);
    assert.deepEqual(outs[2], outs[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quantize --dry-run prints the plan and writes nothing", async () => {
  const { dir, input } = await fixture();
  try {
    const out = join(dir, "plan.gguf");
    const r = await quantx(["quantize", input, "-o", out, "--type", "q8_0", "--dry-run"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /layers\.0\.attention\.wq\.weight\s+\[256, 256\]\s+q8_0\s+69632/);
    assert.match(r.stdout, /total: 5 tensors/);
    assert.deepEqual(await listDir(dir), ["model.safetensors"]);
    const j = await quantx(["quantize", input, "-o", out, "--type", "q8_0", "--dry-run", "--json"]);
    const plan = JSON.parse(j.stdout);
    assert.equal(plan.entries.length, 5);
    assert.equal(
      plan.totalBytes,
      plan.entries.reduce((s: number, e: { bytes: number }) => s + e.bytes, 0),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quantize: model card beside the output, never overwritten", async () => {
  const { dir, input } = await fixture();
  try {
    const out = join(dir, "m.gguf");
    const r = await quantx(["quantize", input, "-o", out, "--type", "q4_0", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.card, join(dir, "README.md"));
    const card = await Deno.readTextFile(join(dir, "README.md"));
    assert.match(card, /^---\ntags: \[gguf, quantx, quantized\]\n/);
    assert.match(card, /\| q4_0 \| 3 \|/);
    assert.match(card, /\| f32 \| 2 \|/);
    assert.match(card, /SNR/);
    await Deno.writeTextFile(join(dir, "README.md"), "mine");
    const again = await quantx(["quantize", input, "-o", out, "--type", "q8_0", "--force"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await Deno.readTextFile(join(dir, "README.md")), "mine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad inputs: one-line message, right exit code, nothing left behind", async (t) => {
  const { dir, input } = await fixture();
  try {
    const out = join(dir, "out.gguf");
    const cases: {
      name: string;
      args: string[];
      code: number;
      message: RegExp;
      setup?: () => Promise<void>;
    }[] = [
      {
        name: "missing file",
        args: ["quantize", join(dir, "nope.safetensors"), "-o", out],
        code: 1,
        message: /nope\.safetensors.*no such file/,
      },
      {
        name: "unknown format",
        args: ["quantize", join(dir, "random.bin"), "-o", out],
        code: 1,
        message: /random\.bin.*unknown format/,
        setup: () => Deno.writeFile(join(dir, "random.bin"), new Uint8Array(64).fill(7)),
      },
      {
        name: "corrupt header",
        args: ["quantize", join(dir, "corrupt.safetensors"), "-o", out],
        code: 1,
        message: /corrupt\.safetensors: at byte 0/,
        setup: async () => {
          const bytes = await Deno.readFile(input);
          bytes.set([0xff, 0xff, 0xff, 0x00], 0); // header length past the end of the file
          await Deno.writeFile(join(dir, "corrupt.safetensors"), bytes);
        },
      },
      {
        name: "unknown --type",
        args: ["quantize", input, "-o", out, "--type", "q9_9"],
        code: 2,
        message: /q9_9/,
      },
      {
        name: "unknown flag",
        args: ["quantize", input, "-o", out, "--frobnicate"],
        code: 2,
        message: /frobnicate/,
      },
      { name: "missing -o", args: ["quantize", input], code: 2, message: /-o/ },
      { name: "unknown command", args: ["frobnicate"], code: 2, message: /unknown command/ },
      {
        name: "a tensor that cannot take the type",
        args: ["quantize", input, "-o", out, "--tensor-type", "odd\\.weight=q4_0"],
        code: 1,
        message: /odd\.weight.*100.*q4_0/,
      },
      {
        name: "output folder does not exist",
        args: ["quantize", input, "-o", join(dir, "no/such/dir/out.gguf")],
        code: 1,
        message: /output folder .* does not exist/,
      },
      {
        name: "output is the input",
        args: ["quantize", input, "-o", input, "--force"],
        code: 1,
        message: /is the input/,
      },
    ];
    for (const c of cases) {
      await t.step(c.name, async () => {
        await c.setup?.();
        const before = await listDir(dir);
        const r = await quantx(c.args);
        assert.equal(r.code, c.code, `${c.name}: ${r.stderr}`);
        assert.match(r.stderr, c.message);
        assert.equal(r.stderr.trim().split("\n")[0].length > 0, true);
        assert.ok(!/at .*\.ts:\d+/.test(r.stderr), `no stack trace: ${r.stderr}`);
        assert.deepEqual(await listDir(dir), before, "no file left behind");
      });
    }
    await t.step("disk full: a real ENOSPC (the partial file is a link to /dev/full)", async () => {
      await Deno.symlink("/dev/full", out + ".partial");
      const before = await listDir(dir);
      const r = await quantx(["quantize", input, "-o", out, "--type", "q8_0", "--no-card"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /cannot write .*out\.gguf: no space left on device/);
      assert.equal(r.stderr.split("\n").filter((l) => /error/.test(l)).length, 1, r.stderr);
      assert.deepEqual(await listDir(dir), before.filter((n) => n !== "out.gguf.partial"));
    });
    await t.step("existing output needs --force", async () => {
      await Deno.writeTextFile(out, "keep me");
      const r = await quantx(["quantize", input, "-o", out, "--type", "q8_0"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /exists.*--force/);
      assert.equal(await Deno.readTextFile(out), "keep me");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (
  // one thread: the main thread writes; two: the workers write into the partial file themselves
  const [signal, code, word, threads] of [
    ["SIGINT", 130, "interrupted", "2"],
    ["SIGTERM", 143, "terminated", "1"],
  ] as const
) {
  Deno.test(`${signal} during quantize (${threads} thread(s)) exits ${code}, removes the partial file`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "quantx-signal-" });
    try {
      const input = join(dir, "big.safetensors");
      const big = Array.from({ length: 16 }, (_, i) => ({
        name: `w${i}.weight`,
        shape: [1024, 1024],
        values: gaussian(1024 * 1024, 100 + i, 0.02),
      }));
      await writeTestSafetensors(input, big);
      const out = join(dir, "out.gguf");
      const { CLI } = await import("./support/cli.ts");
      // q2_k is the slowest type: the job lasts seconds, well past the signal.
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          CLI,
          "quantize",
          input,
          "-o",
          out,
          "--type",
          "q2_k",
          "--threads",
          threads,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait until the partial file exists, then signal.
      for (let i = 0; i < 600; i++) {
        if ((await listDir(dir)).includes("out.gguf.partial")) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill(signal);
      const status = await child.output();
      assert.equal(status.code, code, new TextDecoder().decode(status.stderr));
      assert.match(new TextDecoder().decode(status.stderr), new RegExp(word));
      assert.deepEqual(await listDir(dir), ["big.safetensors"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("inspect, verify, diff and dequantize", async (t) => {
  const { dir, input } = await fixture();
  try {
    const out = join(dir, "m.gguf");
    assert.equal(
      (await quantx(["quantize", input, "-o", out, "--type", "q8_0", "--no-card"])).code,
      0,
    );

    await t.step("inspect --json", async () => {
      const r = await quantx(["inspect", out, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const rep = JSON.parse(r.stdout);
      assert.equal(rep.format, "gguf");
      assert.equal(rep.tensors.length, 5);
      assert.equal(rep.parameters, TENSORS.reduce((s, x) => s + x.values.length, 0));
      assert.deepEqual(rep.typeCounts, { q8_0: 3, f32: 2 });
    });
    await t.step("inspect (text)", async () => {
      const r = await quantx(["inspect", input]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /format:\s+safetensors/);
      assert.match(r.stdout, /layers\.0\.attention\.wq\.weight\s+\[256, 256\]\s+f32/);
    });
    await t.step("verify ok", async () => {
      const r = await quantx(["verify", out]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok: /m);
    });
    await t.step("verify finds NaN", async () => {
      const nanIn = join(dir, "nan.safetensors");
      const v = new Float32Array(64 * 32);
      v[5] = NaN;
      v[9] = Infinity;
      await writeTestSafetensors(nanIn, [{ name: "x.weight", shape: [64, 32], values: v }]);
      const r = await quantx(["verify", nanIn, "--json"]);
      assert.equal(r.code, 1);
      const rep = JSON.parse(r.stdout);
      assert.equal(rep.ok, false);
      assert.deepEqual(rep.problems, ["x.weight: 1 NaN value", "x.weight: 1 infinite value"]);
    });
    await t.step("diff", async () => {
      const r = await quantx(["diff", input, out, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const rep = JSON.parse(r.stdout);
      assert.equal(rep.tensors.length, 5);
      const norm = rep.tensors.find((x: { name: string }) =>
        x.name === "layers.0.attention_norm.weight"
      );
      assert.equal(norm.rmse, 0);
      const wq = rep.tensors.find((x: { name: string }) =>
        x.name === "layers.0.attention.wq.weight"
      );
      assert.ok(wq.rmse > 0 && wq.cosine > 0.999 && wq.snrDb > 30, JSON.stringify(wq));
      const text = await quantx(["diff", input, out]);
      assert.match(text.stdout, /total: 5 tensors/);
    });
    await t.step("dequantize to f32 equals the kernels' decode", async () => {
      const deq = join(dir, "deq.safetensors");
      const r = await quantx(["dequantize", out, "-o", deq]);
      assert.equal(r.code, 0, r.stderr);
      const f = await openSafetensors(deq);
      try {
        const src = TENSORS[1];
        const got = await f.readF32(src.name);
        const want = dequantize(
          "q8_0" as QuantType,
          ggmlQuantize("q8_0", src.values, 256),
          src.values.length,
        );
        assert.deepEqual(got, want);
        assert.deepEqual(f.tensor(src.name)?.shape, src.shape);
      } finally {
        await f.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--help and usage", async () => {
  const r = await quantx(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /quantx quantize <input> -o <output>/);
  const none = await quantx([]);
  assert.equal(none.code, 2);
});

Deno.test("f16 and bf16 inputs: byte-identical to libggml on 1 and 2 threads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-half-" });
  try {
    for (const dtype of ["F16", "BF16"] as const) {
      const values = gaussian(96 * 512, 77, 0.05);
      const input = join(dir, `${dtype}.safetensors`);
      await writeTestSafetensors(input, [{ name: "w.weight", shape: [96, 512], values, dtype }]);
      // the values as stored, widened back to float32
      const st = await openSafetensors(input);
      const widened = await st.readF32("w.weight");
      await st.close();
      const want = ggmlQuantize("q4_k", widened, 96);
      for (const threads of ["1", "2"]) {
        const out = join(dir, `${dtype}-${threads}.gguf`);
        const r = await quantx([
          "quantize",
          input,
          "-o",
          out,
          "--type",
          "q4_k",
          "--threads",
          threads,
          "--no-card",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const f = await openGguf(out);
        try {
          assert.deepEqual(await f.read(f.tensors[0]), want, `${dtype}, ${threads} threads`);
        } finally {
          await f.close();
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tensors of several chunks: workers read and write the file themselves, libggml's bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-chunks-" });
  try {
    // [1100, 512] = 563200 values: a full chunk of 1024 rows and one of 76; two of each dtype, so
    // read buffers are reused across tensors on the single-thread path
    const shape = [1100, 512];
    const tensors = (["F32", "F16", "BF16"] as const).flatMap((dtype, k) => [
      { name: `${dtype}.a.weight`, shape, values: gaussian(1100 * 512, 30 + k, 0.05), dtype },
      { name: `${dtype}.b.weight`, shape, values: gaussian(1100 * 512, 40 + k, 0.02), dtype },
    ]);
    const input = join(dir, "model.safetensors");
    await writeTestSafetensors(input, [
      ...tensors,
      { name: "norm.weight", shape: [512], values: gaussian(512, 9, 0.1, 1) },
    ]);
    const st = await openSafetensors(input);
    const want = new Map<string, Uint8Array>();
    for (const t of tensors) want.set(t.name, ggmlQuantize("q8_0", await st.readF32(t.name), 1100));
    await st.close();
    const outs: Uint8Array[] = [];
    const summaries: string[] = [];
    for (const threads of ["1", "2", "3"]) {
      const out = join(dir, `t${threads}.gguf`);
      const args = ["quantize", input, "-o", out, "--type", "q8_0", "--no-card"];
      const r = await quantx([...args, "--threads", threads]);
      assert.equal(r.code, 0, r.stderr);
      summaries.push(r.stdout.split("\n").filter((l) => l.startsWith("error:")).join());
      const f = await openGguf(out);
      try {
        for (const t of tensors) {
          const info = f.tensors.find((x) => x.name === t.name)!;
          assert.deepEqual(await f.read(info), want.get(t.name), `${t.name}, ${threads} threads`);
        }
      } finally {
        await f.close();
      }
      outs.push(await Deno.readFile(out));
    }
    assert.deepEqual(outs[1], outs[0]);
    assert.deepEqual(outs[2], outs[0]);
    assert.match(summaries[0], /rmse/);
    assert.deepEqual(summaries, [summaries[0], summaries[0], summaries[0]], "same measured error");

    // a GGUF input's f32/f16 tensors are read by the workers too
    const f16 = join(dir, "f16.gguf");
    assert.equal(
      (await quantx(["quantize", input, "-o", f16, "--type", "f16", "--no-card"])).code,
      0,
    );
    const requant: Uint8Array[] = [];
    for (const threads of ["1", "2"]) {
      const out = join(dir, `re${threads}.gguf`);
      const r = await quantx(["quantize", f16, "-o", out, "--type", "q8_0", "--threads", threads]);
      assert.equal(r.code, 0, r.stderr);
      requant.push(await Deno.readFile(out));
    }
    assert.deepEqual(requant[1], requant[0]);
    const g = await openGguf(join(dir, "re2.gguf"));
    const src = await openGguf(f16);
    try {
      for (const t of tensors) {
        const widened = dequantize("f16", await src.read(src.tensor(t.name)!), 1100 * 512);
        assert.deepEqual(await g.read(g.tensor(t.name)!), ggmlQuantize("q8_0", widened, 1100));
      }
    } finally {
      await g.close();
      await src.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
