import assert from "node:assert/strict";
import { QuantxError } from "@quantx/core";
import { bnbConfigJson, isBnbLinearWeight, isSkippedModule, planBnb } from "./mod.ts";

const llama = [
  { name: "model.embed_tokens.weight", shape: [1000, 64], dtype: "BF16" },
  { name: "model.layers.0.input_layernorm.weight", shape: [64], dtype: "BF16" },
  { name: "model.layers.0.self_attn.q_proj.weight", shape: [64, 64], dtype: "BF16" },
  { name: "model.layers.0.self_attn.q_proj.bias", shape: [64], dtype: "BF16" },
  { name: "model.layers.0.self_attn.k_proj.weight", shape: [16, 64], dtype: "BF16" },
  { name: "model.layers.0.mlp.down_proj.weight", shape: [64, 256], dtype: "BF16" },
  { name: "model.norm.weight", shape: [64], dtype: "BF16" },
  { name: "lm_head.weight", shape: [1000, 64], dtype: "BF16" },
];

Deno.test("Linear weights are quantized; embeddings, norms, biases and lm_head are not", () => {
  const plan = planBnb(llama, { quantType: "nf4" });
  assert.deepEqual(
    plan.items.filter((i) => i.quantized).map((i) => i.source.name),
    [
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.mlp.down_proj.weight",
    ],
  );
  assert.equal(plan.quantizedCount, 3);
  const q = plan.items[2];
  assert.deepEqual(q.outputs, [
    { name: "model.layers.0.self_attn.q_proj.weight", dtype: "U8", shape: [2048, 1] },
    { name: "model.layers.0.self_attn.q_proj.weight.absmax", dtype: "F32", shape: [64] },
    { name: "model.layers.0.self_attn.q_proj.weight.quant_map", dtype: "F32", shape: [16] },
    {
      name: "model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4",
      dtype: "U8",
      shape: [78],
    },
  ]);
  assert.equal(q.byteLength, 2048 + 256 + 64 + 78);
  assert.equal(plan.options.computeDtype, "bfloat16");
  assert.deepEqual(plan.options.skipModules, ["lm_head", "model.embed_tokens"]);
  assert.equal(plan.shards.length, 1);
  assert.equal(plan.shards[0].file, "model.safetensors");

  for (
    const [name, shape, dtype, want] of [
      ["transformer.wte.weight", [10, 4], "F32", false],
      ["bert.embeddings.word_embeddings.weight", [10, 4], "F32", false],
      [
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        [32, 8],
        "F32",
        false,
      ],
      ["model.layers.0.mlp.gate_proj.weight", [8, 4], "F16", true],
      ["model.layers.0.mlp.gate_proj.weight", [8, 4], "I8", false],
      ["model.layers.0.mlp.gate_proj.weight", [8, 4, 1], "F32", false],
      ["model.layers.0.mlp.gate_proj.bias", [8, 4], "F32", false],
      ["lm_head.weight", [8, 4], "F32", false],
      ["model.lm_head.weight", [8, 4], "F32", false],
    ] as const
  ) {
    assert.equal(isBnbLinearWeight({ name, shape, dtype }), want, name);
  }
});

Deno.test("llm_int8_skip_modules match as transformers matches them", () => {
  assert.ok(isSkippedModule("model.layers.0.mlp.down_proj", ["mlp"]));
  assert.ok(isSkippedModule("model.layers.0.mlp.down_proj", ["down_proj"]));
  assert.ok(isSkippedModule("model.layers.0.mlp.down_proj", ["model.layers.0.mlp.down_proj"]));
  assert.ok(isSkippedModule("model.layers.0.mlp.down_proj", ["layers.0"]));
  assert.ok(!isSkippedModule("model.layers.0.mlp.down_proj", ["down"]));
  assert.ok(!isSkippedModule("model.layers.10.mlp.down_proj", ["layers.1"]));
  const plan = planBnb(llama, { skipModules: ["mlp"] });
  assert.equal(plan.quantizedCount, 2);
  assert.deepEqual(plan.options.skipModules, ["lm_head", "mlp", "model.embed_tokens"]);
  assert.deepEqual(plan.quantizationConfig.llm_int8_skip_modules, [
    "lm_head",
    "mlp",
    "model.embed_tokens",
  ]);
});

Deno.test("shards keep all of a parameter's tensors together", () => {
  const plan = planBnb(llama, { maxShardBytes: 150_000, doubleQuant: true });
  assert.ok(plan.shards.length > 1);
  assert.deepEqual(
    plan.shards.map((s) => s.file),
    plan.shards.map((_, i, a) =>
      `model-${String(i + 1).padStart(5, "0")}-of-${String(a.length).padStart(5, "0")}.safetensors`
    ),
  );
  assert.deepEqual(plan.shards.flatMap((s) => s.items), plan.items);
  for (const s of plan.shards) {
    assert.ok(s.items.length > 0);
    if (s.items.length > 1) assert.ok(s.dataLength <= 150_000);
  }
  const q = plan.items.find((i) => i.quantized)!;
  assert.deepEqual(q.outputs.map((o) => o.name.slice(q.source.name.length)), [
    "",
    ".absmax",
    ".quant_map",
    ".nested_absmax",
    ".nested_quant_map",
    ".quant_state.bitsandbytes__nf4",
  ]);
});

Deno.test("bad options are EINVAL errors", () => {
  for (const opts of [{ blockSize: 48 }, { quantType: "int4" as "nf4" }, { maxShardBytes: 0 }]) {
    assert.throws(
      () => planBnb(llama, opts),
      (e: unknown) => e instanceof QuantxError && e.code === "EINVAL",
    );
  }
  assert.throws(() => planBnb([...llama, llama[0]]), /duplicate/);
  assert.throws(
    () =>
      planBnb([...llama, {
        name: "model.layers.0.mlp.down_proj.weight.absmax",
        shape: [4],
        dtype: "F32",
      }]),
    /clashes/,
  );
});

Deno.test("config.json gets quantization_config as transformers writes it", () => {
  const plan = planBnb(llama, { quantType: "fp4", doubleQuant: true, computeDtype: "float16" });
  const text = bnbConfigJson(
    {
      architectures: ["LlamaForCausalLM"],
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      torch_dtype: "bfloat16",
      "é": 1,
    },
    plan,
  );
  assert.equal(
    text,
    `{
  "architectures": [
    "LlamaForCausalLM"
  ],
  "quantization_config": {
    "_load_in_4bit": true,
    "_load_in_8bit": false,
    "bnb_4bit_compute_dtype": "float16",
    "bnb_4bit_quant_storage": "uint8",
    "bnb_4bit_quant_type": "fp4",
    "bnb_4bit_use_double_quant": true,
    "llm_int8_enable_fp32_cpu_offload": false,
    "llm_int8_has_fp16_weight": false,
    "llm_int8_skip_modules": [
      "lm_head",
      "model.embed_tokens"
    ],
    "llm_int8_threshold": 6.0,
    "load_in_4bit": true,
    "load_in_8bit": false,
    "quant_method": "bitsandbytes"
  },
  "rms_norm_eps": 1e-05,
  "rope_theta": 500000,
  "torch_dtype": "bfloat16",
  "\\u00e9": 1
}
`,
  );
  // compute dtype defaults to the config's torch_dtype
  assert.equal(planBnb(llama, {}, { torch_dtype: "float16" }).options.computeDtype, "float16");
  assert.equal(planBnb([], {}).options.computeDtype, "float32");
});
