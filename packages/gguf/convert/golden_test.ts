// Golden test: converting ../shared/golden/llama-tiny/hf gives, tensor for tensor, the bytes
// llama.cpp (convert_hf_to_gguf.py --outtype f32, then llama-quantize) wrote.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { openCheckpoint } from "@quantx/safetensors";
import { quantize } from "@quantx/kernels";
import { bytesSource, memorySink } from "@quantx/core";
import { openGguf } from "../read.ts";
import { GgufWriter } from "../write.ts";
import { verifyGguf } from "../verify.ts";
import { type ConvertedTensor, planHfToGguf } from "./plan.ts";
import { permuteRows } from "./permute.ts";

const GOLDEN = new URL("../../../../shared/golden/llama-tiny/", import.meta.url);
const HF = new URL("hf/", GOLDEN).pathname;

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

const json = async (name: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(HF + name, "utf8"));

Deno.test("golden llama-tiny: q4_0, q8_0, q4_k_m tensors are byte-identical to llama.cpp", async () => {
  const ckpt = await openCheckpoint(HF);
  const f32Hashes = JSON.parse(
    await readFile(new URL("gguf/f32-tensors.json", GOLDEN), "utf8"),
  ) as Record<string, string>;
  const f32Cache = new Map<string, Float32Array>();
  const f32Of = async (t: ConvertedTensor): Promise<Float32Array> => {
    let v = f32Cache.get(t.name);
    if (v) return v;
    v = await ckpt.readF32(t.source);
    if (t.permute) {
      const p = t.permute;
      v = permuteRows(v, 0, p.rows, p.rowLength, p.nHead, p.rows);
    }
    f32Cache.set(t.name, v);
    return v;
  };
  try {
    const input = {
      config: ckpt.config ?? await json("config.json"),
      tensors: ckpt.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype })),
      tokenizer: {
        tokenizerJson: await json("tokenizer.json"),
        tokenizerConfig: await json("tokenizer_config.json"),
      },
      name: "tiny-golden",
    };
    // The F32 intermediate: every tensor's float32 bytes (after the q/k permutation).
    const f32Plan = planHfToGguf(input, { fileType: "f32" });
    assert.deepEqual(
      f32Plan.tensors.map((t) => t.name).sort(),
      Object.keys(f32Hashes).sort(),
    );
    for (const t of f32Plan.tensors) {
      assert.equal(t.type, "f32");
      const v = await f32Of(t);
      assert.equal(await sha256(new Uint8Array(v.buffer)), f32Hashes[t.name], `f32 ${t.name}`);
    }
    let compared = 0;
    const qCache = new Map<string, Uint8Array>();
    for (const ft of ["q4_0", "q8_0", "q4_k_m"]) {
      const plan = planHfToGguf(input, { fileType: ft });
      const golden = await openGguf(new URL(`gguf/${ft}.gguf`, GOLDEN).pathname);
      try {
        assert.deepEqual(
          plan.tensors.map((t) => t.name),
          golden.tensors.map((t) => t.name),
          `${ft}: tensor names and llama-quantize's order`,
        );
        for (const t of plan.tensors) {
          const g = golden.tensors.find((x) => x.name === t.name)!;
          assert.deepEqual(t.ne, g.shape, `${ft} ${t.name} ne`);
          assert.equal(t.type, g.typeName.toLowerCase(), `${ft} ${t.name} type`);
          const key = `${t.name}:${t.type}`;
          let bytes = qCache.get(key);
          if (!bytes) {
            const v = await f32Of(t);
            bytes = t.type === "f32" ? new Uint8Array(v.slice().buffer) : quantize(t.type, v);
            qCache.set(key, bytes);
          }
          const want = await golden.read(g);
          assert.equal(bytes.byteLength, want.byteLength, `${ft} ${t.name} size`);
          assert.ok(
            bytes.every((b, i) => b === want[i]),
            `${ft} ${t.name}: bytes differ from llama-quantize's`,
          );
          compared++;
        }
        if (ft === "q4_k_m") {
          // the whole plan (metadata with the converted tokenizer + tensors) writes a valid file
          const sink = memorySink(`${ft}.gguf`);
          const w = new GgufWriter(sink);
          for (const e of plan.kv) w.set(e.key, e.type, e.value);
          for (const t of plan.tensors) w.addTensor(t.name, t.ne, t.type);
          await w.writeHeader();
          for (const t of plan.tensors) await w.writeTensorData(qCache.get(`${t.name}:${t.type}`)!);
          await w.finish();
          const report = await verifyGguf(bytesSource(sink.bytes(), `${ft}.gguf`));
          assert.deepEqual(report.problems, []);
          const back = await openGguf(bytesSource(sink.bytes(), `${ft}.gguf`));
          assert.equal(back.metadata.get("tokenizer.ggml.model")?.value, "llama");
          assert.equal(back.tensors.length, 20);
          await back.close();
        }
        const ftKey = plan.kv.find((e) => e.key === "general.file_type");
        const gFt = golden.metadata.get("general.file_type");
        assert.equal(ftKey?.value, gFt?.value, `${ft} general.file_type`);
      } finally {
        await golden.close();
      }
    }
    assert.equal(compared, 60);
  } finally {
    await ckpt.close();
  }
});
