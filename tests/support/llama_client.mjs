/**
 * The llama.cpp side of tests/llama_client_test.ts, run by Node 20:
 *
 *   node tests/support/llama_client.mjs '<json>'   (or a path to a .json file)
 *
 * Input: { tokenizerDir, models: [{ name, path }], texts: string[], plainTexts: string[],
 *          prompt: { text, bos: boolean }, generate: number, logitsDir }
 *
 * It loads the reference tokenizer (@lenml/tokenizers on tokenizerDir's tokenizer.json and
 * tokenizer_config.json) and each GGUF in llama.cpp (node-llama-cpp 3.22.1, prebuilt CPU build),
 * and prints one JSON object with what each side did: token ids of `texts` (special tokens parsed)
 * and `plainTexts` (special tokens as plain text, llama.cpp only), detokenized text, whether BOS is
 * prepended, a greedy continuation of the prompt (the reference tokenizer's ids of `prompt.text`, after
 * llama.cpp's BOS when `prompt.bos`), and the logits after every prompt position
 * (written as raw little-endian float32, positions x n_vocab, to `<logitsDir>/<name>.f32`).
 * It judges nothing: the Deno test compares.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const MODULES = new URL("../../.cache/npm/node_modules/", import.meta.url).pathname;

const arg = process.argv[2];
const input = JSON.parse(arg.trimStart().startsWith("{") ? arg : readFileSync(arg, "utf8"));
const ms = (t0) => Math.round(performance.now() - t0);

const { TokenizerLoader } = await import(join(MODULES, "@lenml/tokenizers/dist/main.mjs"));
const { getLlama, LlamaLogLevel } = await import(join(MODULES, "node-llama-cpp/dist/index.js"));

let t0 = performance.now();
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(join(input.tokenizerDir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(
    readFileSync(join(input.tokenizerDir, "tokenizer_config.json"), "utf8"),
  ),
});
const reference = {
  tokenizerClass: tok.constructor.name,
  loadMs: ms(t0),
  bos: tok.bos_token_id ?? null,
  // ids without and with the tokenizer's own special tokens (BOS/EOS from its post-processor)
  ids: input.texts.map((t) => tok.encode(t, { add_special_tokens: false })),
  idsWithSpecial: input.texts.map((t) => tok.encode(t, { add_special_tokens: true })),
  decoded: input.texts.map((t) =>
    tok.decode(tok.encode(t, { add_special_tokens: false }), { skip_special_tokens: false })
  ),
};

t0 = performance.now();
const llama = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.error,
  maxThreads: 2,
});
const runtimeMs = ms(t0);

const models = [];
for (const { name, path } of input.models) {
  const r = { name };
  t0 = performance.now();
  const model = await llama.loadModel({ modelPath: path });
  r.loadMs = ms(t0);
  try {
    r.architecture = model.fileInfo.metadata.general.architecture;
    r.bos = model.tokens.bos;
    r.eos = model.tokens.eos;
    r.shouldPrependBos = model.tokens.shouldPrependBosToken;
    r.ids = input.texts.map((t) => model.tokenize(t, true));
    r.plainIds = input.plainTexts.map((t) => model.tokenize(t, false));
    r.detokenized = r.ids.map((ids) => model.detokenize(ids, true));
    r.plainDetokenized = r.plainIds.map((ids) => model.detokenize(ids, false));
    // the reference tokenizer's ids, detokenized by llama.cpp
    r.referenceDetokenized = reference.ids.map((ids) => model.detokenize(ids, true));

    t0 = performance.now();
    const context = await model.createContext({ contextSize: 64, batchSize: 64, threads: 2 });
    try {
      const seq = context.getSequence();
      const prompt = [
        ...(input.prompt.bos ? [model.tokens.bos] : []),
        ...tok.encode(input.prompt.text, { add_special_tokens: false }),
      ];
      r.prompt = prompt;
      const out = await seq.controlledEvaluate(
        prompt.map((t) => [t, { generateNext: { logits: true } }]),
      );
      let nVocab = 0;
      for (const o of out) for (const k of o.next.logits.keys()) nVocab = Math.max(nVocab, k + 1);
      const logits = new Float32Array(prompt.length * nVocab).fill(Number.NaN);
      out.forEach((o, i) => {
        for (const [k, v] of o.next.logits) logits[i * nVocab + k] = v;
      });
      r.nVocab = nVocab;
      r.logitsFile = join(input.logitsDir, `${name}.f32`);
      writeFileSync(r.logitsFile, new Uint8Array(logits.buffer));
      await seq.clearHistory();
      const generated = [];
      for await (const t of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
        generated.push(t);
        if (generated.length >= input.generate) break;
      }
      r.generated = generated;
      r.generatedText = model.detokenize(generated, true, prompt);
      r.evalMs = ms(t0);
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
  models.push(r);
}
await llama.dispose();
process.stdout.write(JSON.stringify({ reference, runtimeMs, models }) + "\n");
