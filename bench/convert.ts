/**
 * One-pass Hugging Face -> q4_k_m GGUF: builds a synthetic Llama checkpoint (BF16 safetensors,
 * TinyLlama-like layers, the golden Llama 2 tokenizer), converts it with `quantizeModel` on 1 and
 * on all threads, then times libggml's `ggml_quantize_chunk` on the same tensors with the same
 * per-tensor types, in the same process. Prints seconds and the ratio.
 *
 *   deno task setup && deno run -A bench/convert.ts [--layers 4] [--type q4_k_m] [--keep]
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { createFileSink } from "@quantx/core";
import { planQuantize, quantizeModel } from "@quantx/pipeline";
import { openCheckpoint, SafetensorsWriter } from "@quantx/safetensors";
import { ggmlQuantize } from "../tests/support/libggml.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    layers: { type: "string", default: "4" },
    type: { type: "string", default: "q4_k_m" },
    dir: { type: "string", default: join(new URL("..", import.meta.url).pathname, ".cache/bench") },
    keep: { type: "boolean", default: false },
  },
});
const GOLDEN = new URL("../../shared/golden/llama-tiny/hf/", import.meta.url).pathname;
const layers = Number(flags.layers);
const hidden = 2048, ffn = 5632, heads = 32, kvHeads = 4, vocab = 32000;
const kvDim = (hidden / heads) * kvHeads;
const folder = join(flags.dir!, `llama-${layers}l-bf16`);

async function build(): Promise<void> {
  if (existsSync(join(folder, "model.safetensors"))) return;
  await Deno.mkdir(folder, { recursive: true });
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: hidden,
    intermediate_size: ffn,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    vocab_size: vocab,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
  };
  await Deno.writeTextFile(join(folder, "config.json"), JSON.stringify(config, null, 2));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(join(GOLDEN, f), join(folder, f));
  }
  const tensors: { name: string; dtype: string; shape: number[] }[] = [
    { name: "model.embed_tokens.weight", dtype: "BF16", shape: [vocab, hidden] },
  ];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    tensors.push(
      { name: `${p}.input_layernorm.weight`, dtype: "BF16", shape: [hidden] },
      { name: `${p}.self_attn.q_proj.weight`, dtype: "BF16", shape: [hidden, hidden] },
      { name: `${p}.self_attn.k_proj.weight`, dtype: "BF16", shape: [kvDim, hidden] },
      { name: `${p}.self_attn.v_proj.weight`, dtype: "BF16", shape: [kvDim, hidden] },
      { name: `${p}.self_attn.o_proj.weight`, dtype: "BF16", shape: [hidden, hidden] },
      { name: `${p}.post_attention_layernorm.weight`, dtype: "BF16", shape: [hidden] },
      { name: `${p}.mlp.gate_proj.weight`, dtype: "BF16", shape: [ffn, hidden] },
      { name: `${p}.mlp.up_proj.weight`, dtype: "BF16", shape: [ffn, hidden] },
      { name: `${p}.mlp.down_proj.weight`, dtype: "BF16", shape: [hidden, ffn] },
    );
  }
  tensors.push(
    { name: "model.norm.weight", dtype: "BF16", shape: [hidden] },
    { name: "lm_head.weight", dtype: "BF16", shape: [vocab, hidden] },
  );
  const writer = new SafetensorsWriter(
    await createFileSink(join(folder, "model.safetensors"), { overwrite: true }),
    tensors,
    { format: "pt" },
  );
  await writer.writeHeader();
  let s = 777;
  const buf = new Uint16Array(1 << 20);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (const t of tensors) {
    let left = t.shape.reduce((a, b) => a * b, 1);
    const norm = t.shape.length === 1;
    while (left > 0) {
      const n = Math.min(left, buf.length);
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        f[0] = norm
          ? 1 + ((s & 0xffff) - 32768) * 3e-6
          : ((s & 0xffff) + (s >>> 16) - 65535) * 6.1e-7;
        buf[i] = u[0] >>> 16;
      }
      await writer.write(new Uint8Array(buf.buffer, 0, n * 2));
      left -= n;
    }
  }
  await writer.finish();
}

await build();
const input = folder;
const size = (await Deno.stat(join(folder, "model.safetensors"))).size;
const out = join(flags.dir!, `llama-${layers}l-${flags.type}.gguf`);
const times: Record<string, number> = {};
for (const threads of [1, cpus().length]) {
  const t0 = performance.now();
  await quantizeModel(input, out, { type: flags.type, threads, force: true, card: false });
  times[`quantx, ${threads} thread${threads > 1 ? "s" : ""}`] = (performance.now() - t0) / 1000;
}

// libggml on the same tensors, same per-tensor types (from the plan), single thread, quantize
// calls only.
const plan = await planQuantize(input, out, { type: flags.type });
const ckpt = await openCheckpoint(input);
let ggml = 0;
const counts: Record<string, number> = {};
for (const e of plan.entries) {
  counts[e.type] = (counts[e.type] ?? 0) + 1;
  if (e.type === "f32") continue;
  const values = await ckpt.readF32(e.source, 0, e.elements);
  const t0 = performance.now();
  ggmlQuantize(e.type, values, e.elements / e.shape[0]);
  ggml += (performance.now() - t0) / 1000;
}
await ckpt.close();
times["libggml ggml_quantize_chunk, 1 thread (quantize only)"] = ggml;

console.log(
  `input: ${folder} (${layers} layers, ${(size / 1e6).toFixed(0)} MB BF16), ${flags.type}: ${
    Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")
  }`,
);
console.log("| run | seconds | x libggml |\n| --- | ---: | ---: |");
for (const [k, v] of Object.entries(times)) {
  console.log(`| ${k} | ${v.toFixed(1)} | ${(ggml / v).toFixed(2)}x |`);
}
await Deno.remove(out).catch(() => {});
if (!flags.keep) await Deno.remove(folder, { recursive: true });
