/**
 * bitsandbytes 4-bit checkpoints through the CLI: `quantize --to bnb` writes a folder that
 * transformers loads, and `inspect`, `dequantize`, `verify` and `quantize --to gguf` read real
 * bnb files (the slices of Llama-3.2-1B in ../shared/fixtures) exactly.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createFileSink } from "@quantx/core";
import { dequantizeNf4, quantizeNf4 } from "@quantx/kernels";
import { openSafetensors, type SafetensorsDataEntry, writeSafetensors } from "@quantx/safetensors";
import { gaussian } from "./support/random.ts";
import { listDir, quantx, writeTestSafetensors } from "./support/cli.ts";
import { fixtureEntries, P, slice } from "./support/bnb_slices.ts";

/** A real slice as the tensors transformers saves for one parameter, and its bf16 decode. */
async function realBnbEntries(file: string, type: "nf4" | "fp4") {
  const s = await slice(file);
  return { entries: fixtureEntries(s, type), expected: new Uint8Array(s.expected.buffer) };
}

async function writeEntries(path: string, entries: SafetensorsDataEntry[]) {
  await writeSafetensors(await createFileSink(path, { overwrite: true }), entries, {
    format: "pt",
  });
}

Deno.test("real bitsandbytes slices decode exactly through `quantx dequantize`", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-bnb-" });
  try {
    for (
      const [file, type] of [
        ["llama_1b_nf4.bin", "nf4"],
        ["llama_1b_nf4_double_quant.bin", "nf4"],
        ["llama_1b_fp4.bin", "fp4"],
      ] as const
    ) {
      await t.step(file, async () => {
        const { entries, expected } = await realBnbEntries(file, type);
        const input = join(dir, file.replace(".bin", ".safetensors"));
        await writeEntries(input, entries);

        const info = await quantx(["inspect", input, "--json"]);
        assert.equal(info.code, 0, info.stderr);
        const rep = JSON.parse(info.stdout);
        assert.equal(rep.format, "bnb");
        assert.deepEqual(rep.tensors.map((x: { name: string }) => x.name), [P]);

        const out = join(dir, file.replace(".bin", "-bf16.safetensors"));
        const r = await quantx(["dequantize", input, "-o", out, "--dtype", "bf16"]);
        assert.equal(r.code, 0, r.stderr);
        const st = await openSafetensors(out);
        try {
          assert.deepEqual(st.tensor(P)?.shape, [16, 256]);
          assert.deepEqual(await st.read(P), expected);
        } finally {
          await st.close();
        }
        const v = await quantx(["verify", input]);
        assert.equal(v.code, 0, v.stdout + v.stderr);
      });
    }
    await t.step("quantize --to gguf from a bnb file says it requantizes", async () => {
      const { entries } = await realBnbEntries("llama_1b_nf4.bin", "nf4");
      const input = join(dir, "nf4-again.safetensors");
      await writeEntries(input, entries);
      const r = await quantx(["quantize", input, "-o", join(dir, "x.gguf"), "--type", "q8_0"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /already quantized \(bnb\)/);
    });
    await t.step("a quant_state with an unknown key names the parameter", async () => {
      const { entries } = await realBnbEntries("llama_1b_nf4.bin", "nf4");
      const bad = entries.map((e) =>
        e.name.includes("quant_state")
          ? {
            ...e,
            data: new TextEncoder().encode(
              new TextDecoder().decode(e.data).replace("}", ', "extra": 1}'),
            ),
          }
          : e
      );
      for (const e of bad) if (e.name.includes("quant_state")) e.shape = [e.data.length];
      const input = join(dir, "bad.safetensors");
      await writeEntries(input, bad);
      const before = await listDir(dir);
      const r = await quantx(["dequantize", input, "-o", join(dir, "bad-out.safetensors")]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(P.replaceAll(".", "\\.")));
      assert.match(r.stderr, /extra/);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.deepEqual(await listDir(dir), before);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quantize --to bnb writes a transformers folder with tokenizer files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-bnb-" });
  try {
    const hf = join(dir, "hf");
    await Deno.mkdir(hf);
    const tensors = [
      { name: "model.embed_tokens.weight", shape: [32, 128], values: gaussian(4096, 1, 0.02) },
      {
        name: "model.layers.0.self_attn.q_proj.weight",
        shape: [128, 128],
        values: gaussian(128 * 128, 2, 0.05),
      },
      { name: "model.layers.0.input_layernorm.weight", shape: [128], values: gaussian(128, 3) },
      { name: "lm_head.weight", shape: [32, 128], values: gaussian(4096, 4, 0.02) },
    ].map((x) => ({ ...x, dtype: "BF16" as const }));
    await writeTestSafetensors(join(hf, "model.safetensors"), tensors);
    await Deno.writeTextFile(
      join(hf, "config.json"),
      JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama" }),
    );
    await Deno.writeTextFile(join(hf, "tokenizer.json"), '{"model": {}}');
    await Deno.writeTextFile(join(hf, "generation_config.json"), "{}");

    const out = join(dir, "bnb");
    const r = await quantx(["quantize", hf, "--to", "bnb", "-o", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.deepEqual(result.typeCounts, { nf4: 1, bf16: 3 });
    assert.ok(result.error.cosine > 0.99, JSON.stringify(result.error));
    assert.deepEqual(await listDir(out), [
      "README.md",
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
    ]);
    const config = JSON.parse(await Deno.readTextFile(join(out, "config.json")));
    assert.equal(config.quantization_config.quant_method, "bitsandbytes");
    assert.equal(config.quantization_config.bnb_4bit_quant_type, "nf4");
    assert.equal(config.quantization_config.load_in_4bit, true);

    const st = await openSafetensors(join(out, "model.safetensors"));
    try {
      const q = "model.layers.0.self_attn.q_proj.weight";
      assert.deepEqual(st.tensor(q)?.shape, [128 * 64, 1]);
      assert.equal(
        new TextDecoder().decode(await st.read(`${q}.quant_state.bitsandbytes__nf4`)),
        '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [128, 128]}',
      );
    } finally {
      await st.close();
    }

    const deq = join(dir, "deq.safetensors");
    assert.equal((await quantx(["dequantize", out, "-o", deq])).code, 0);
    const back = await openSafetensors(deq);
    const src = await openSafetensors(join(hf, "model.safetensors"));
    try {
      const q = "model.layers.0.self_attn.q_proj.weight";
      const values = await src.readF32(q);
      const enc = quantizeNf4(values, 64);
      assert.deepEqual(await back.readF32(q), dequantizeNf4(enc.codes, enc.absmax, values.length));
      for (const name of ["model.embed_tokens.weight", "lm_head.weight"]) {
        assert.deepEqual(await back.readF32(name), await src.readF32(name));
      }
    } finally {
      await back.close();
      await src.close();
    }

    const again = await quantx(["quantize", hf, "--to", "bnb", "-o", out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not empty \(use --force/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quantize --to bnb --max-shard-size shards with an index, one parameter per shard", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quantx-bnb-shards-" });
  try {
    const hf = join(dir, "hf");
    await Deno.mkdir(hf);
    const tensors = Array.from({ length: 4 }, (_, i) => ({
      name: `model.layers.${i}.mlp.up_proj.weight`,
      shape: [256, 256],
      values: gaussian(256 * 256, 40 + i, 0.02),
      dtype: "BF16" as const,
    }));
    await writeTestSafetensors(join(hf, "model.safetensors"), tensors);
    await Deno.writeTextFile(
      join(hf, "config.json"),
      JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama" }),
    );
    const out = join(dir, "bnb");
    const r = await quantx([
      "quantize",
      hf,
      "--to",
      "bnb",
      "-o",
      out,
      "--max-shard-size",
      "40kB",
      "--no-card",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const files = await listDir(out);
    assert.ok(files.includes("model.safetensors.index.json"), files.join(" "));
    const index = JSON.parse(await Deno.readTextFile(join(out, "model.safetensors.index.json")));
    for (const t of tensors) {
      const shard = index.weight_map[t.name];
      for (const suffix of [".absmax", ".quant_map", ".quant_state.bitsandbytes__nf4"]) {
        assert.equal(index.weight_map[t.name + suffix], shard, t.name + suffix);
      }
    }
    assert.equal(new Set(Object.values(index.weight_map)).size, 4);
    const back = await quantx(["inspect", out, "--json"]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(JSON.parse(back.stdout).format, "bnb");
    const bad = await quantx(["quantize", hf, "-o", join(dir, "x.gguf"), "--max-shard-size", "1"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-shard-size applies to bnb output only/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
