import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileSink, FormatError, memorySink, QuantxError } from "@quantx/core";
import { fp32ToBf16 } from "@quantx/kernels";
import {
  openSafetensors,
  type SafetensorsDataEntry,
  safetensorsIndexJson,
  writeSafetensors,
} from "@quantx/safetensors";
import { isBnbCheckpoint, openBnb } from "./mod.ts";
import { fixtureEntries, P, slice } from "../../tests/support/bnb_slices.ts";

async function fileOf(entries: SafetensorsDataEntry[], name = "model.safetensors") {
  const sink = memorySink(name);
  await writeSafetensors(sink, entries, { format: "pt" });
  return await openSafetensors(sink.bytes(), name);
}

Deno.test("real bitsandbytes slices decode exactly through openBnb", async () => {
  for (
    const [file, type] of [
      ["llama_1b_nf4.bin", "nf4"],
      ["llama_1b_nf4_double_quant.bin", "nf4"],
      ["llama_1b_fp4.bin", "fp4"],
    ] as const
  ) {
    const s = await slice(file);
    const norm = new Uint8Array(8).fill(1);
    const st = await fileOf([
      { name: "model.norm.weight", dtype: "BF16", shape: [4], data: norm },
      ...fixtureEntries(s, type),
    ]);
    assert.ok(isBnbCheckpoint(st));
    const bnb = await openBnb(st);
    assert.deepEqual(bnb.tensors.map((t) => [t.name, t.dtype, t.shape]), [
      ["model.norm.weight", "BF16", [4]],
      [P, type, [16, 256]],
    ]);
    assert.deepEqual(bnb.details, {
      quant_type: type,
      blocksize: 64,
      double_quant: s.format === 2,
      quantized_params: 1,
    });
    assert.deepEqual(bnb.warnings, []);
    const p = bnb.param(P)!;
    assert.equal(p.doubleQuant, s.format === 2);
    if (p.doubleQuant) assert.equal(p.nestedOffset, s.offset);
    const all = await bnb.readF32(P);
    assert.equal(all.length, s.n);
    for (let i = 0; i < s.n; i++) {
      if (fp32ToBf16(all[i]) !== s.expected[i]) assert.fail(`${file}: element ${i}`);
    }
    // any sub-range, odd starts and lengths included, gives the same values
    for (const [a, c] of [[0, 1], [1, 2], [63, 3], [65, 130], [1001, 999], [4095, 1]]) {
      assert.deepEqual(await bnb.readF32(P, a, c), all.slice(a, a + c), `${file} [${a}, +${c})`);
    }
    assert.deepEqual(await bnb.readF32("model.norm.weight"), await st.readF32("model.norm.weight"));
    await assert.rejects(() => bnb.readF32(P, 4000, 100), QuantxError);
    await bnb.close();
  }
});

Deno.test("openBnb rejects broken checkpoints naming the parameter", async () => {
  const s = await slice("llama_1b_nf4_double_quant.bin");
  const base = fixtureEntries(s, "nf4");
  const qsName = `${P}.quant_state.bitsandbytes__nf4`;
  const withState = (text: string) =>
    base.map((e) =>
      e.name === qsName ? { ...e, shape: [text.length], data: new TextEncoder().encode(text) } : e
    );
  const good = new TextDecoder().decode(base.find((e) => e.name === qsName)!.data);
  const cases: [string, SafetensorsDataEntry[], RegExp][] = [
    ["unknown key", withState(good.replace("}", ', "bias": 1}')), /unknown key "bias"/],
    ["missing quant_state", base.filter((e) => e.name !== qsName), /no quant_state/],
    [
      "wrong shape",
      withState(good.replace("[16, 256]", "[16, 512]")),
      /weight .*must be U8 with 4096 values/,
    ],
    [
      "absmax of the wrong length",
      base.map((e) =>
        e.name === `${P}.absmax` ? { ...e, shape: [32], data: e.data.slice(0, 32) } : e
      ),
      /absmax \(double-quantized\) must be U8 with 64 values/,
    ],
    [
      "nested fields without tensors",
      base.filter((e) => !e.name.includes("nested")),
      /nested_absmax tensor .* is missing/,
    ],
    ["not JSON", withState("{nope"), /not valid JSON/],
    ["type mismatch", withState(good.replace('"nf4"', '"fp4"')), /quant_type "fp4"/],
    [
      "quant_map of the wrong size",
      base.map((e) =>
        e.name === `${P}.quant_map` ? { ...e, shape: [8], data: e.data.slice(0, 32) } : e
      ),
      /quant_map must be F32 with 16 values/,
    ],
    [
      "unknown quant_state type",
      base.map((e) =>
        e.name === qsName ? { ...e, name: `${P}.quant_state.bitsandbytes__int4` } : e
      ),
      /bitsandbytes__int4 is not nf4 or fp4/,
    ],
  ];
  for (const [what, entries, re] of cases) {
    const st = await fileOf(entries);
    await assert.rejects(
      () => openBnb(st),
      (e: unknown) =>
        e instanceof FormatError && re.test(e.message) && e.message.includes(`"${P}"`) &&
        e.file === "model.safetensors" && typeof e.offset === "number",
      what,
    );
  }
  // a U8 [k, 1] weight in a checkpoint that config.json calls bnb 4-bit, without any companion
  const st = await fileOf([{ name: P, dtype: "U8", shape: [s.weight.length, 1], data: s.weight }]);
  const lone = {
    tensors: st.tensors,
    config: { quantization_config: { quant_method: "bitsandbytes", load_in_4bit: true } },
    read: st.read,
    readF32: st.readF32,
    close: st.close,
  };
  assert.ok(isBnbCheckpoint(lone));
  await assert.rejects(() => openBnb(lone), /packed 4-bit .* no quant_state/);
  // 8-bit checkpoints are not supported
  await assert.rejects(
    () =>
      openBnb({
        ...lone,
        config: { quantization_config: { quant_method: "bitsandbytes", load_in_8bit: true } },
      }),
    (e: unknown) => e instanceof QuantxError && e.code === "EUNSUPPORTED",
  );
});

Deno.test("openBnb rejects a quant_state in another shard", async () => {
  const dir = await mkdtemp(join(tmpdir(), "qx-bnb-"));
  try {
    const s = await slice("llama_1b_nf4.bin");
    const entries = fixtureEntries(s, "nf4");
    const qs = entries.filter((e) => e.name.includes("quant_state"));
    const rest = entries.filter((e) => !e.name.includes("quant_state"));
    const files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    for (const [i, group] of [rest, qs].entries()) {
      await writeSafetensors(await createFileSink(join(dir, files[i])), group, { format: "pt" });
    }
    const map: Record<string, string> = {};
    for (const e of rest) map[e.name] = files[0];
    for (const e of qs) map[e.name] = files[1];
    await writeFile(join(dir, "model.safetensors.index.json"), safetensorsIndexJson(map, 0));
    await assert.rejects(
      () => openBnb(dir),
      (e: unknown) =>
        e instanceof FormatError &&
        /in .*model-00001-of-00002\.safetensors, not in .*00002-of-00002/.test(e.message) &&
        e.message.includes(`"${P}"`),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("a non-standard quant_map is a warning, decoded with the kernel's codebook", async () => {
  const s = await slice("llama_1b_nf4.bin");
  const entries = fixtureEntries(s, "nf4").map((e) =>
    e.name === `${P}.quant_map`
      ? { ...e, data: new Uint8Array(new Float32Array(16).fill(0.5).buffer) }
      : e
  );
  const bnb = await openBnb(await fileOf(entries));
  assert.equal(bnb.warnings.length, 1);
  assert.match(bnb.warnings[0], /quant_map differs/);
  const all = await bnb.readF32(P);
  assert.equal(fp32ToBf16(all[0]), s.expected[0]);
  await bnb.close();
});
