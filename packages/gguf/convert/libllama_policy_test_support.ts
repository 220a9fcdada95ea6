// Test support: llama.cpp's own type policy (libllama's llama_quant_compute_types, the helper
// llama.cpp's test-quant-type-selection uses), loaded from the node-llama-cpp prebuilt binaries
// that `deno task setup` installs. Tests compare chooseTensorTypes with it.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileTypeInfo, ggmlTypeNameOf } from "./policy.ts";
import { GGML_TYPE_ID } from "../../../tests/support/libggml.ts";

const BINS = join(
  new URL("../../..", import.meta.url).pathname,
  ".cache/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/",
);

const TYPE_IDS = GGML_TYPE_ID;
const GGML_TYPE_COUNT = 43;

function load() {
  const ggml = Deno.dlopen(
    join(BINS, "libggml-base.so"),
    {
      ggml_init: { parameters: [{ struct: ["usize", "pointer", "bool"] }], result: "pointer" },
      ggml_free: { parameters: ["pointer"], result: "void" },
      ggml_new_tensor: { parameters: ["pointer", "i32", "i32", "buffer"], result: "pointer" },
      ggml_set_name: { parameters: ["pointer", "buffer"], result: "pointer" },
    } as const,
  );
  const libllama = readdirSync(BINS).find((f) => /^libllama(\.v[\d.]+)?\.so$/.test(f));
  if (!libllama) throw new Error(`no libllama*.so in ${BINS}: run \`deno task setup\``);
  const llama = Deno.dlopen(
    join(BINS, libllama),
    {
      llama_log_set: { parameters: ["pointer", "pointer"], result: "void" },
      default_params: {
        name: "llama_model_quantize_default_params",
        parameters: [],
        result: {
          struct: [
            "i32",
            "i32",
            "i32",
            "i32",
            "u8",
            "u8",
            "u8",
            "u8",
            "u8",
            "u8",
            "u8",
            "u8",
            "pointer",
            "pointer",
            "pointer",
            "pointer",
            "usize",
          ],
        },
      },
      model_from_metadata: {
        name: "_Z31llama_quant_model_from_metadataPK22llama_quant_model_desc",
        parameters: ["buffer"],
        result: "pointer",
      },
      quant_init: {
        name: "_Z16llama_quant_initPK11llama_modelPK27llama_model_quantize_params",
        parameters: ["pointer", "buffer"],
        result: "pointer",
      },
      quant_free: {
        name: "_Z16llama_quant_freeP19quantize_state_impl",
        parameters: ["pointer"],
        result: "void",
      },
      compute_types: {
        name:
          "_Z25llama_quant_compute_typesP19quantize_state_impl11llama_ftypePP11ggml_tensorP9ggml_typem",
        parameters: ["pointer", "i32", "buffer", "buffer", "usize"],
        result: "void",
      },
      llama_model_free: { parameters: ["pointer"], result: "void" },
    } as const,
  );
  const quiet = new Deno.UnsafeCallback(
    { parameters: ["i32", "pointer", "pointer"], result: "void" } as const,
    () => {},
  );
  llama.symbols.llama_log_set(quiet.pointer, null);
  return { ggml, llama, quiet };
}

let libs: ReturnType<typeof load> | undefined;
function open(): ReturnType<typeof load> {
  libs ??= load();
  return libs;
}

const cstr = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s + "\0");

/** Model hparams for llama_quant_model_from_metadata. */
export interface LibModel {
  arch: string;
  nEmbd: number;
  nFf: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nExpert?: number;
}

/** Overrides as llama_model_quantize_params holds them. */
export interface LibOptions {
  pure?: boolean;
  leaveOutputTensor?: boolean;
  outputTensorType?: string;
  tokenEmbeddingType?: string;
  tensorTypes?: { pattern: string; type: string }[];
}

/**
 * llama.cpp's per-tensor types for `tensors` (name + ne, all F32) under `fileType`, lower-case.
 */
export function libllamaTypes(
  model: LibModel,
  tensors: { name: string; ne: number[] }[],
  fileType: string,
  opts: LibOptions = {},
): string[] {
  const { ggml, llama } = open();
  const ctx = ggml.symbols.ggml_init(
    new Uint8Array(new BigUint64Array([BigInt(1 << 24), 0n, 1n]).buffer),
  );
  if (ctx === null) throw new Error("ggml_init failed");
  const keep: Uint8Array[] = [];
  let mdl: Deno.PointerValue = null;
  let qs: Deno.PointerValue = null;
  try {
    const desc = new ArrayBuffer(48);
    const dv = new DataView(desc);
    const archStr = cstr(model.arch);
    keep.push(archStr);
    dv.setBigUint64(0, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(archStr))), true);
    const hd = model.nEmbd / model.nHead;
    [model.nEmbd, model.nFf, model.nLayer, model.nHead, model.nHeadKv, model.nExpert ?? 0, hd, hd]
      .forEach((v, i) => dv.setUint32(8 + 4 * i, v, true));
    mdl = llama.symbols.model_from_metadata(new Uint8Array(desc));
    const params = new Uint8Array(llama.symbols.default_params() as Uint8Array);
    const pv = new DataView(params.buffer);
    pv.setInt32(4, fileTypeInfo(fileType).id, true);
    if (opts.outputTensorType) pv.setInt32(8, TYPE_IDS[opts.outputTensorType], true);
    else pv.setInt32(8, GGML_TYPE_COUNT, true);
    if (opts.tokenEmbeddingType) pv.setInt32(12, TYPE_IDS[opts.tokenEmbeddingType], true);
    else pv.setInt32(12, GGML_TYPE_COUNT, true);
    params[17] = opts.leaveOutputTensor ? 0 : 1;
    params[19] = opts.pure ? 1 : 0;
    if (opts.tensorTypes && opts.tensorTypes.length > 0) {
      const arr = new ArrayBuffer(16 * (opts.tensorTypes.length + 1));
      const av = new DataView(arr);
      opts.tensorTypes.forEach((t, i) => {
        const p = cstr(t.pattern);
        keep.push(p);
        av.setBigUint64(16 * i, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(p))), true);
        av.setInt32(16 * i + 8, TYPE_IDS[t.type], true);
      });
      const u = new Uint8Array(arr);
      keep.push(u);
      pv.setBigUint64(40, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(u))), true);
    }
    qs = llama.symbols.quant_init(mdl, params);
    const ptrs = new BigUint64Array(tensors.length);
    tensors.forEach((t, i) => {
      const ne = new BigInt64Array(t.ne.map(BigInt));
      const p = ggml.symbols.ggml_new_tensor(ctx, 0, t.ne.length, new Uint8Array(ne.buffer));
      ggml.symbols.ggml_set_name(p, cstr(t.name));
      ptrs[i] = BigInt(Deno.UnsafePointer.value(p));
    });
    const out = new Int32Array(tensors.length);
    llama.symbols.compute_types(
      qs,
      fileTypeInfo(fileType).id,
      new Uint8Array(ptrs.buffer),
      new Uint8Array(out.buffer),
      BigInt(tensors.length),
    );
    return [...out].map((id) => ggmlTypeNameOf(id) ?? `type${id}`);
  } finally {
    if (qs !== null) llama.symbols.quant_free(qs);
    if (mdl !== null) llama.symbols.llama_model_free(mdl);
    ggml.symbols.ggml_free(ctx);
  }
}

/** Tensors of a dense llama-style model (names + ne) with `nLayer` blocks. */
export function llamaTensors(
  m: LibModel,
  opts: { tied?: boolean; vocab?: number; qkNorm?: boolean; bias?: boolean } = {},
): { name: string; ne: number[] }[] {
  const hd = m.nEmbd / m.nHead;
  const kvDim = hd * m.nHeadKv;
  const vocab = opts.vocab ?? 512;
  const t: { name: string; ne: number[] }[] = [
    { name: "token_embd.weight", ne: [m.nEmbd, vocab] },
    { name: "output_norm.weight", ne: [m.nEmbd] },
  ];
  if (!opts.tied) t.push({ name: "output.weight", ne: [m.nEmbd, vocab] });
  for (let i = 0; i < m.nLayer; i++) {
    const b = `blk.${i}.`;
    t.push(
      { name: b + "attn_norm.weight", ne: [m.nEmbd] },
      { name: b + "attn_q.weight", ne: [m.nEmbd, m.nEmbd] },
      { name: b + "attn_k.weight", ne: [m.nEmbd, kvDim] },
      { name: b + "attn_v.weight", ne: [m.nEmbd, kvDim] },
      { name: b + "attn_output.weight", ne: [m.nEmbd, m.nEmbd] },
      { name: b + "ffn_norm.weight", ne: [m.nEmbd] },
      { name: b + "ffn_gate.weight", ne: [m.nEmbd, m.nFf] },
      { name: b + "ffn_up.weight", ne: [m.nEmbd, m.nFf] },
      { name: b + "ffn_down.weight", ne: [m.nFf, m.nEmbd] },
    );
    if (opts.qkNorm) {
      t.push({ name: b + "attn_q_norm.weight", ne: [hd] }, {
        name: b + "attn_k_norm.weight",
        ne: [hd],
      });
    }
    if (opts.bias) {
      t.push(
        { name: b + "attn_q.bias", ne: [m.nEmbd] },
        { name: b + "attn_k.bias", ne: [kvDim] },
        { name: b + "attn_v.bias", ne: [kvDim] },
      );
    }
  }
  return t;
}
