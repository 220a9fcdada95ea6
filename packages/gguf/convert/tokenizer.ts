/**
 * Tokenizer conversion to `tokenizer.ggml.*` keys, following convert_hf_to_gguf and gguf-py's
 * `SpecialVocab`:
 *
 * - `tokenizer.json` byte-level BPE (Llama 3, Qwen, SmolLM, GPT-2): model `gpt2`, tokens, token
 *   types, merges and `tokenizer.ggml.pre` (detected from the pre-tokenizer, see
 *   {@link detectBpePre}).
 * - SentencePiece-style Llama 2 / Mistral vocabularies, from `tokenizer.model` (scores and types
 *   as sentencepiece gives them) or from a `tokenizer.json` BPE with byte fallback: model `llama`.
 * - special token ids, `add_bos_token` / `add_eos_token`, `chat_template`.
 * @module
 */
import { FormatError, QuantxError } from "@quantx/core";
import { GgufValueType } from "../metadata.ts";
import type { ArchSpec } from "./arch.ts";

/** One metadata entry: key, GGUF type and a value as `GgufWriter.set` takes it. */
export interface GgufKvEntry {
  /** Metadata key. */
  key: string;
  /** GGUF value type. */
  type: GgufValueType;
  /** The value; arrays are `{ itemType, value: [...] }`, 64-bit integers bigints. */
  value: unknown;
}

/** Tokenizer files of a Hugging Face folder. */
export interface TokenizerFiles {
  /** Parsed `tokenizer.json`. */
  tokenizerJson?: unknown;
  /** Parsed `tokenizer_config.json`. */
  tokenizerConfig?: Record<string, unknown>;
  /** Raw `tokenizer.model` (sentencepiece ModelProto); preferred for Llama/Mistral/Qwen as in convert_hf_to_gguf. */
  tokenizerModel?: Uint8Array;
  /** Contents of `chat_template.jinja`, used when tokenizer_config.json has no `chat_template`. */
  chatTemplate?: string;
  /** Force `tokenizer.ggml.pre` for a BPE tokenizer whose pre-tokenizer is not recognized. */
  pre?: string;
}

/** gguf-py's TokenType. */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** What {@link convertTokenizer} produced. */
export interface TokenizerConversion {
  /** `tokenizer.*` entries in write order. */
  kv: GgufKvEntry[];
  /** `tokenizer.ggml.model` (`llama` or `gpt2`). */
  model: "llama" | "gpt2";
  /** `tokenizer.ggml.pre`. */
  pre: string;
  /** Number of tokens written. */
  tokenCount: number;
  /** Warnings a user should see. */
  notices: string[];
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

function str(key: string, value: string): GgufKvEntry {
  return { key, type: GgufValueType.STRING, value };
}

/** The pre-tokenizer regexes llama.cpp implements, as tokenizer.json spells them. */
const RE_LLAMA3 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const RE_QWEN2 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const RE_QWEN35 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * `tokenizer.ggml.pre` for a byte-level BPE `tokenizer.json`. convert_hf_to_gguf hashes the token
 * ids of a test string (`chkhsh`), which needs the Python tokenizer; QuantX recognizes the
 * pre-tokenizer itself instead, which is what the name selects in llama.cpp:
 *
 * - Split(Llama 3 regex) + ByteLevel: `llama-bpe` (with `ignore_merges`, as Llama 3 has), else
 *   `smaug-bpe` (same regex, merges always applied)
 * - Split(Qwen2 regex, single digits) + ByteLevel: `qwen2`; the Qwen3.5 regex: `qwen35`
 * - Digits(individual) + ByteLevel: `smollm` (SmolLM / SmolLM2, StarCoder-style)
 * - ByteLevel with its own regex only: `gpt-2`
 *
 * Returns undefined when the pre-tokenizer is none of these.
 */
export function detectBpePre(tokenizerJson: unknown): string | undefined {
  if (!isObj(tokenizerJson)) return undefined;
  const pt = tokenizerJson.pre_tokenizer;
  if (!isObj(pt)) return undefined;
  const steps: Json[] = pt.type === "Sequence" && Array.isArray(pt.pretokenizers)
    ? pt.pretokenizers.filter(isObj)
    : [pt];
  const kinds = steps.map((s) => String(s.type));
  const model = isObj(tokenizerJson.model) ? tokenizerJson.model : {};
  if (kinds.length === 2 && kinds[0] === "Split" && kinds[1] === "ByteLevel") {
    const p = steps[0].pattern;
    const re = isObj(p) && typeof p.Regex === "string" ? p.Regex : undefined;
    if (steps[1].use_regex === true) return undefined;
    if (re === RE_LLAMA3) return model.ignore_merges === true ? "llama-bpe" : "smaug-bpe";
    if (re === RE_QWEN2) return "qwen2";
    if (re === RE_QWEN35) return "qwen35";
    return undefined;
  }
  if (
    kinds.length === 2 && kinds[0] === "Digits" && steps[0].individual_digits === true &&
    kinds[1] === "ByteLevel" && steps[1].use_regex !== false
  ) {
    return "smollm";
  }
  if (kinds.length === 1 && kinds[0] === "ByteLevel" && steps[0].use_regex !== false) {
    return "gpt-2";
  }
  return undefined;
}

/** convert_hf_to_gguf's `does_token_look_special`. */
export function doesTokenLookSpecial(t: string): boolean {
  if (t === "<pad>" || t === "<mask>" || t === "<2mass>" || t === "[@BOS@]") return true;
  if (t.startsWith("<|") && t.endsWith("|>")) return true;
  if (t.startsWith("<｜") && t.endsWith("｜>")) return true;
  if (t.startsWith("<unused") && t.endsWith(">")) return true;
  return false;
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
}

function addedTokensOf(tj: Json): AddedToken[] {
  const list = Array.isArray(tj.added_tokens) ? tj.added_tokens : [];
  const out: AddedToken[] = [];
  for (const a of list) {
    if (!isObj(a) || typeof a.content !== "string" || typeof a.id !== "number") continue;
    out.push({
      id: a.id,
      content: a.content,
      special: a.special === true,
      normalized: a.normalized === true,
    });
  }
  return out;
}

function bpeModel(tj: Json): { vocab: Map<string, number>; merges: unknown[]; json: Json } {
  const m = tj.model;
  if (!isObj(m) || m.type !== "BPE" || !isObj(m.vocab)) {
    throw new QuantxError(
      `tokenizer.json: expected a BPE model with a vocab, got model type ${
        isObj(m) ? JSON.stringify(m.type) : "none"
      }`,
      { code: "EUNSUPPORTED" },
    );
  }
  const vocab = new Map<string, number>();
  for (const [k, v] of Object.entries(m.vocab)) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new QuantxError(`tokenizer.json: token ${JSON.stringify(k)} has invalid id ${v}`, {
        code: "EINVAL",
      });
    }
    vocab.set(k, v);
  }
  return { vocab, merges: Array.isArray(m.merges) ? m.merges : [], json: m };
}

/** Merges as gguf-py writes them: `"a b"` strings; pair lists get spaces encoded as U+0120. */
export function mergesOf(merges: unknown[]): string[] {
  if (merges.length === 0) return [];
  if (typeof merges[0] === "string") return merges.map(String);
  if (Array.isArray(merges[0]) && merges[0].length === 2 && typeof merges[0][0] === "string") {
    return merges.map((p) => {
      const pair = p as string[];
      return pair.map((part) => part.replaceAll(" ", "\u0120")).join(" ");
    });
  }
  throw new QuantxError("tokenizer.json: unknown tokenizer merges format", { code: "EINVAL" });
}

/** gguf-py SpecialVocab: special token ids, add_*_token flags, chat template, merges. */
function specialVocab(
  files: TokenizerFiles,
  config: Json,
  opts: { loadMerges: boolean; nVocab?: number },
  notices: string[],
): GgufKvEntry[] {
  const types = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
  const ids = new Map<string, number>();
  const add = new Map<string, boolean>();
  let merges: string[] = [];
  let chatTemplate: unknown = undefined;
  let lowercase: boolean | undefined;
  let stripAccents: boolean | undefined;

  const setSpecial = (typ: string, tid: unknown): void => {
    if (typeof tid !== "number" || !Number.isInteger(tid)) return;
    if (tid < 0) {
      throw new QuantxError(`invalid value for special token type ${typ}: ${tid}`, {
        code: "EINVAL",
      });
    }
    if (opts.nVocab === undefined || tid < opts.nVocab) {
      if (!ids.has(typ)) ids.set(typ, tid);
      return;
    }
    notices.push(
      `special token type ${typ}, id ${tid} out of range, must be under ${opts.nVocab} - skipping`,
    );
  };
  const parseNormalizer = (n: Json): void => {
    if (n.type === "Lowercase") lowercase = true;
    else if (n.type === "StripAccents") stripAccents = true;
    else if (n.type === "BertNormalizer") {
      if ("lowercase" in n) lowercase = n.lowercase as boolean;
      if ("strip_accents" in n) stripAccents = n.strip_accents as boolean;
    } else if (n.type === "Sequence" && Array.isArray(n.normalizers)) {
      for (const x of n.normalizers) if (isObj(x)) parseNormalizer(x);
    }
  };

  const tj = isObj(files.tokenizerJson) ? files.tokenizerJson : undefined;
  const tc: Json | undefined = files.tokenizerConfig && isObj(files.tokenizerConfig)
    ? { ...files.tokenizerConfig }
    : undefined;
  let added: AddedToken[] = [];
  if (tj) {
    if (opts.loadMerges) {
      const m = isObj(tj.model) && Array.isArray(tj.model.merges) ? tj.model.merges : undefined;
      if (m && m.length > 0) merges = mergesOf(m);
    }
    if (isObj(tj.normalizer)) parseNormalizer(tj.normalizer);
    added = addedTokensOf(tj);
    const content = (v: unknown): string | undefined =>
      typeof v === "string" && v !== "" ? v : undefined;
    let sBos = content(tc?.bos_token);
    let sCls = content(tc?.cls_token);
    let sEos = content(tc?.eos_token);
    let sSep = content(tc?.sep_token);
    if (!sBos && sCls && tc) tc.bos_token = sBos = sCls;
    if (!sEos && sSep && tc) tc.eos_token = sEos = sSep;
    const post = tj.post_processor;
    if (isObj(post)) {
      const procs = Array.isArray(post.processors) ? post.processors.filter(isObj) : [post];
      for (const p of procs) {
        if (p.type === "RobertaProcessing") {
          add.set("bos", true);
          add.set("eos", true);
          add.set("sep", true);
          if (!sCls && tc) {
            sCls = Array.isArray(p.cls) ? String(p.cls[0]) : sBos;
            tc.cls_token = sCls;
          }
          if (!sSep && tc) {
            sSep = Array.isArray(p.sep) ? String(p.sep[0]) : sEos;
            tc.sep_token = sSep;
          }
          continue;
        }
        if (p.type !== "TemplateProcessing") continue;
        const single = Array.isArray(p.single) ? p.single.filter(isObj) : [];
        let pair = Array.isArray(p.pair) ? p.pair.filter(isObj) : [];
        const specialId = (e: Json | undefined): string | undefined => {
          const s = e && isObj(e.SpecialToken) ? e.SpecialToken.id : undefined;
          return typeof s === "string" && s !== "" ? s : undefined;
        };
        let first: string | undefined;
        let last: string | undefined;
        if (single.length > 1) {
          first = specialId(single[0]);
          if (first) {
            if (!tc) sBos = first;
            else if (first !== sBos && first !== sCls) {
              if (!sBos) tc.bos_token = sBos = first;
              if (!sCls) tc.cls_token = sCls = first;
            }
            add.set("bos", first === sBos || first === sCls);
            if (first !== sBos && first !== sCls) {
              notices.push(
                `unknown leading special token '${first}' in TemplateProcessing<single>`,
              );
            }
          }
          last = specialId(single[single.length - 1]);
          if (last) {
            if (!tc) sEos = last;
            else if (last !== sEos) {
              if (!types.includes("eot")) {
                types.push("eot");
                tc.eot_token = sEos;
              } else if (!types.includes("eom")) {
                types.push("eom");
                tc.eom_token = sEos;
              }
              tc.eos_token = sEos = last;
            }
            add.set("eos", last === sEos);
          }
        }
        if (pair.length > 0) {
          const start = first && specialId(pair[0]) === first ? 1 : 0;
          const stop = last && specialId(pair[pair.length - 1]) === last
            ? pair.length - 1
            : pair.length;
          pair = pair.slice(start, stop);
          if (pair.length > 0) {
            const seqId = (e: Json): unknown => isObj(e.Sequence) ? e.Sequence.id : undefined;
            const a = seqId(pair[0]);
            const b = seqId(pair[pair.length - 1]);
            const mid = pair.slice(1, -1);
            if (a === "A" && b === "B" && mid.length > 0) {
              let addSep = false;
              const e0 = specialId(mid[0]);
              if (e0 && (e0 === sSep || e0 === sEos) && !last) addSep = true;
              if (mid.length === 2) {
                const e1 = specialId(mid[1]);
                if (e1 && (e1 === sSep || e1 === sEos)) addSep = true;
              }
              add.set("sep", addSep);
              if (addSep && !sSep && tc) tc.sep_token = sEos;
            }
          }
        }
      }
    }
  }
  if (tc) {
    const ct = "chat_template" in tc ? tc.chat_template : files.chatTemplate;
    if (ct === undefined || ct === null || typeof ct === "string" || Array.isArray(ct)) {
      chatTemplate = ct ?? undefined;
    } else notices.push("bad type for chat_template in tokenizer_config.json - ignoring");
    for (const typ of types) {
      const a = tc[`add_${typ}_token`];
      if (typeof a === "boolean") add.set(typ, a);
      const entry = tc[`${typ}_token`];
      let c: string | undefined;
      if (typeof entry === "string") c = entry;
      else if (isObj(entry) && typeof entry.content === "string") c = entry.content;
      else continue;
      const found = added.find((t) => t.content === c);
      setSpecial(typ, found?.id);
    }
  }
  const tcfg = isObj(config.text_config) ? config.text_config : undefined;
  for (const typ of types) {
    let v = config[`${typ}_token_id`];
    if ((v === undefined || v === null) && tcfg) v = tcfg[`${typ}_token_id`];
    setSpecial(typ, v);
  }

  const kv: GgufKvEntry[] = [];
  if (merges.length > 0) {
    kv.push({
      key: "tokenizer.ggml.merges",
      type: GgufValueType.ARRAY,
      value: { itemType: GgufValueType.STRING, value: merges },
    });
  } else if (opts.loadMerges) {
    notices.push("tokenizer.json has no merges: the GGUF's tokenizer may not work");
  }
  const idKey: Record<string, string> = {
    bos: "bos_token_id",
    eos: "eos_token_id",
    unk: "unknown_token_id",
    sep: "seperator_token_id",
    pad: "padding_token_id",
    mask: "mask_token_id",
    eot: "eot_token_id",
    eom: "eom_token_id",
  };
  for (const [typ, id] of ids) {
    const k = idKey[typ];
    if (k) kv.push({ key: `tokenizer.ggml.${k}`, type: GgufValueType.UINT32, value: id });
  }
  for (const [typ, v] of add) {
    if (typ === "bos" || typ === "eos" || typ === "sep") {
      kv.push({ key: `tokenizer.ggml.add_${typ}_token`, type: GgufValueType.BOOL, value: v });
    }
  }
  if (typeof chatTemplate === "string") kv.push(str("tokenizer.chat_template", chatTemplate));
  else if (Array.isArray(chatTemplate)) {
    let def: string | undefined;
    const names: string[] = [];
    for (const choice of chatTemplate) {
      if (!isObj(choice)) continue;
      const name = String(choice.name ?? "").replace(/[^A-Za-z0-9]/g, "_");
      const tpl = choice.template;
      if (!name || typeof tpl !== "string") continue;
      if (name === "default") def = tpl;
      else {
        if (!names.includes(name)) names.push(name);
        kv.push(str(`tokenizer.chat_template.${name}`, tpl));
      }
    }
    if (names.length > 0) {
      kv.push({
        key: "tokenizer.chat_templates",
        type: GgufValueType.ARRAY,
        value: { itemType: GgufValueType.STRING, value: names },
      });
    }
    if (def !== undefined) kv.push(str("tokenizer.chat_template", def));
  }
  if (lowercase !== undefined) {
    kv.push({
      key: "tokenizer.ggml.normalizer.lowercase",
      type: GgufValueType.BOOL,
      value: lowercase,
    });
  }
  if (stripAccents !== undefined) {
    kv.push({
      key: "tokenizer.ggml.normalizer.strip_accents",
      type: GgufValueType.BOOL,
      value: stripAccents,
    });
  }
  return kv;
}

function vocabKv(
  model: "llama" | "gpt2",
  pre: string,
  tokens: string[],
  types: number[],
  scores?: number[],
): GgufKvEntry[] {
  const kv: GgufKvEntry[] = [
    str("tokenizer.ggml.model", model),
    str("tokenizer.ggml.pre", pre),
    {
      key: "tokenizer.ggml.tokens",
      type: GgufValueType.ARRAY,
      value: { itemType: GgufValueType.STRING, value: tokens },
    },
  ];
  if (scores) {
    kv.push({
      key: "tokenizer.ggml.scores",
      type: GgufValueType.ARRAY,
      value: { itemType: GgufValueType.FLOAT32, value: scores },
    });
  }
  kv.push({
    key: "tokenizer.ggml.token_type",
    type: GgufValueType.ARRAY,
    value: { itemType: GgufValueType.INT32, value: types },
  });
  return kv;
}

/** convert_hf_to_gguf's `get_vocab_base` + `_set_vocab_gpt2` for a byte-level BPE tokenizer.json. */
function gpt2Vocab(
  files: TokenizerFiles,
  config: Json,
  notices: string[],
): TokenizerConversion {
  const tj = files.tokenizerJson as Json;
  const { vocab } = bpeModel(tj);
  const added = addedTokensOf(tj);
  const all = new Map(vocab);
  for (const a of added) all.set(a.content, a.id);
  let maxId = -1;
  for (const id of all.values()) if (id > maxId) maxId = id;
  const vs = config.vocab_size;
  const vocabSize = typeof vs === "number" && Number.isInteger(vs) && vs > 0 ? vs : all.size;
  if (maxId >= vocabSize) {
    throw new QuantxError(
      `tokenizer.json has token id ${maxId} but config.json's vocab_size is ${vocabSize}`,
      { code: "EINVAL" },
    );
  }
  let pre = files.pre ?? detectBpePre(tj);
  if (pre === undefined) {
    throw new QuantxError(
      "tokenizer.json: BPE pre-tokenizer was not recognized (QuantX knows llama-bpe, smaug-bpe, " +
        "qwen2, qwen35, smollm and gpt-2); pass the tokenizer.ggml.pre name explicitly",
      { code: "EUNSUPPORTED" },
    );
  }
  pre = String(pre);
  const reverse: (string | undefined)[] = new Array(vocabSize);
  for (const [t, id] of all) reverse[id] = t;
  const addedByContent = new Map<string, AddedToken>();
  for (const a of added) addedByContent.set(a.content, a);
  const addedById = new Map<number, AddedToken>();
  for (const a of added) addedById.set(a.id, a);
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize);
  let pads = 0;
  for (let i = 0; i < vocabSize; i++) {
    let t = reverse[i];
    if (t === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TokenType.UNUSED;
      pads++;
      continue;
    }
    if (addedByContent.has(t)) {
      const dec = addedById.get(i) ?? addedByContent.get(t)!;
      if (dec.special || doesTokenLookSpecial(t)) types[i] = TokenType.CONTROL;
      else {
        t = t.replaceAll("\u2581", " ");
        types[i] = TokenType.USER_DEFINED;
      }
    } else types[i] = TokenType.NORMAL;
    tokens[i] = t;
  }
  if (pads > 0) {
    notices.push(
      `vocabulary padded with ${pads} [PAD] tokens up to config vocab_size ${vocabSize}`,
    );
  }
  const kv = vocabKv("gpt2", pre, tokens, types);
  kv.push(...specialVocab(files, config, { loadMerges: true }, notices));
  return { kv, model: "gpt2", pre, tokenCount: vocabSize, notices };
}

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

function specialContents(tc: Json | undefined): string[] {
  if (!tc) return [];
  const out: string[] = [];
  const push = (v: unknown): void => {
    if (typeof v === "string") out.push(v);
    else if (isObj(v) && typeof v.content === "string") out.push(v.content);
  };
  for (const k of ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]) push(tc[`${k}_token`]);
  if (Array.isArray(tc.additional_special_tokens)) {
    for (const v of tc.additional_special_tokens) push(v);
  }
  return out;
}

/**
 * gguf-py's `LlamaHfVocab` (a sentencepiece vocabulary saved as a BPE tokenizer.json with byte
 * fallback). convert_hf_to_gguf gives every token the score -1000 on this path, which leaves
 * llama.cpp's SPM merge order arbitrary; QuantX gives each token produced by a merge the score
 * `-rank` of its first merge (the order sentencepiece's own scores have), so llama.cpp merges in
 * the tokenizer.json's order. Types: `<0xXX>` BYTE, special tokens CONTROL, others NORMAL;
 * added tokens above the base vocabulary USER_DEFINED (CONTROL when special).
 */
function llamaHfVocab(
  files: TokenizerFiles,
  config: Json,
  notices: string[],
): TokenizerConversion {
  const tj = files.tokenizerJson as Json;
  const { vocab, merges } = bpeModel(tj);
  const added = addedTokensOf(tj);
  const base = vocab.size;
  const reverse: string[] = new Array(base);
  for (const [t, id] of vocab) {
    if (id >= base) {
      throw new QuantxError(
        `tokenizer.json: vocab ids are not 0..${base - 1} (token ${
          JSON.stringify(t)
        } has id ${id})`,
        { code: "EINVAL" },
      );
    }
    reverse[id] = t;
  }
  const all = new Map(vocab);
  for (const a of added) all.set(a.content, a.id);
  const specialIds = new Set<number>();
  for (const c of specialContents(files.tokenizerConfig)) {
    const id = all.get(c);
    if (id !== undefined) specialIds.add(id);
  }
  const rank = new Map<string, number>();
  const ms = mergesOf(merges);
  for (let r = 0; r < ms.length; r++) {
    const m = ms[r];
    const sp = m.indexOf(" ", 1);
    if (sp < 0) continue;
    const t = m.slice(0, sp) + m.slice(sp + 1);
    if (!rank.has(t)) rank.set(t, r);
  }
  const tokens: string[] = [];
  const types: number[] = [];
  const scores: number[] = [];
  let unreached = 0;
  for (let id = 0; id < base; id++) {
    const t = reverse[id];
    if (t === undefined) {
      throw new QuantxError(`tokenizer.json: no token has id ${id}`, { code: "EINVAL" });
    }
    tokens.push(t);
    const r = rank.get(t);
    if (BYTE_TOKEN.test(t)) types.push(TokenType.BYTE);
    else if (specialIds.has(id)) types.push(TokenType.CONTROL);
    else {
      types.push(TokenType.NORMAL);
      if (r === undefined && [...t].length > 1) unreached++;
    }
    scores.push(r === undefined ? 0 : -(r + 1));
  }
  for (const a of [...added].filter((a) => a.id >= base).sort((x, y) => x.id - y.id)) {
    tokens.push(a.content);
    types.push(specialIds.has(a.id) ? TokenType.CONTROL : TokenType.USER_DEFINED);
    scores.push(-1000);
  }
  if (unreached > 0) {
    notices.push(
      `${unreached} multi-character tokens are produced by no merge; llama.cpp may still reach them`,
    );
  }
  const kv = vocabKv("llama", "default", tokens, types, scores);
  kv.push(...specialVocab(files, config, { loadMerges: false, nVocab: tokens.length }, notices));
  return { kv, model: "llama", pre: "default", tokenCount: tokens.length, notices };
}

/** One sentencepiece piece. */
export interface SentencePiece {
  /** Piece text (with U+2581 for spaces). */
  piece: string;
  /** Score. */
  score: number;
  /** sentencepiece type: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE. */
  type: number;
}

/**
 * Read the pieces of a sentencepiece `tokenizer.model` (protobuf `ModelProto`, field 1). Throws a
 * {@link FormatError} on malformed bytes.
 */
export function readSentencePieceModel(
  bytes: Uint8Array,
  file = "tokenizer.model",
): SentencePiece[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder("utf-8", { fatal: true });
  const fail = (why: string, at: number): never => {
    throw new FormatError(why, { file, offset: at });
  };
  const varint = (p: { at: number }, end: number): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (p.at >= end) fail("truncated varint", p.at);
      const b = bytes[p.at++];
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 128;
    }
    return fail("varint longer than 10 bytes", p.at);
  };
  const skip = (p: { at: number }, wire: number, end: number): void => {
    const at = p.at;
    if (wire === 0) varint(p, end);
    else if (wire === 1) p.at += 8;
    else if (wire === 2) {
      const n = varint(p, end);
      p.at += n;
    } else if (wire === 5) p.at += 4;
    else fail(`unsupported protobuf wire type ${wire}`, at);
    if (p.at > end) fail("field runs past the end of its message", at);
  };
  const pieces: SentencePiece[] = [];
  const p = { at: 0 };
  const end = bytes.byteLength;
  while (p.at < end) {
    const keyAt = p.at;
    const key = varint(p, end);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1) {
      if (wire !== 2) fail("ModelProto.pieces is not length-delimited", keyAt);
      const n = varint(p, end);
      const mEnd = p.at + n;
      if (mEnd > end) fail("piece runs past the end of the file", keyAt);
      const sp: SentencePiece = { piece: "", score: 0, type: 1 };
      while (p.at < mEnd) {
        const fAt = p.at;
        const k = varint(p, mEnd);
        const f = Math.floor(k / 8);
        const w = k % 8;
        if (f === 1 && w === 2) {
          const len = varint(p, mEnd);
          if (p.at + len > mEnd) fail("piece text runs past its message", fAt);
          try {
            sp.piece = dec.decode(bytes.subarray(p.at, p.at + len));
          } catch {
            fail("piece text is not valid UTF-8", p.at);
          }
          p.at += len;
        } else if (f === 2 && w === 5) {
          if (p.at + 4 > mEnd) fail("truncated score", fAt);
          sp.score = dv.getFloat32(p.at, true);
          p.at += 4;
        } else if (f === 3 && w === 0) {
          sp.type = varint(p, mEnd);
        } else skip(p, w, mEnd);
      }
      pieces.push(sp);
    } else skip(p, wire, end);
  }
  if (pieces.length === 0) fail("no pieces in sentencepiece model", 0);
  return pieces;
}

/** convert_hf_to_gguf's `_create_vocab_sentencepiece` + `_set_vocab_sentencepiece`. */
function sentencePieceVocab(
  files: TokenizerFiles,
  config: Json,
  notices: string[],
): TokenizerConversion {
  const pieces = readSentencePieceModel(files.tokenizerModel!);
  const vs = config.vocab_size;
  const vocabSize = typeof vs === "number" && Number.isInteger(vs) && vs > 0 ? vs : pieces.length;
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    tokens.push(`[PAD${i}]`);
    scores.push(-10000);
    types.push(TokenType.UNUSED);
  }
  for (let id = 0; id < pieces.length; id++) {
    if (id >= vocabSize) {
      notices.push(`ignoring tokens from ${id}: id is out of range, max=${vocabSize - 1}`);
      break;
    }
    const sp = pieces[id];
    let t: number = TokenType.NORMAL;
    if (sp.type === 2) t = TokenType.UNKNOWN;
    else if (sp.type === 3) t = TokenType.CONTROL;
    else if (sp.type === 5) t = TokenType.UNUSED;
    else if (sp.type === 6) t = TokenType.BYTE;
    tokens[id] = sp.piece;
    scores[id] = sp.score;
    types[id] = t;
  }
  const dec = files.tokenizerConfig?.added_tokens_decoder;
  if (isObj(dec)) {
    for (const [k, v] of Object.entries(dec)) {
      const id = Number(k);
      if (!Number.isInteger(id) || !isObj(v) || typeof v.content !== "string") continue;
      if (id >= vocabSize) {
        notices.push(`ignoring token ${id}: id is out of range, max=${vocabSize - 1}`);
        continue;
      }
      let c = v.content;
      if (v.special === true || doesTokenLookSpecial(c)) types[id] = TokenType.CONTROL;
      else {
        c = c.replaceAll("\u2581", " ");
        types[id] = TokenType.USER_DEFINED;
      }
      scores[id] = -1000;
      tokens[id] = c;
    }
  }
  const kv = vocabKv("llama", "default", tokens, types, scores);
  kv.push(...specialVocab(files, config, { loadMerges: false, nVocab: tokens.length }, notices));
  return { kv, model: "llama", pre: "default", tokenCount: tokens.length, notices };
}

/** True for the sentencepiece-style tokenizer.json gguf-py's LlamaHfVocab accepts. */
export function isLlamaHfTokenizer(tokenizerJson: unknown): boolean {
  if (!isObj(tokenizerJson) || !isObj(tokenizerJson.model)) return false;
  const m = tokenizerJson.model;
  const isLlama3 = m.type === "BPE" && m.ignore_merges === true && m.byte_fallback !== true;
  if (isLlama3) return false;
  const d = tokenizerJson.decoder;
  return m.type === "BPE" && m.byte_fallback === true && isObj(d) && d.type === "Sequence";
}

/**
 * Convert a Hugging Face tokenizer to `tokenizer.*` GGUF metadata the way convert_hf_to_gguf's
 * converter class for `arch` does (LlamaModel: tokenizer.model, else a sentencepiece-style
 * tokenizer.json, else byte-level BPE; Qwen2/Qwen3: tokenizer.model, else byte-level BPE).
 * `config` is config.json (vocab_size and *_token_id are read from it).
 */
export function convertTokenizer(
  arch: ArchSpec,
  config: Record<string, unknown>,
  files: TokenizerFiles,
): TokenizerConversion {
  const notices: string[] = [];
  const pre: GgufKvEntry[] = [];
  const tc = files.tokenizerConfig;
  if (arch.llamaKeys && tc && typeof tc.add_prefix_space === "boolean") {
    pre.push({
      key: "tokenizer.ggml.add_space_prefix",
      type: GgufValueType.BOOL,
      value: tc.add_prefix_space,
    });
  }
  let r: TokenizerConversion;
  if (files.tokenizerModel) r = sentencePieceVocab(files, config, notices);
  else if (files.tokenizerJson === undefined) {
    throw new QuantxError("no tokenizer: tokenizer.json or tokenizer.model is needed", {
      code: "EINVAL",
    });
  } else if (!isObj(files.tokenizerJson)) {
    throw new QuantxError("tokenizer.json is not a JSON object", { code: "EINVAL" });
  } else if (arch.llamaKeys && isLlamaHfTokenizer(files.tokenizerJson)) {
    r = llamaHfVocab(files, config, notices);
  } else r = gpt2Vocab(files, config, notices);
  r.kv = [...pre, ...r.kv];
  if (arch.llamaKeys && config.vocab_size === 49152) {
    // convert_hf_to_gguf: "Apply to granite small models only" (also SmolLM/SmolLM2)
    r.kv = r.kv.filter((e) => e.key !== "tokenizer.ggml.add_bos_token");
    r.kv.push({ key: "tokenizer.ggml.add_bos_token", type: GgufValueType.BOOL, value: false });
  }
  return r;
}
