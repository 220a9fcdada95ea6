/**
 * QNAT through the CLI: `quantize --to qnat` writes a whole model into one file (Linear weights
 * NF4, the rest float32), and `inspect`, `verify`, `diff` and `dequantize` read it back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { dequantizeNf4, quantizeNf4 } from "@quantx/kernels";
import { openQnat } from "@quantx/qnat";
import { openSafetensors } from "@quantx/safetensors";
import { gaussian } from "./support/random.ts";
import { listDir, quantx, writeTestSafetensors } from "./support/cli.ts";

const TENSORS = [
  { name: "model.embed_tokens.weight", shape: [32, 128], values: gaussian(32 * 128, 11, 0.02) },
  {
    name: "model.layers.0.self_attn.q_proj.weight",
    shape: [128, 128],
    values: gaussian(128 * 128, 12, 0.05),
  },
  { name: "model.layers.0.mlp.up_proj.weight", shape: [96, 128], values: gaussian(96 * 128, 13) },
  {
    name: "model.layers.0.input_layernorm.weight",
    shape: [128],
    values: gaussian(128, 14, 0.1, 1),
  },
  { name: "lm_head.weight", shape: [32, 128], values: gaussian(32 * 128, 15, 0.02) },
];
const LINEAR = new Set([TENSORS[1].name, TENSORS[2].name]);

Deno.test("quantize --to qnat: NF4 Linear weights, f32 rest; dequantize reads it back", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-qnat-" });
  try {
    const input = join(dir, "model.safetensors");
    await writeTestSafetensors(input, TENSORS);
    for (const doubleQuant of [false, true]) {
      await t.step(doubleQuant ? "double-quantized scales" : "f32 scales", async () => {
        const out = join(dir, doubleQuant ? "m-dq.qnat" : "m.qnat");
        const args = ["quantize", input, "-o", out, "--no-card", "--json"];
        const r = await quantx(doubleQuant ? [...args, "--double-quant"] : args);
        assert.equal(r.code, 0, r.stderr);
        const result = JSON.parse(r.stdout);
        assert.deepEqual(result.typeCounts, { nf4: 2, f32: 3 });
        // the error is measured over the NF4 weights only
        assert.equal(result.error.count, 128 * 128 + 96 * 128);
        assert.ok(
          result.error.cosine > 0.99 && result.error.cosine < 1,
          JSON.stringify(result.error),
        );

        const file = await openQnat(out);
        try {
          assert.equal(file.header.flags, doubleQuant ? 2 : 0);
          for (const src of TENSORS) {
            const t = file.tensor(src.name)!;
            assert.deepEqual(t.shape, src.shape);
            assert.equal(t.blockSize, LINEAR.has(src.name) ? 64 : 0);
            const got = await file.readF32(src.name);
            if (!LINEAR.has(src.name)) assert.deepEqual(got, src.values);
            else if (!doubleQuant) {
              const q = quantizeNf4(src.values, 64);
              assert.deepEqual(got, dequantizeNf4(q.codes, q.absmax, src.values.length, 64));
            }
          }
        } finally {
          await file.close();
        }

        const deq = join(dir, doubleQuant ? "dq.safetensors" : "d.safetensors");
        const d = await quantx(["dequantize", out, "-o", deq, "--dtype", "f32"]);
        assert.equal(d.code, 0, d.stderr);
        const st = await openSafetensors(deq);
        const qn = await openQnat(out);
        try {
          for (const src of TENSORS) {
            assert.deepEqual(await st.readF32(src.name), await qn.readF32(src.name));
          }
        } finally {
          await st.close();
          await qn.close();
        }

        const v = await quantx(["verify", out]);
        assert.equal(v.code, 0, v.stdout + v.stderr);
        const i = await quantx(["inspect", out, "--json"]);
        assert.equal(i.code, 0, i.stderr);
        assert.equal(JSON.parse(i.stdout).format, "qnat");
        const diff = await quantx(["diff", input, out, "--json"]);
        assert.equal(diff.code, 0, diff.stderr);
        const q = JSON.parse(diff.stdout).tensors.find((x: { name: string }) =>
          x.name === TENSORS[1].name
        );
        assert.ok(q.cosine > 0.99 && q.cosine < 1, JSON.stringify(q));
      });
    }
    await t.step("--type other than nf4 is bad usage", async () => {
      const r = await quantx(["quantize", input, "-o", join(dir, "x.qnat"), "--type", "q4_0"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /unknown --type "q4_0" for qnat/);
      assert.ok(!(await listDir(dir)).includes("x.qnat"));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
