/**
 * `quantx quantize --backend webgpu` writes the same file as `--backend cpu` (on these machines
 * the adapter is Deno's software fallback, llvmpipe), and `--backend auto` says what it picked.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gaussian } from "./support/random.ts";
import { quantx, writeTestSafetensors } from "./support/cli.ts";

const TENSORS = [
  { name: "a.weight", shape: [96, 256], values: gaussian(96 * 256, 21, 0.05) },
  { name: "b.weight", shape: [64, 512], values: gaussian(64 * 512, 22, 2) },
  { name: "norm.weight", shape: [256], values: gaussian(256, 23, 0.1, 1) },
];

Deno.test("quantize --backend webgpu writes files identical to --backend cpu", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-webgpu-" });
  try {
    const input = join(dir, "m.safetensors");
    await writeTestSafetensors(input, TENSORS);
    for (const type of ["q4_0", "q8_0", "q4_k"]) {
      await t.step(type, async () => {
        const files: Uint8Array[] = [];
        for (const backend of ["cpu", "webgpu"]) {
          const out = join(dir, `${type}-${backend}.gguf`);
          const r = await quantx([
            "quantize",
            input,
            "-o",
            out,
            "--type",
            type,
            "--backend",
            backend,
            "--no-card",
          ]);
          assert.equal(r.code, 0, r.stderr);
          if (backend === "webgpu") assert.match(r.stderr, /backend: webgpu \(/);
          files.push(await Deno.readFile(out));
        }
        assert.ok(files[0].length > 0);
        assert.deepEqual(files[1], files[0]);
      });
    }
    await t.step("--backend auto does not pick a software adapter", async () => {
      const r = await quantx([
        "quantize",
        input,
        "-o",
        join(dir, "auto.gguf"),
        "--type",
        "q8_0",
        "--backend",
        "auto",
        "--no-card",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /software fallback; using the CPU|WebGPU not available/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
