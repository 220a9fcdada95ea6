import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileSink, memorySink, QuantxError } from "@quantx/core";
import {
  BNB_DYNAMIC_MAP,
  dequantizeFp4,
  dequantizeNf4,
  doubleDequantize,
  doubleQuantize,
  quantizeFp4,
  quantizeNf4,
} from "@quantx/kernels";
import {
  fromF32,
  openCheckpoint,
  openSafetensors,
  type SafetensorsDataEntry,
  writeSafetensors,
} from "@quantx/safetensors";
import { gaussian } from "../../tests/support/random.ts";
import {
  bnbQuantMap,
  BnbWriter,
  openBnb,
  planBnb,
  quantStateJson,
  writeBnbCheckpoint,
} from "./mod.ts";

function model(): SafetensorsDataEntry[] {
  const t = (name: string, shape: number[], dtype: "BF16" | "F32" | "F16", seed: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { name, dtype, shape, data: fromF32(dtype, gaussian(n, seed, 0.02)) };
  };
  return [
    t("model.embed_tokens.weight", [50, 64], "BF16", 1),
    t("model.layers.0.input_layernorm.weight", [64], "BF16", 2),
    t("model.layers.0.self_attn.q_proj.weight", [64, 64], "BF16", 3),
    t("model.layers.0.self_attn.o_proj.weight", [3, 67], "F32", 4), // odd count, partial block
    t("model.layers.0.mlp.up_proj.weight", [96, 64], "F16", 5),
    t("model.layers.0.mlp.up_proj.bias", [96], "F16", 6),
    t("model.norm.weight", [64], "BF16", 7),
    t("lm_head.weight", [50, 64], "BF16", 8),
  ];
}

async function sourceOf(entries: SafetensorsDataEntry[]) {
  const sink = memorySink("in.safetensors");
  await writeSafetensors(sink, entries);
  return await openSafetensors(sink.bytes(), "in.safetensors");
}

for (const quantType of ["nf4", "fp4"] as const) {
  for (const doubleQuant of [false, true]) {
    Deno.test(`write -> read round trip (${quantType}, double quant ${doubleQuant})`, async () => {
      const src = await sourceOf(model());
      const plan = planBnb(src.tensors, { quantType, doubleQuant });
      const sink = memorySink("model.safetensors");
      const writer = new BnbWriter(sink, plan.shards[0], plan);
      const events: string[] = [];
      await writer.write(src, { chunkValues: 128, onProgress: (e) => events.push(e.phase) });
      assert.ok(events.includes("quantize") && events.includes("write"));
      const out = await openSafetensors(sink.bytes(), "model.safetensors");
      assert.deepEqual(out.metadata, { format: "pt" });
      assert.equal(out.size, writer.dataLength + (out.dataStart));
      const bnb = await openBnb(out);
      assert.deepEqual(bnb.tensors.map((t) => t.name), src.tensors.map((t) => t.name));
      assert.equal(bnb.params.length, 3);
      for (const t of src.tensors) {
        const item = plan.items.find((i) => i.source.name === t.name)!;
        if (!item.quantized) {
          assert.deepEqual(await out.read(t.name), await src.read(t.name), t.name);
          assert.equal(bnb.tensors.find((x) => x.name === t.name)!.dtype, t.dtype);
          continue;
        }
        const x = await src.readF32(t.name);
        const q = quantType === "nf4" ? quantizeNf4(x) : quantizeFp4(x);
        assert.deepEqual(await out.read(t.name), q.codes, `${t.name} codes`);
        assert.deepEqual(
          await out.read(`${t.name}.quant_map`),
          new Uint8Array(bnbQuantMap(quantType).buffer),
        );
        let absmax = q.absmax;
        const dtype = { F32: "float32", F16: "float16", BF16: "bfloat16" }[t.dtype as "F32"];
        let state = quantStateJson({
          quantType,
          blockSize: 64,
          dtype: dtype as "float32",
          shape: t.shape,
        });
        if (doubleQuant) {
          const dq = doubleQuantize(q.absmax);
          assert.deepEqual(await out.read(`${t.name}.absmax`), dq.quantized);
          assert.deepEqual(await out.readF32(`${t.name}.nested_absmax`), dq.nestedAbsmax);
          assert.deepEqual(await out.readF32(`${t.name}.nested_quant_map`), BNB_DYNAMIC_MAP);
          absmax = doubleDequantize(dq.quantized, dq.nestedAbsmax, dq.offset);
          state = quantStateJson({
            quantType,
            blockSize: 64,
            dtype: dtype as "float32",
            shape: t.shape,
            nested: { blockSize: 256, dtype: "float32", offset: dq.offset },
          });
        } else {
          assert.deepEqual(await out.readF32(`${t.name}.absmax`), q.absmax);
        }
        const qs = await out.read(`${t.name}.quant_state.bitsandbytes__${quantType}`);
        assert.equal(new TextDecoder().decode(qs), state);
        const want = quantType === "nf4"
          ? dequantizeNf4(q.codes, absmax, x.length)
          : dequantizeFp4(q.codes, absmax, x.length);
        assert.deepEqual(await bnb.readF32(t.name), want, `${t.name} values`);
        const p = bnb.param(t.name)!;
        assert.equal(p.dtype, dtype);
        assert.deepEqual(p.shape, t.shape);
      }
      await bnb.close();
      await src.close();
    });
  }
}

Deno.test("writeBnbCheckpoint: sharded folder, index, config.json, read back by openBnb(path)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "qx-bnb-"));
  try {
    const inDir = join(dir, "in"), outDir = join(dir, "out");
    await mkdir(inDir);
    await writeSafetensors(await createFileSink(join(inDir, "model.safetensors")), model());
    await writeFile(
      join(inDir, "config.json"),
      JSON.stringify({
        architectures: ["LlamaForCausalLM"],
        torch_dtype: "bfloat16",
        rms_norm_eps: 1e-5,
      }),
    );
    const src = await openCheckpoint(inDir);
    const result = await writeBnbCheckpoint(src, outDir, {
      doubleQuant: true,
      maxShardBytes: 8000,
    });
    assert.ok(result.plan.shards.length >= 3);
    const names = (await readdir(outDir)).sort();
    assert.deepEqual(
      names,
      [
        "config.json",
        "model.safetensors.index.json",
        ...result.plan.shards.map((s) => s.file),
      ].sort(),
    );
    const index = JSON.parse(await readFile(join(outDir, "model.safetensors.index.json"), "utf8"));
    assert.equal(index.metadata.total_size, result.totalSize);
    for (const p of result.plan.items.filter((i) => i.quantized)) {
      const shards = new Set(p.outputs.map((o) => index.weight_map[o.name]));
      assert.equal(shards.size, 1, `${p.source.name} spans ${[...shards]}`);
    }
    const config = JSON.parse(await readFile(join(outDir, "config.json"), "utf8"));
    assert.equal(config.quantization_config.bnb_4bit_quant_type, "nf4");
    assert.equal(config.quantization_config.bnb_4bit_use_double_quant, true);
    assert.equal(config.quantization_config.bnb_4bit_compute_dtype, "bfloat16");
    assert.deepEqual(config.quantization_config.llm_int8_skip_modules, [
      "lm_head",
      "model.embed_tokens",
    ]);
    assert.equal(config.rms_norm_eps, 1e-5);

    const bnb = await openBnb(outDir);
    assert.deepEqual(bnb.details, {
      quant_type: "nf4",
      blocksize: 64,
      double_quant: true,
      quantized_params: 3,
      compute_dtype: "bfloat16",
    });
    for (const t of src.tensors) {
      const x = await src.readF32(t.name);
      const y = await bnb.readF32(t.name);
      if (!bnb.param(t.name)) {
        assert.deepEqual(y, x);
        continue;
      }
      const q = quantizeNf4(x);
      const dq = doubleQuantize(q.absmax);
      const absmax = doubleDequantize(dq.quantized, dq.nestedAbsmax, dq.offset);
      assert.deepEqual(y, dequantizeNf4(q.codes, absmax, x.length));
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(y[i] - x[i]) < 0.06);
    }
    await bnb.close();

    // an existing output is refused without overwrite, and nothing of the new run is left
    await assert.rejects(
      () => writeBnbCheckpoint(src, outDir, { doubleQuant: true, maxShardBytes: 8000 }),
      (e: unknown) => e instanceof QuantxError && e.code === "EEXIST",
    );
    assert.deepEqual((await readdir(outDir)).sort(), names);
    const again = await writeBnbCheckpoint(src, outDir, {
      doubleQuant: true,
      maxShardBytes: 8000,
      overwrite: true,
    });
    assert.deepEqual(again.weightMap, result.weightMap);
    await src.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("writeBnbCheckpoint: abort leaves no files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "qx-bnb-"));
  try {
    const src = await sourceOf(model());
    const ac = new AbortController();
    let calls = 0;
    await assert.rejects(
      () =>
        writeBnbCheckpoint(src, dir, {
          maxShardBytes: 8000,
          chunkValues: 64,
          signal: ac.signal,
          onProgress: () => {
            if (++calls === 12) ac.abort(new Error("stop"));
          },
        }),
      /stop/,
    );
    assert.deepEqual(await readdir(dir), []);
    await src.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("BnbWriter: a source that changes between the two reads is an error", async () => {
  const src = await sourceOf(model().slice(2, 3));
  let reads = 0;
  const fickle = {
    read: src.read,
    readF32: async (name: string, start: number, count: number) => {
      const x = await src.readF32(name, start, count);
      if (++reads > 1) x[0] += 1;
      return x;
    },
  };
  const plan = planBnb(src.tensors, { doubleQuant: true });
  const sink = memorySink();
  const w = new BnbWriter(sink, plan.shards[0], plan);
  await assert.rejects(() => w.write(fickle), /changed/);
  assert.equal(sink.bytes().length, 0);
});
