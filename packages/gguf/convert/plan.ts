/**
 * Conversion plans: what convert_hf_to_gguf (to an F32 GGUF) followed by llama-quantize would
 * produce, computed from names, shapes and config alone so that the caller can stream tensor data.
 * @module
 */
import { QuantxError } from "@quantx/core";
import { type GgufMetadata, type GgufValue, GgufValueType } from "../metadata.ts";
import { archOf, type ArchSpec, findHparam, type HfHparams, readHparams } from "./arch.ts";
import { mapTensorName } from "./names.ts";
import { headRows } from "./permute.ts";
import {
  chooseTensorTypes,
  compareTensorNames,
  type FileTypeInfo,
  fileTypeInfo,
  ggmlTypeNameOf,
  type PolicyOptions,
} from "./policy.ts";
import { convertTokenizer, type GgufKvEntry, type TokenizerFiles } from "./tokenizer.ts";

/** A tensor of the Hugging Face checkpoint, as a safetensors header describes it. */
export interface HfTensorRef {
  /** Tensor name in the checkpoint, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** Shape, row-major (PyTorch order). */
  shape: number[];
  /** safetensors dtype (`F32`, `F16`, `BF16`, `F64`). */
  dtype: string;
}

/** One tensor of the output GGUF and how to make it. */
export interface ConvertedTensor {
  /** GGUF tensor name. */
  name: string;
  /** Source tensor name (HF name, or the GGUF name for a requant); "" for generated tensors. */
  source: string;
  /** Shape in ggml `ne` order (the reverse of the HF shape). */
  ne: number[];
  /** Target ggml type, lower-case (`f32`, `q4_k`, ...). */
  type: string;
  /**
   * Permute the rows (HF dimension 0: `rows` rows of `rowLength` values) within each of `nHead`
   * heads of `headRows` rows, with {@link permuteRows}, before anything else. For a weight the
   * rows are ggml rows; for a 1-D bias each row is one value.
   */
  permute?: { nHead: number; rows: number; rowLength: number; headRows: number };
  /** Type of the source data (safetensors dtype lower-case, or the input GGUF's ggml type). */
  sourceType: string;
  /** Requant only: the source bytes are already in `type` and are copied as they are. */
  copy?: boolean;
  /** Generated tensors (`rope_freqs.weight`): their float32 values. */
  data?: Float32Array;
}

/** Options of {@link planHfToGguf} and {@link planGgufRequant}: the file type and llama-quantize's overrides. */
export interface ConvertOptions extends PolicyOptions {
  /** llama-quantize file type: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k. */
  fileType: string;
}

/** Input of {@link planHfToGguf}: a Hugging Face folder's metadata. */
export interface HfConvertInput {
  /** Parsed config.json. */
  config: Record<string, unknown>;
  /** Every tensor of the checkpoint (all shards). */
  tensors: HfTensorRef[];
  /** Tokenizer files; without them the GGUF has no vocabulary (llama.cpp cannot load it). */
  tokenizer?: TokenizerFiles;
  /** `general.name` (e.g. the folder name). */
  name?: string;
}

/** A conversion plan. */
export interface GgufConversionPlan {
  /** Metadata in write order (`general.architecture` first). */
  kv: GgufKvEntry[];
  /** Output tensors in file order (llama-quantize's order). */
  tensors: ConvertedTensor[];
  /** Things the user should know (fallbacks, padding, assumptions). */
  notices: string[];
  /** GGUF architecture. */
  arch: string;
  /** The file type. */
  fileType: FileTypeInfo;
}

const SOURCE_DTYPES = ["f32", "f16", "bf16", "f64"];

function u32(key: string, v: unknown, notices: string[]): GgufKvEntry | undefined {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) {
    return { key, type: GgufValueType.UINT32, value: v };
  }
  if (v !== undefined && v !== null) {
    notices.push(`${key}: ${JSON.stringify(v)} is not a u32, not written`);
  }
  return undefined;
}

function f32(key: string, v: unknown, notices: string[]): GgufKvEntry | undefined {
  if (typeof v === "number" && Number.isFinite(v)) {
    return { key, type: GgufValueType.FLOAT32, value: v };
  }
  if (v !== undefined && v !== null) {
    notices.push(`${key}: ${JSON.stringify(v)} is not a number, not written`);
  }
  return undefined;
}

/** gguf-py's `model_weight_count_rounded_notation(n, min_digits=2)`. */
export function sizeLabel(params: number): string {
  let scaled: number;
  let suffix: string;
  if (params > 1e12) [scaled, suffix] = [params * 1e-12, "T"];
  else if (params > 1e9) [scaled, suffix] = [params * 1e-9, "B"];
  else if (params > 1e6) [scaled, suffix] = [params * 1e-6, "M"];
  else [scaled, suffix] = [params * 1e-3, "K"];
  const fl = Math.floor(scaled);
  const diff = scaled - fl;
  const rounded = diff > 0.5 || (diff === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const digits = rounded === 0 ? 0 : String(rounded).length;
  return scaled.toFixed(Math.max(2 - digits, 0)) + suffix;
}

/** The RoPE parameters as convert_hf_to_gguf's TextModel collects them. */
function ropeParameters(hp: Record<string, unknown>): Record<string, unknown> {
  const given = hp.rope_parameters ?? hp.rope_scaling;
  const rp: Record<string, unknown> = given !== null && typeof given === "object"
    ? { ...(given as Record<string, unknown>) }
    : {};
  if (!("full_attention" in rp) && !("sliding_attention" in rp)) {
    const theta = findHparam(hp, [
      "global_rope_theta",
      "rope_global_theta",
      "rope_theta_global",
      "rope_theta",
      "rotary_emb_base",
    ]);
    const orig = findHparam(hp, ["original_max_position_embeddings"]);
    if (!("rope_theta" in rp) && theta !== undefined && theta !== null) rp.rope_theta = theta;
    if (!("rope_type" in rp) && rp.type !== undefined && rp.type !== null) rp.rope_type = rp.type;
    if (
      !("original_max_position_embeddings" in rp) && orig !== undefined && orig !== null
    ) rp.original_max_position_embeddings = orig;
  }
  return rp;
}

/**
 * Llama 3 RoPE frequency factors (`rope_freqs.weight`), computed in float32 the way
 * convert_hf_to_gguf's `LlamaModel.generate_extra_tensors` does with torch.
 */
export function llama3RopeFactors(
  rp: Record<string, unknown>,
  headDim: number,
): Float32Array {
  const f = Math.fround;
  const num = (k: string, d: number): number => (typeof rp[k] === "number" ? rp[k] as number : d);
  const base = f(num("rope_theta", 10000));
  const factor = num("factor", 8);
  const low = num("low_freq_factor", 1);
  const high = num("high_freq_factor", 4);
  const oldCtx = num("original_max_position_embeddings", 8192);
  const lowWavelen = f(oldCtx / low);
  const highWavelen = f(oldCtx / high);
  const twoPi = f(2 * Math.PI);
  const out = new Float32Array(Math.ceil(headDim / 2));
  for (let i = 0; i < out.length; i++) {
    const e = f(f(2 * i) / headDim);
    const freq = f(1 / f(Math.pow(base, e)));
    const wavelen = f(f(1 / freq) * twoPi);
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const t = f(f(f(1 / wavelen) * f(oldCtx)) - f(low));
      const smooth = f(t / f(high - low));
      const v = f(f(f(f(1 - smooth) / f(factor)) + smooth));
      out[i] = f(1 / v);
    }
  }
  return out;
}

/**
 * Plan converting a Hugging Face checkpoint to GGUF with llama-quantize file type
 * `options.fileType`: exactly what `convert_hf_to_gguf.py --outtype f32` followed by
 * `llama-quantize` would write (tensor names, ne shapes, types, metadata), without reading any
 * tensor data. The caller then produces each tensor: read the HF rows, convert to float32,
 * apply `permute` with {@link permuteRows}, quantize to `type` (or write `data` when set).
 *
 * Throws a QuantxError for an unsupported architecture (naming the supported ones), an unknown
 * file type (listing the valid ones), a tensor without a GGUF name, or a dtype other than
 * F32/F16/BF16/F64.
 */
export function planHfToGguf(input: HfConvertInput, options: ConvertOptions): GgufConversionPlan {
  const ft = fileTypeInfo(options.fileType);
  const arch = archOf(input.config);
  const hp = readHparams(input.config);
  const notices: string[] = [];
  const out: ConvertedTensor[] = [];
  const seen = new Map<string, string>();
  let hasLmHead = false;
  for (const t of input.tensors) {
    const mapped = mapTensorName(arch, t.name);
    if (mapped === null) continue;
    const dtype = String(t.dtype).toLowerCase();
    if (!SOURCE_DTYPES.includes(dtype)) {
      throw new QuantxError(
        `tensor '${t.name}' has dtype ${t.dtype}; GGUF conversion reads F32, F16, BF16 and F64`,
        { code: "EUNSUPPORTED" },
      );
    }
    if (mapped.bid !== undefined && mapped.bid >= hp.nLayer) {
      throw new QuantxError(
        `Can not map tensor '${t.name}': block ${mapped.bid} is past num_hidden_layers ${hp.nLayer}`,
        { code: "EUNSUPPORTED" },
      );
    }
    const prev = seen.get(mapped.name);
    if (prev !== undefined) {
      throw new QuantxError(`tensors '${prev}' and '${t.name}' both map to '${mapped.name}'`, {
        code: "EINVAL",
      });
    }
    seen.set(mapped.name, t.name);
    if (mapped.name === "output.weight") hasLmHead = true;
    const shape = t.shape.length === 0 ? [1] : [...t.shape];
    const c: ConvertedTensor = {
      name: mapped.name,
      source: t.name,
      ne: [...shape].reverse(),
      type: "f32",
      sourceType: dtype,
    };
    if (mapped.permute) {
      const nHead = mapped.permute === "q" ? hp.nHead : hp.nHeadKv;
      const rows = shape[0];
      let hr: number;
      try {
        hr = headRows(rows, nHead);
      } catch {
        throw new QuantxError(
          `tensor '${t.name}' has ${rows} rows, which do not split into ${nHead} heads for the RoPE permutation`,
          { code: "EINVAL" },
        );
      }
      c.permute = {
        nHead,
        rows,
        rowLength: shape.slice(1).reduce((a, b) => a * b, 1),
        headRows: hr,
      };
    }
    out.push(c);
  }
  if (!seen.has("token_embd.weight")) {
    throw new QuantxError(
      "the checkpoint has no model.embed_tokens.weight (token embeddings); is the tensor list complete?",
      { code: "EINVAL" },
    );
  }
  if (!hasLmHead) {
    notices.push(
      "tied embeddings: no lm_head.weight, so no output.weight; llama.cpp uses token_embd.weight " +
        "for the output and llama-quantize gives it the output tensor's type",
    );
  }

  const rp = ropeParameters(hp.raw);
  const ropeMain =
    (typeof rp.full_attention === "object" && rp.full_attention !== null
      ? rp.full_attention
      : rp) as Record<string, unknown>;
  const ropeType = typeof ropeMain.rope_type === "string" ? ropeMain.rope_type : undefined;
  const rotDim = hp.headDim ?? Math.trunc(hp.nEmbd / hp.nHead);
  if (ropeType !== undefined && ropeType.toLowerCase() === "llama3") {
    if (arch.llamaKeys) {
      const data = llama3RopeFactors(ropeMain, rotDim);
      out.push({
        name: "rope_freqs.weight",
        source: "",
        ne: [data.length],
        type: "f32",
        sourceType: "f32",
        data,
      });
    } else {
      notices.push(
        `rope_scaling type llama3 is ignored for ${arch.hfArch} (convert_hf_to_gguf writes no rope_freqs for it)`,
      );
    }
  }

  out.sort((a, b) => compareTensorNames(a.name, b.name));
  const { choices, notices: pn } = chooseTensorTypes(
    { arch: arch.ggufArch, nLayer: hp.nLayer, nHead: hp.nHead, nHeadKv: hp.nHeadKv, nExpert: 0 },
    out.map((t) => ({ name: t.name, ne: t.ne, type: "f32" })),
    ft.name,
    options,
  );
  notices.push(...pn);
  out.forEach((t, i) => t.type = choices[i].type);

  const kv = hfMetadata(arch, hp, rp, ropeMain, rotDim, ft, input, out, notices);
  return { kv, tensors: out, notices, arch: arch.ggufArch, fileType: ft };
}

function hfMetadata(
  arch: ArchSpec,
  hp: HfHparams,
  rp: Record<string, unknown>,
  ropeMain: Record<string, unknown>,
  rotDim: number,
  ft: FileTypeInfo,
  input: HfConvertInput,
  tensors: ConvertedTensor[],
  notices: string[],
): GgufKvEntry[] {
  const a = arch.ggufArch;
  const raw = hp.raw;
  const kv: GgufKvEntry[] = [];
  const push = (e: GgufKvEntry | undefined): void => {
    if (e) kv.push(e);
  };
  const s = (key: string, value: string): void => {
    kv.push({ key, type: GgufValueType.STRING, value });
  };
  s("general.architecture", a);
  s("general.type", "model");
  const nameOf = (): string => {
    if (input.name) return input.name;
    const p = raw._name_or_path;
    if (typeof p === "string" && p) return p.split("/").filter(Boolean).pop() ?? p;
    return "model";
  };
  s("general.name", nameOf());
  let params = 0;
  for (const t of tensors) params += t.ne.reduce((x, y) => x * y, 1);
  if (params > 0) s("general.size_label", sizeLabel(params));

  push(u32(`${a}.block_count`, hp.nLayer, notices));
  push(
    u32(
      `${a}.context_length`,
      findHparam(raw, [
        "max_position_embeddings",
        "n_ctx",
        "n_positions",
        "max_length",
        "max_sequence_length",
        "model_max_length",
      ]),
      notices,
    ),
  );
  push(u32(`${a}.embedding_length`, hp.nEmbd, notices));
  push(
    u32(
      `${a}.feed_forward_length`,
      findHparam(raw, [
        "prefix_dense_intermediate_size",
        "dense_intermediate_size",
        "intermediate_size",
        "n_inner",
        "hidden_dim",
      ]),
      notices,
    ),
  );
  push(u32(`${a}.attention.head_count`, hp.nHead, notices));
  if (hp.nHeadKvGiven !== undefined) {
    push(u32(`${a}.attention.head_count_kv`, hp.nHeadKvGiven, notices));
  }
  const ropeType = typeof ropeMain.rope_type === "string" ? ropeMain.rope_type : undefined;
  if (ropeType !== undefined) {
    const factor = ropeMain.factor;
    if (ropeType === "linear" && factor !== undefined && factor !== null) {
      s(`${a}.rope.scaling.type`, "linear");
      push(f32(`${a}.rope.scaling.factor`, factor, notices));
    } else if (ropeType === "yarn" && factor !== undefined && factor !== null) {
      s(`${a}.rope.scaling.type`, "yarn");
      push(f32(`${a}.rope.scaling.factor`, factor, notices));
      const orig = ropeMain.original_max_position_embeddings;
      if (orig === undefined || orig === null) {
        throw new QuantxError(
          "config.json: rope_scaling type yarn needs original_max_position_embeddings",
          { code: "EINVAL" },
        );
      }
      push(u32(`${a}.rope.scaling.original_context_length`, orig, notices));
      push(f32(`${a}.rope.scaling.yarn_ext_factor`, ropeMain.extrapolation_factor, notices));
      push(
        f32(
          `${a}.rope.scaling.yarn_attn_factor`,
          ropeMain.attention_factor ?? ropeMain.attn_factor,
          notices,
        ),
      );
      push(f32(`${a}.rope.scaling.yarn_beta_fast`, ropeMain.beta_fast, notices));
      push(f32(`${a}.rope.scaling.yarn_beta_slow`, ropeMain.beta_slow, notices));
    } else if (ropeType === "su" || ropeType === "longrope") {
      s(`${a}.rope.scaling.type`, "longrope");
    } else if (ropeType === "dynamic" || ropeType.toLowerCase() === "llama3") {
      // dynamic: handled per model class (none of ours); llama3: the rope_freqs tensor
    } else if (ropeType !== "default") {
      notices.push(`unknown RoPE type '${ropeType}': no RoPE scaling written`);
    }
  }
  push(f32(`${a}.rope.freq_base`, ropeMain.rope_theta, notices));
  const slide = rp.sliding_attention;
  if (slide !== null && typeof slide === "object") {
    push(f32(`${a}.rope.freq_base_swa`, (slide as Record<string, unknown>).rope_theta, notices));
  }
  push(
    f32(
      `${a}.attention.layer_norm_rms_epsilon`,
      findHparam(raw, ["rms_norm_eps", "norm_eps"]),
      notices,
    ),
  );
  push(
    f32(
      `${a}.attention.layer_norm_epsilon`,
      findHparam(raw, ["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"]),
      notices,
    ),
  );
  if (hp.headDim !== undefined) {
    push(u32(`${a}.attention.key_length`, hp.headDim, notices));
    push(u32(`${a}.attention.value_length`, hp.headDim, notices));
  }
  kv.push({ key: "general.file_type", type: GgufValueType.UINT32, value: ft.id });
  if (arch.llamaKeys) {
    push(u32(`${a}.vocab_size`, raw.vocab_size, notices));
    push(u32(`${a}.rope.dimension_count`, rotDim, notices));
  }
  kv.push({ key: "general.quantization_version", type: GgufValueType.UINT32, value: 2 });
  if (
    input.tokenizer &&
    (input.tokenizer.tokenizerJson !== undefined || input.tokenizer.tokenizerModel)
  ) {
    const tok = convertTokenizer(arch, raw, input.tokenizer);
    kv.push(...tok.kv);
    notices.push(...tok.notices);
  } else {
    notices.push(
      "no tokenizer given: the GGUF has no tokenizer.ggml.* keys and llama.cpp will not load it",
    );
  }
  return kv;
}

/** A GGUF file as {@link planGgufRequant} needs it (e.g. what `openGguf` returns). */
export interface GgufRequantInput {
  /** The file's metadata. */
  metadata: GgufMetadata;
  /** Its tensors: name, `shape` in ne order, ggml type (`typeName` or `type` id). */
  tensors: readonly { name: string; shape: readonly number[]; typeName?: string; type?: number }[];
}

function metaNumber(md: GgufMetadata, key: string): number | undefined {
  const v = md.get(key);
  if (!v) return undefined;
  if (v.type === GgufValueType.ARRAY) {
    const first = v.value[0];
    return typeof first === "number"
      ? first
      : typeof first === "bigint"
      ? Number(first)
      : undefined;
  }
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") return Number(v.value);
  return undefined;
}

function kvOf(key: string, v: GgufValue): GgufKvEntry {
  if (v.type === GgufValueType.ARRAY) {
    return { key, type: v.type, value: { itemType: v.itemType, value: v.value } };
  }
  return { key, type: v.type, value: v.value };
}

/**
 * Plan requantizing a GGUF file under llama-quantize's policy for `options.fileType` (the
 * architecture from `general.architecture`, layer and head counts from its metadata). Metadata is
 * copied with `general.file_type` and `general.quantization_version` set and split keys removed;
 * tensors keep their names and shapes, in llama-quantize's order. A tensor whose target type is
 * its current type is copied (`copy: true`); the others are dequantized to float32 and quantized.
 */
export function planGgufRequant(
  input: GgufRequantInput,
  options: ConvertOptions,
): GgufConversionPlan {
  const ft = fileTypeInfo(options.fileType);
  const md = input.metadata;
  const av = md.get("general.architecture");
  if (!av || av.type !== GgufValueType.STRING || !av.value) {
    throw new QuantxError("GGUF input has no general.architecture; cannot apply the type policy", {
      code: "EINVAL",
    });
  }
  const a = av.value;
  const nLayer = metaNumber(md, `${a}.block_count`);
  if (nLayer === undefined || !Number.isInteger(nLayer) || nLayer <= 0) {
    throw new QuantxError(`GGUF input has no valid ${a}.block_count`, { code: "EINVAL" });
  }
  const nHead = metaNumber(md, `${a}.attention.head_count`) ?? 0;
  const nHeadKv = metaNumber(md, `${a}.attention.head_count_kv`) ?? nHead;
  const nExpert = metaNumber(md, `${a}.expert_count`) ?? 0;
  const notices: string[] = [];
  const tensors: ConvertedTensor[] = input.tensors.map((t) => {
    const tn = t.typeName?.toLowerCase() ??
      (t.type === undefined ? undefined : ggmlTypeNameOf(t.type));
    if (tn === undefined) {
      throw new QuantxError(`tensor '${t.name}' has an unknown ggml type ${t.type}`, {
        code: "EUNSUPPORTED",
      });
    }
    return { name: t.name, source: t.name, ne: [...t.shape], type: tn, sourceType: tn };
  });
  tensors.sort((x, y) => compareTensorNames(x.name, y.name));
  const { choices, notices: pn } = chooseTensorTypes(
    { arch: a, nLayer, nHead, nHeadKv, nExpert },
    tensors.map((t) => ({ name: t.name, ne: t.ne, type: t.sourceType })),
    ft.name,
    options,
  );
  notices.push(...pn);
  const requantized = new Set<string>();
  tensors.forEach((t, i) => {
    t.type = choices[i].type;
    t.copy = t.type === t.sourceType;
    if (!t.copy && !["f32", "f16", "bf16"].includes(t.sourceType)) requantized.add(t.sourceType);
  });
  if (requantized.size > 0) {
    notices.push(
      `requantizing tensors already quantized as ${
        [...requantized].join(", ")
      }: quality is lower ` +
        "than quantizing from the original weights",
    );
  }
  const kv: GgufKvEntry[] = [];
  for (const [key, v] of md) {
    if (key === "general.alignment") {
      const al = typeof v.value === "number" ? v.value : undefined;
      if (al !== 32) notices.push(`input alignment ${al} is not kept; the output uses 32`);
      continue;
    }
    if (key === "split.no" || key === "split.count" || key === "split.tensors.count") continue;
    kv.push(kvOf(key, v));
  }
  const set = (key: string, value: number): void => {
    const e: GgufKvEntry = { key, type: GgufValueType.UINT32, value };
    const i = kv.findIndex((x) => x.key === key);
    if (i >= 0) kv[i] = e;
    else kv.push(e);
  };
  set("general.quantization_version", 2);
  set("general.file_type", ft.id);
  return { kv, tensors, notices, arch: a, fileType: ft };
}
