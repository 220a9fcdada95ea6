/**
 * Hugging Face -> GGUF through the CLI on ../shared/golden: every tensor of `quantx quantize`'s
 * output has the name, shape, type and bytes of llama.cpp's own convert + llama-quantize output.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { type GgufFile, openGguf, verifyGguf } from "@quantx/gguf";
import { quantx } from "./support/cli.ts";

const GOLDEN = new URL("../../shared/golden/llama-tiny/", import.meta.url).pathname;

async function tensorMap(file: GgufFile) {
  const out = new Map<string, { shape: number[]; type: string; bytes: Uint8Array }>();
  for (const t of file.tensors) {
    out.set(t.name, { shape: t.shape, type: t.typeName, bytes: await file.read(t) });
  }
  return out;
}

Deno.test("quantize <hf folder> matches llama.cpp's golden GGUF files tensor by tensor", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-golden-" });
  try {
    for (const type of ["q4_0", "q8_0", "q4_k_m"]) {
      await t.step(type, async () => {
        const out = join(dir, `${type}.gguf`);
        const r = await quantx([
          "quantize",
          join(GOLDEN, "hf"),
          "-o",
          out,
          "--type",
          type,
          "--no-card",
          "--threads",
          "2",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const ours = await openGguf(out);
        const golden = await openGguf(join(GOLDEN, "gguf", `${type}.gguf`));
        try {
          const a = await tensorMap(ours);
          const b = await tensorMap(golden);
          assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
          for (const [name, want] of b) {
            const got = a.get(name)!;
            assert.deepEqual(got.shape, want.shape, name);
            assert.equal(got.type, want.type, name);
            assert.ok(Buffer.compare(got.bytes, want.bytes) === 0, `${name}: bytes differ`);
          }
          assert.equal(ours.metadata.get("general.architecture")?.value, "llama");
          assert.equal(ours.metadata.get("tokenizer.ggml.model")?.value, "llama");
        } finally {
          await ours.close();
          await golden.close();
        }
        assert.equal((await verifyGguf(out)).ok, true);
        const parsed = await gguf(out, { allowLocalFile: true });
        assert.equal(parsed.tensorInfos.length, ours.tensors.length);
        assert.equal(parsed.metadata["general.architecture"], "llama");
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unsupported architecture and file types without one are clear errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-arch-" });
  try {
    const hf = join(dir, "hf");
    await Deno.mkdir(hf);
    await Deno.copyFile(join(GOLDEN, "hf", "model.safetensors"), join(hf, "model.safetensors"));
    await Deno.writeTextFile(
      join(hf, "config.json"),
      JSON.stringify({ architectures: ["GPT2LMHeadModel"], model_type: "gpt2" }),
    );
    const r = await quantx(["quantize", hf, "-o", join(dir, "x.gguf"), "--type", "q8_0"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /GPT2LMHeadModel.*supported: LlamaForCausalLM, MistralForCausalLM/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["hf"]);

    const plain = join(dir, "plain.safetensors");
    await Deno.copyFile(join(GOLDEN, "hf", "model.safetensors"), plain);
    const k = await quantx(["quantize", plain, "-o", join(dir, "y.gguf"), "--type", "q4_k_m"]);
    assert.equal(k.code, 1, k.stderr);
    assert.match(k.stderr, /needs a known architecture/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("llama-quantize overrides and GGUF requantization through the CLI", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-overrides-" });
  const hf = join(GOLDEN, "hf");
  const types = async (path: string) => {
    const f = await openGguf(path);
    try {
      return Object.fromEntries(f.tensors.map((x) => [x.name, x.typeName]));
    } finally {
      await f.close();
    }
  };
  try {
    await t.step("--pure gives every eligible tensor the base type", async () => {
      const out = join(dir, "pure.gguf");
      const r = await quantx([
        "quantize",
        hf,
        "-o",
        out,
        "--type",
        "q4_k_m",
        "--pure",
        "--no-card",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const got = await types(out);
      for (const [name, type] of Object.entries(got)) {
        assert.equal(type, name.endsWith("norm.weight") ? "f32" : "q4_k", name);
      }
    });
    await t.step("--tensor-type and --token-embedding-type", async () => {
      const out = join(dir, "over.gguf");
      const r = await quantx([
        "quantize",
        hf,
        "-o",
        out,
        "--type",
        "q4_0",
        "--tensor-type",
        "ffn_down=q8_0",
        "--token-embedding-type",
        "q6_k",
        "--no-card",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const got = await types(out);
      assert.equal(got["blk.0.ffn_down.weight"], "q8_0");
      assert.equal(got["blk.1.ffn_down.weight"], "q8_0");
      assert.equal(got["token_embd.weight"], "q6_k");
      assert.equal(got["blk.0.ffn_up.weight"], "q4_0");
    });
    await t.step("a GGUF input is requantized under the same policy", async () => {
      const out = join(dir, "requant.gguf");
      const src = join(GOLDEN, "gguf", "q8_0.gguf");
      const r = await quantx(["quantize", src, "-o", out, "--type", "q4_k_m", "--no-card"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /already quantized \(gguf\)/);
      const got = await types(out);
      const golden = await types(join(GOLDEN, "gguf", "q4_k_m.gguf"));
      assert.deepEqual(got, golden);
      assert.equal((await verifyGguf(out)).ok, true);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
