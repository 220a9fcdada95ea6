import assert from "node:assert/strict";
import {
  chooseTensorTypes,
  compareTensorNames,
  FILE_TYPE_NAMES,
  fileTypeInfo,
  ggmlBlockSize,
  isModelType70B,
  type PolicyOptions,
  tensorAllowsQuantization,
} from "./policy.ts";
import {
  libllamaTypes,
  type LibModel,
  type LibOptions,
  llamaTensors,
} from "./libllama_policy_test_support.ts";

function ours(
  m: LibModel,
  tensors: { name: string; ne: number[] }[],
  ft: string,
  o: LibOptions = {},
): string[] {
  const opts: PolicyOptions = {
    pure: o.pure,
    leaveOutputTensor: o.leaveOutputTensor,
    outputTensorType: o.outputTensorType,
    tokenEmbeddingType: o.tokenEmbeddingType,
    tensorTypes: o.tensorTypes?.map((t) => ({ pattern: new RegExp(t.pattern), type: t.type })),
  };
  return chooseTensorTypes(
    { arch: m.arch, nLayer: m.nLayer, nHead: m.nHead, nHeadKv: m.nHeadKv, nExpert: m.nExpert },
    tensors.map((t) => ({ name: t.name, ne: t.ne, type: "f32" })),
    ft,
    opts,
  ).choices.map((c) => c.type);
}

function compare(
  what: string,
  m: LibModel,
  tensorsIn: { name: string; ne: number[] }[],
  ft: string,
  o: LibOptions = {},
): void {
  // libllama assigns in the order given; llama-quantize visits tensors in weight_name_comparer order.
  const tensors = [...tensorsIn].sort((a, b) => compareTensorNames(a.name, b.name));
  const want = libllamaTypes(m, tensors, ft, o);
  const got = ours(m, tensors, ft, o);
  assert.deepEqual(
    tensors.map((t, i) => `${t.name}=${got[i]}`),
    tensors.map((t, i) => `${t.name}=${want[i]}`),
    `${what} ${ft} ${JSON.stringify(o)}`,
  );
}

const MODELS: { what: string; m: LibModel; opts?: Parameters<typeof llamaTensors>[1] }[] = [
  {
    what: "llama 8 layers, tied, gqa 2",
    m: { arch: "llama", nEmbd: 256, nFf: 512, nLayer: 8, nHead: 4, nHeadKv: 2 },
    opts: { tied: true },
  },
  {
    what: "llama 32 layers, gqa 4",
    m: { arch: "llama", nEmbd: 256, nFf: 768, nLayer: 32, nHead: 8, nHeadKv: 2 },
  },
  {
    what: "llama 80 layers (70B class), gqa 8",
    m: { arch: "llama", nEmbd: 256, nFf: 512, nLayer: 80, nHead: 8, nHeadKv: 1 },
  },
  {
    what: "llama 80 layers without GQA (65B class)",
    m: { arch: "llama", nEmbd: 256, nFf: 512, nLayer: 80, nHead: 4, nHeadKv: 4 },
  },
  {
    what: "qwen2 24 layers, biases, tied",
    m: { arch: "qwen2", nEmbd: 256, nFf: 512, nLayer: 24, nHead: 4, nHeadKv: 2 },
    opts: { tied: true, bias: true },
  },
  {
    what: "qwen3 28 layers, q/k norms",
    m: { arch: "qwen3", nEmbd: 512, nFf: 1024, nLayer: 28, nHead: 8, nHeadKv: 2 },
    opts: { qkNorm: true },
  },
  {
    what: "llama, rows of 96 (fallbacks to 32-blocks)",
    m: { arch: "llama", nEmbd: 96, nFf: 352, nLayer: 5, nHead: 2, nHeadKv: 1 },
  },
  {
    what: "llama, rows of 80 (fallbacks to f16), tied",
    m: { arch: "llama", nEmbd: 80, nFf: 200, nLayer: 3, nHead: 2, nHeadKv: 2 },
    opts: { tied: true },
  },
  {
    what: "falcon-arch rules",
    m: { arch: "falcon", nEmbd: 256, nFf: 512, nLayer: 16, nHead: 4, nHeadKv: 1 },
  },
];

Deno.test("policy: every file type matches libllama's llama_quant_compute_types", () => {
  let cases = 0;
  for (const { what, m, opts } of MODELS) {
    const tensors = llamaTensors(m, opts);
    for (const ft of FILE_TYPE_NAMES) {
      compare(what, m, tensors, ft);
      cases++;
    }
  }
  assert.equal(cases, MODELS.length * 17);
});

Deno.test("policy: overrides match libllama (pure, leave output, output/embedding types, tensor types)", () => {
  const overrides: LibOptions[] = [
    { pure: true },
    { leaveOutputTensor: true },
    { outputTensorType: "q8_0" },
    { outputTensorType: "q4_0" },
    { tokenEmbeddingType: "q4_k" },
    { tokenEmbeddingType: "q8_0", outputTensorType: "f16" },
    { tensorTypes: [{ pattern: "ffn_down", type: "q8_0" }] },
    {
      tensorTypes: [
        { pattern: "blk\\.1\\.attn_v", type: "q5_0" },
        { pattern: "attn_v", type: "q2_k" },
      ],
    },
    { tensorTypes: [{ pattern: "blk\\.[0-3]\\.ffn_down", type: "q6_k" }], pure: true },
    { tensorTypes: [{ pattern: "ffn_(up|gate)", type: "q4_k" }] },
  ];
  const models = [MODELS[0], MODELS[1], MODELS[6], MODELS[7]];
  let n = 0;
  for (const { what, m, opts } of models) {
    const tensors = llamaTensors(m, opts);
    for (
      const ft of ["q4_0", "q8_0", "q2_k", "q3_k_m", "q4_k_m", "q5_k_s", "q6_k", "f16", "bf16"]
    ) {
      for (const o of overrides) {
        const hasOutput = tensors.some((t) => t.name === "output.weight");
        const explicit = [hasOutput ? o.outputTensorType : undefined, o.tokenEmbeddingType]
          .filter((t) => t !== undefined);
        if (explicit.some((t) => m.nEmbd % (ggmlBlockSize(t!) ?? 1) !== 0)) {
          // no fallback for these two overrides: llama-quantize fails later, QuantX refuses now
          assert.throws(() => ours(m, tensors, ft, o), /not a multiple of/);
          continue;
        }
        compare(what, m, tensors, ft, o);
        n++;
      }
    }
  }
  assert.ok(n > 300, `${n} cases`);
});

Deno.test("policy: q4_k_m picks Q6_K for attn_v/ffn_down with use_more_bits on 32 layers", () => {
  const m = { arch: "llama", nLayer: 32, nHead: 32, nHeadKv: 8 };
  const tensors: { name: string; ne: number[]; type: string }[] = [];
  for (let i = 0; i < 32; i++) {
    tensors.push({ name: `blk.${i}.attn_v.weight`, ne: [4096, 1024], type: "f32" });
    tensors.push({ name: `blk.${i}.ffn_down.weight`, ne: [14336, 4096], type: "f32" });
  }
  const { choices } = chooseTensorTypes(m, tensors, "q4_k_m");
  const q6 = (kind: string): number[] =>
    tensors.flatMap((t, i) =>
      t.name.includes(kind) && choices[i].type === "q6_k" ? [Number(t.name.split(".")[1])] : []
    );
  const expected = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
  assert.deepEqual(q6("attn_v"), expected);
  assert.deepEqual(q6("ffn_down"), expected);
  assert.ok(choices.every((c) => c.type === "q6_k" || c.type === "q4_k"));
});

Deno.test("policy: tied embeddings, GQA, 70B, fallbacks and 1-D tensors", () => {
  const embd = { name: "token_embd.weight", ne: [256, 1000], type: "f32" };
  const out = { name: "output.weight", ne: [256, 1000], type: "f32" };
  const norm = { name: "output_norm.weight", ne: [256], type: "f32" };
  const m = { arch: "llama", nLayer: 2, nHead: 4, nHeadKv: 4 };
  // tied: token_embd takes the output tensor's rule
  let r = chooseTensorTypes(m, [embd, norm], "q4_0").choices;
  assert.deepEqual(r.map((c) => c.type), ["q6_k", "f32"]);
  assert.equal(r[1].quantize, false);
  // untied: token_embd keeps the default, output gets Q6_K
  r = chooseTensorTypes(m, [embd, out], "q4_0").choices;
  assert.deepEqual(r.map((c) => c.type), ["q4_0", "q6_k"]);
  // q8_0 keeps the output in Q8_0; f16 makes every weight F16
  assert.deepEqual(chooseTensorTypes(m, [embd, out], "q8_0").choices.map((c) => c.type), [
    "q8_0",
    "q8_0",
  ]);
  assert.deepEqual(chooseTensorTypes(m, [embd, out, norm], "f16").choices.map((c) => c.type), [
    "f16",
    "f16",
    "f32",
  ]);
  // GQA: q2_k attn_v is Q4_K with n_gqa >= 4, else Q3_K
  const v = { name: "blk.0.attn_v.weight", ne: [256, 64], type: "f32" };
  assert.equal(chooseTensorTypes({ ...m, nHeadKv: 1 }, [v], "q2_k").choices[0].type, "q4_k");
  assert.equal(chooseTensorTypes({ ...m, nHeadKv: 2 }, [v], "q2_k").choices[0].type, "q3_k");
  // 70B: attn_v Q3_K/Q4_K become Q5_K (llama with 80 layers and GQA, qwen2 with 80 layers)
  assert.equal(isModelType70B({ arch: "qwen2", nLayer: 80, nHead: 64, nHeadKv: 8 }), true);
  assert.equal(isModelType70B({ arch: "qwen3", nLayer: 80, nHead: 64, nHeadKv: 8 }), false);
  assert.equal(
    chooseTensorTypes({ arch: "qwen2", nLayer: 80, nHead: 64, nHeadKv: 8 }, [v], "q3_k_s")
      .choices[0].type,
    "q5_k",
  );
  // fallbacks: q4_k -> q5_0, q6_k -> q8_0, q2_k/q3_k -> q4_0, rows not a multiple of 32 -> f16
  const w = (ne0: number) => ({ name: "blk.0.attn_q.weight", ne: [ne0, 64], type: "f32" });
  const one = (ft: string, ne0: number) => chooseTensorTypes(m, [w(ne0)], ft);
  assert.equal(one("q4_k_s", 96).choices[0].type, "q5_0");
  assert.equal(one("q4_k_s", 96).choices[0].fallbackFrom, "q4_k");
  assert.match(one("q4_k_s", 96).notices[0], /not divisible by 256.*falling back to q5_0/);
  assert.equal(one("q5_k_s", 96).choices[0].type, "q5_1");
  assert.equal(one("q6_k", 96).choices[0].type, "q8_0");
  assert.equal(one("q3_k_s", 96).choices[0].type, "q4_0");
  assert.equal(one("q4_k_m", 80).choices[0].type, "f16");
  assert.equal(one("q8_0", 48).choices[0].type, "f16");
  assert.equal(one("q8_0", 64).choices[0].type, "q8_0");
  // output rows not a multiple of the default's block: Q8_0
  const o96 = { name: "output.weight", ne: [96, 100], type: "f32" };
  assert.equal(chooseTensorTypes(m, [o96], "q4_k_m").choices[0].type, "q8_0");
  // 1-D / norms / [n, 1] tensors are not quantized
  assert.equal(tensorAllowsQuantization("blk.0.attn_norm.weight", [256]), false);
  assert.equal(tensorAllowsQuantization("blk.0.attn_q.bias", [256]), false);
  assert.equal(tensorAllowsQuantization("blk.0.x.weight", [256, 1]), false);
  assert.equal(tensorAllowsQuantization("blk.0.attn_q_norm.weight", [128, 4]), false);
  assert.equal(tensorAllowsQuantization("output.weight", [256, 10], true), false);
  assert.equal(tensorAllowsQuantization("output.weight", [256, 10]), true);
});

Deno.test("policy: bad file type and override types are clear errors", () => {
  assert.throws(
    () => fileTypeInfo("q4_k_x"),
    (e: Error) => /unknown GGUF file type 'q4_k_x'.*q4_k_m.*q6_k/.test(e.message),
  );
  assert.equal(fileTypeInfo("Q4_K_M").id, 15);
  assert.equal(fileTypeInfo("MOSTLY_Q8_0").id, 7);
  assert.equal(fileTypeInfo("bf16").id, 32);
  const m = { arch: "llama", nLayer: 1, nHead: 1, nHeadKv: 1 };
  const t = [{ name: "output.weight", ne: [256, 4], type: "f32" }];
  assert.throws(
    () => chooseTensorTypes(m, t, "q4_0", { outputTensorType: "q9_9" }),
    /outputTensorType: unknown or unsupported ggml type 'q9_9'/,
  );
  assert.throws(
    () =>
      chooseTensorTypes(m, [{ name: "output.weight", ne: [96, 4], type: "f32" }], "q4_0", {
        outputTensorType: "q4_k",
      }),
    /rows of 96 values, not a multiple of q4_k's block size 256/,
  );
});

Deno.test("policy: llama-quantize's tensor order", () => {
  const names = [
    "blk.10.attn_q.weight",
    "blk.2.ffn_up.weight",
    "token_embd.weight",
    "blk.2.attn_k.weight",
    "output.weight",
    "output_norm.weight",
    "rope_freqs.weight",
  ];
  assert.deepEqual([...names].sort(compareTensorNames), [
    "output.weight",
    "output_norm.weight",
    "rope_freqs.weight",
    "token_embd.weight",
    "blk.2.attn_k.weight",
    "blk.2.ffn_up.weight",
    "blk.10.attn_q.weight",
  ]);
});
