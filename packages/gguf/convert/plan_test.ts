import assert from "node:assert/strict";
import { GgufValueType } from "../metadata.ts";
import { openGguf } from "../read.ts";
import {
  type GgufConversionPlan,
  type HfTensorRef,
  llama3RopeFactors,
  planGgufRequant,
  planHfToGguf,
  sizeLabel,
} from "./plan.ts";

const GOLDEN = new URL("../../../../shared/golden/llama-tiny/gguf/", import.meta.url);

function cfg(arch: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: [arch],
    hidden_size: 256,
    intermediate_size: 768,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 1000,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 2048,
    ...extra,
  };
}

function hfTensors(
  o: { lmHead?: boolean; bias?: boolean; qkNorm?: boolean; dtype?: string; layers?: number } = {},
): HfTensorRef[] {
  const dtype = o.dtype ?? "BF16";
  const t: HfTensorRef[] = [
    { name: "model.embed_tokens.weight", shape: [1000, 256], dtype },
    { name: "model.norm.weight", shape: [256], dtype },
  ];
  if (o.lmHead) t.push({ name: "lm_head.weight", shape: [1000, 256], dtype });
  for (let i = 0; i < (o.layers ?? 2); i++) {
    const p = `model.layers.${i}.`;
    t.push(
      { name: p + "input_layernorm.weight", shape: [256], dtype },
      { name: p + "self_attn.q_proj.weight", shape: [256, 256], dtype },
      { name: p + "self_attn.k_proj.weight", shape: [128, 256], dtype },
      { name: p + "self_attn.v_proj.weight", shape: [128, 256], dtype },
      { name: p + "self_attn.o_proj.weight", shape: [256, 256], dtype },
      { name: p + "self_attn.rotary_emb.inv_freq", shape: [32], dtype: "F32" },
      { name: p + "post_attention_layernorm.weight", shape: [256], dtype },
      { name: p + "mlp.gate_proj.weight", shape: [768, 256], dtype },
      { name: p + "mlp.up_proj.weight", shape: [768, 256], dtype },
      { name: p + "mlp.down_proj.weight", shape: [256, 768], dtype },
    );
    if (o.bias) {
      t.push(
        { name: p + "self_attn.q_proj.bias", shape: [256], dtype },
        { name: p + "self_attn.k_proj.bias", shape: [128], dtype },
        { name: p + "self_attn.v_proj.bias", shape: [128], dtype },
      );
    }
    if (o.qkNorm) {
      t.push(
        { name: p + "self_attn.q_norm.weight", shape: [64], dtype },
        { name: p + "self_attn.k_norm.weight", shape: [64], dtype },
      );
    }
  }
  return t;
}

const kvMap = (p: GgufConversionPlan): Map<string, unknown> =>
  new Map(p.kv.map((e) => [e.key, e.value]));
const tensor = (p: GgufConversionPlan, name: string) => {
  const t = p.tensors.find((x) => x.name === name);
  assert.ok(t, `no tensor ${name}`);
  return t;
};

Deno.test("plan: Llama q4_k_m: names, ne, permutation, types, metadata", () => {
  const p = planHfToGguf(
    { config: cfg("LlamaForCausalLM"), tensors: hfTensors({ lmHead: true }), name: "tiny" },
    { fileType: "q4_k_m" },
  );
  assert.equal(p.arch, "llama");
  assert.equal(p.fileType.id, 15);
  assert.deepEqual(p.tensors.map((t) => t.name), [
    "output.weight",
    "output_norm.weight",
    "token_embd.weight",
    ...[0, 1].flatMap((i) =>
      [
        "attn_k.weight",
        "attn_norm.weight",
        "attn_output.weight",
        "attn_q.weight",
        "attn_v.weight",
        "ffn_down.weight",
        "ffn_gate.weight",
        "ffn_norm.weight",
        "ffn_up.weight",
      ].map((n) => `blk.${i}.${n}`)
    ),
  ]);
  assert.deepEqual(tensor(p, "token_embd.weight").ne, [256, 1000]);
  assert.equal(tensor(p, "token_embd.weight").type, "q4_k");
  assert.equal(tensor(p, "output.weight").type, "q6_k");
  assert.equal(tensor(p, "output_norm.weight").type, "f32");
  assert.equal(tensor(p, "blk.0.attn_v.weight").type, "q4_k");
  assert.equal(tensor(p, "blk.1.attn_v.weight").type, "q6_k");
  assert.equal(tensor(p, "blk.1.ffn_down.weight").type, "q6_k");
  assert.deepEqual(tensor(p, "blk.0.attn_q.weight").permute, {
    nHead: 4,
    rows: 256,
    rowLength: 256,
    headRows: 64,
  });
  assert.deepEqual(tensor(p, "blk.0.attn_k.weight").permute, {
    nHead: 2,
    rows: 128,
    rowLength: 256,
    headRows: 64,
  });
  assert.equal(tensor(p, "blk.0.attn_v.weight").permute, undefined);
  assert.equal(tensor(p, "blk.0.attn_q.weight").source, "model.layers.0.self_attn.q_proj.weight");
  assert.equal(tensor(p, "blk.0.attn_q.weight").sourceType, "bf16");
  const kv = kvMap(p);
  assert.equal(p.kv[0].key, "general.architecture");
  assert.equal(kv.get("general.name"), "tiny");
  assert.equal(kv.get("general.type"), "model");
  assert.equal(kv.get("llama.block_count"), 2);
  assert.equal(kv.get("llama.context_length"), 2048);
  assert.equal(kv.get("llama.embedding_length"), 256);
  assert.equal(kv.get("llama.feed_forward_length"), 768);
  assert.equal(kv.get("llama.attention.head_count"), 4);
  assert.equal(kv.get("llama.attention.head_count_kv"), 2);
  assert.equal(kv.get("llama.rope.freq_base"), 10000);
  assert.equal(kv.get("llama.attention.layer_norm_rms_epsilon"), 1e-5);
  assert.equal(kv.get("llama.vocab_size"), 1000);
  assert.equal(kv.get("llama.rope.dimension_count"), 64);
  assert.equal(kv.has("llama.attention.key_length"), false);
  assert.equal(kv.get("general.file_type"), 15);
  assert.equal(kv.get("general.quantization_version"), 2);
  assert.equal(p.kv.find((e) => e.key === "llama.rope.freq_base")?.type, GgufValueType.FLOAT32);
  assert.equal(p.kv.find((e) => e.key === "llama.block_count")?.type, GgufValueType.UINT32);
  assert.match(p.notices.join("\n"), /no tokenizer given/);
});

Deno.test("plan: tied embeddings, f16/bf16/f32 file types, Mistral, head_dim", () => {
  const tied = planHfToGguf(
    { config: cfg("MistralForCausalLM", { head_dim: 64 }), tensors: hfTensors() },
    { fileType: "q4_0" },
  );
  assert.equal(tied.arch, "llama");
  assert.equal(tied.tensors.some((t) => t.name === "output.weight"), false);
  assert.equal(tensor(tied, "token_embd.weight").type, "q6_k");
  assert.match(tied.notices.join("\n"), /tied embeddings/);
  const kv = kvMap(tied);
  assert.equal(kv.get("llama.attention.key_length"), 64);
  assert.equal(kv.get("llama.attention.value_length"), 64);
  assert.equal(kv.get("general.file_type"), 2);
  for (const [ft, id] of [["f16", 1], ["bf16", 32], ["f32", 0]] as const) {
    const p = planHfToGguf({ config: cfg("LlamaForCausalLM"), tensors: hfTensors() }, {
      fileType: ft,
    });
    assert.equal(kvMap(p).get("general.file_type"), id);
    for (const t of p.tensors) {
      assert.equal(t.type, t.ne.length === 1 ? "f32" : ft, `${ft} ${t.name}`);
    }
  }
  // null head_dim: rope dimension from hidden_size / heads
  const m = planHfToGguf(
    {
      config: cfg("MistralForCausalLM", { head_dim: null, hidden_size: 256 }),
      tensors: hfTensors(),
    },
    { fileType: "q8_0" },
  );
  assert.equal(kvMap(m).get("llama.rope.dimension_count"), 64);
  assert.equal(kvMap(m).has("llama.attention.key_length"), false);
});

Deno.test("plan: Qwen2 biases (no permutation), YaRN keys; Qwen3 q/k norms", () => {
  const q2 = planHfToGguf(
    {
      config: cfg("Qwen2ForCausalLM", {
        rope_scaling: { type: "yarn", factor: 4, original_max_position_embeddings: 32768 },
      }),
      tensors: hfTensors({ bias: true, lmHead: true }),
    },
    { fileType: "q8_0" },
  );
  assert.equal(q2.arch, "qwen2");
  const qb = tensor(q2, "blk.0.attn_q.bias");
  assert.deepEqual(qb.ne, [256]);
  assert.equal(qb.type, "f32");
  assert.equal(qb.permute, undefined);
  assert.equal(tensor(q2, "blk.0.attn_q.weight").permute, undefined);
  assert.equal(tensor(q2, "blk.1.attn_k.bias").type, "f32");
  const kv = kvMap(q2);
  assert.equal(kv.get("qwen2.rope.scaling.type"), "yarn");
  assert.equal(kv.get("qwen2.rope.scaling.factor"), 4);
  assert.equal(kv.get("qwen2.rope.scaling.original_context_length"), 32768);
  assert.equal(kv.has("qwen2.vocab_size"), false);
  assert.equal(kv.has("qwen2.rope.dimension_count"), false);
  assert.equal(kv.get("qwen2.block_count"), 2);

  const q3 = planHfToGguf(
    { config: cfg("Qwen3ForCausalLM", { head_dim: 64 }), tensors: hfTensors({ qkNorm: true }) },
    { fileType: "q4_k_m" },
  );
  assert.equal(q3.arch, "qwen3");
  const qn = tensor(q3, "blk.1.attn_q_norm.weight");
  assert.deepEqual([qn.ne, qn.type], [[64], "f32"]);
  assert.equal(tensor(q3, "blk.1.attn_k_norm.weight").type, "f32");
  assert.equal(kvMap(q3).get("qwen3.attention.key_length"), 64);

  // llama has no q_norm: convert_hf_to_gguf cannot map it
  assert.throws(
    () =>
      planHfToGguf({ config: cfg("LlamaForCausalLM"), tensors: hfTensors({ qkNorm: true }) }, {
        fileType: "q8_0",
      }),
    /Can not map tensor 'model\.layers\.0\.self_attn\.q_norm\.weight'/,
  );
  // llama attention biases are permuted too (1-D: one value per row)
  const lb = planHfToGguf(
    { config: cfg("LlamaForCausalLM"), tensors: hfTensors({ bias: true }) },
    { fileType: "q8_0" },
  );
  assert.deepEqual(tensor(lb, "blk.0.attn_k.bias").permute, {
    nHead: 2,
    rows: 128,
    rowLength: 1,
    headRows: 64,
  });
  assert.equal(tensor(lb, "blk.0.attn_v.bias").permute, undefined);
});

Deno.test("plan: Llama 3 rope scaling writes rope_freqs.weight like convert_hf_to_gguf", () => {
  const rope = {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  const p = planHfToGguf(
    {
      config: cfg("LlamaForCausalLM", {
        rope_theta: 500000,
        rope_scaling: rope,
        hidden_size: 256,
        num_attention_heads: 2,
        num_key_value_heads: 1,
      }),
      tensors: hfTensors().map((t) =>
        t.name.endsWith("k_proj.weight") || t.name.endsWith("v_proj.weight")
          ? { ...t, shape: [128, 256] }
          : t
      ),
    },
    { fileType: "q4_k_m" },
  );
  const rf = tensor(p, "rope_freqs.weight");
  assert.deepEqual([rf.ne, rf.type, rf.source], [[64], "f32", ""]);
  assert.deepEqual(p.tensors.slice(0, 3).map((t) => t.name), [
    "output_norm.weight",
    "rope_freqs.weight",
    "token_embd.weight",
  ]);
  // numpy float32 reference of convert_hf_to_gguf's computation (head_dim 128)
  const bits = new Uint32Array(rf.data!.buffer);
  assert.deepEqual([...bits.slice(29, 35)], [
    1067093717,
    1069995594,
    1073852189,
    1076654894,
    1080806094,
    1084767238,
  ]);
  assert.ok(rf.data!.slice(0, 29).every((v) => v === 1));
  assert.ok(rf.data!.slice(35).every((v) => v === 8));
  assert.equal(kvMap(p).has("llama.rope.scaling.type"), false);
  assert.equal(kvMap(p).get("llama.rope.freq_base"), 500000);
  assert.equal(llama3RopeFactors({ ...rope, rope_theta: 500000 }, 128).length, 64);
});

Deno.test("plan: clear errors for architecture, file type, dtype and tensor names", () => {
  const t = hfTensors();
  assert.throws(
    () => planHfToGguf({ config: cfg("GPTNeoXForCausalLM"), tensors: t }, { fileType: "q8_0" }),
    (e: Error) =>
      /architecture 'GPTNeoXForCausalLM' is not supported.*LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/
        .test(e.message),
  );
  assert.throws(
    () => planHfToGguf({ config: { model_type: "llama" }, tensors: t }, { fileType: "q8_0" }),
    /no 'architectures' entry \(model_type 'llama'\); supported: LlamaForCausalLM/,
  );
  assert.throws(
    () => planHfToGguf({ config: cfg("LlamaForCausalLM"), tensors: t }, { fileType: "q4_k" }),
    /unknown GGUF file type 'q4_k'; valid file types: f32, f16, bf16, q4_0.*q4_k_m/,
  );
  assert.throws(
    () =>
      planHfToGguf({ config: cfg("LlamaForCausalLM"), tensors: hfTensors({ dtype: "I8" }) }, {
        fileType: "q8_0",
      }),
    /dtype I8; GGUF conversion reads F32, F16, BF16 and F64/,
  );
  assert.throws(
    () =>
      planHfToGguf({
        config: cfg("LlamaForCausalLM"),
        tensors: [...t, {
          name: "model.layers.0.mlp.experts.0.w1.weight",
          shape: [4, 4],
          dtype: "F32",
        }],
      }, { fileType: "q8_0" }),
    /Can not map tensor 'model\.layers\.0\.mlp\.experts\.0\.w1\.weight'/,
  );
  assert.throws(
    () =>
      planHfToGguf({ config: cfg("LlamaForCausalLM"), tensors: hfTensors({ layers: 3 }) }, {
        fileType: "q8_0",
      }),
    /block 2 is past num_hidden_layers 2/,
  );
  assert.throws(
    () =>
      planHfToGguf({ config: cfg("LlamaForCausalLM", { num_attention_heads: 3 }), tensors: t }, {
        fileType: "q8_0",
      }),
    /256 rows, which do not split into 3 heads/,
  );
  assert.throws(
    () =>
      planHfToGguf({ config: cfg("LlamaForCausalLM"), tensors: t.slice(1) }, { fileType: "q8_0" }),
    /no model\.embed_tokens\.weight/,
  );
  // F32 / F16 sources are fine
  planHfToGguf({ config: cfg("LlamaForCausalLM"), tensors: hfTensors({ dtype: "F16" }) }, {
    fileType: "q8_0",
  });
});

Deno.test("plan: size labels as gguf-py writes them", () => {
  assert.equal(sizeLabel(135_000_000), "135M");
  assert.equal(sizeLabel(1_235_814_400), "1.2B");
  assert.equal(sizeLabel(7_241_732_096), "7.2B");
  assert.equal(sizeLabel(9_767_168), "10M");
  assert.equal(sizeLabel(1_500_000), "1.5M");
  assert.equal(sizeLabel(2_500_000_000), "2.5B");
  assert.equal(sizeLabel(500), "0.50K");
  assert.equal(sizeLabel(70_553_706_496), "71B");
});

Deno.test("plan: requantizing a GGUF follows the same policy", async () => {
  const src = await openGguf(new URL("q8_0.gguf", GOLDEN).pathname);
  const want = await openGguf(new URL("q4_k_m.gguf", GOLDEN).pathname);
  try {
    const p = planGgufRequant(src, { fileType: "q4_k_m" });
    assert.equal(p.arch, "llama");
    assert.deepEqual(
      p.tensors.map((t) => `${t.name}:${t.type}`),
      want.tensors.map((t) => `${t.name}:${t.typeName.toLowerCase()}`),
    );
    assert.equal(tensor(p, "output_norm.weight").copy, true);
    assert.equal(tensor(p, "blk.0.attn_q.weight").copy, false);
    assert.equal(tensor(p, "blk.0.attn_q.weight").sourceType, "q8_0");
    assert.match(p.notices.join("\n"), /requantizing tensors already quantized as q8_0/);
    const kv = kvMap(p);
    assert.equal(kv.get("general.file_type"), 15);
    assert.equal(kv.get("general.name"), "tiny-golden");
    assert.equal(p.kv.length, src.metadata.size);
    const tokens = p.kv.find((e) => e.key === "tokenizer.ggml.tokens")!;
    assert.equal(tokens.type, GgufValueType.ARRAY);
    assert.equal((tokens.value as { value: unknown[] }).value.length, 32000);
    // same file type again: everything is copied
    const same = planGgufRequant(want, { fileType: "q4_k_m" });
    assert.ok(same.tensors.every((t) => t.copy));
    // overrides apply too
    const pure = planGgufRequant(src, { fileType: "q4_k_m", pure: true });
    assert.equal(tensor(pure, "token_embd.weight").type, "q4_k");
    assert.equal(tensor(pure, "blk.1.attn_v.weight").type, "q4_k");
  } finally {
    await src.close();
    await want.close();
  }
  assert.throws(
    () => planGgufRequant({ metadata: new Map(), tensors: [] }, { fileType: "q8_0" }),
    /no general.architecture/,
  );
});
