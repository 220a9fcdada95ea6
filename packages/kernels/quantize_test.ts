/** The public API: the type registry, quantize / dequantize and their errors. */
import assert from "node:assert/strict";
import { gaussian } from "../../tests/support/random.ts";
import {
  dequantize,
  dequantizeInto,
  GGML_TYPES,
  ggmlType,
  isQuantType,
  QUANT_TYPES,
  quantize,
  quantizedSize,
  quantizeInto,
  rowSize,
} from "./mod.ts";

Deno.test("registry: ids, names, sizes", () => {
  assert.equal(GGML_TYPES.length, 35);
  assert.deepEqual(
    GGML_TYPES.filter((t) => t.id >= 39).map((t) => [t.id, t.name, t.blockSize, t.typeSize]),
    [[39, "mxfp4", 32, 17], [40, "nvfp4", 64, 36], [41, "q1_0", 128, 18], [42, "q2_0", 64, 18]],
  );
  assert.equal(ggmlType("q4_k").id, 12);
  assert.equal(ggmlType("Q4_K").id, 12);
  assert.equal(ggmlType(12).name, "q4_k");
  assert.equal(ggmlType(ggmlType(30)), ggmlType("bf16"));
  assert.deepEqual([ggmlType("iq4_xs").blockSize, ggmlType("iq4_xs").typeSize], [256, 136]);
  for (const bad of [4, 5, 31, 36, 43, -1, 1.5, "q4_2", "nf4", "fp4", ""]) {
    assert.throws(() => ggmlType(bad), TypeError, String(bad));
  }
  assert.equal(GGML_TYPES.some((t) => t.name === "nf4" || t.name === "fp4"), false);
});

Deno.test("registry: QUANT_TYPES are the types that quantize and dequantize", () => {
  assert.equal(QUANT_TYPES.length, 15);
  assert.deepEqual(
    GGML_TYPES.filter((t) => t.canQuantize).map((t) => t.name).sort(),
    [...QUANT_TYPES].sort(),
  );
  assert.deepEqual(
    GGML_TYPES.filter((t) => t.canDequantize).map((t) => t.name).sort(),
    [...QUANT_TYPES].sort(),
  );
  assert.ok(isQuantType("q6_k"));
  assert.ok(!isQuantType("q8_1"));
  assert.ok(!isQuantType("Q6_K"));
});

Deno.test("rowSize and quantizedSize", () => {
  assert.equal(rowSize("q4_k", 4096), 2304);
  assert.equal(rowSize("q8_0", 64), 68);
  assert.equal(rowSize("f32", 3), 12);
  assert.equal(rowSize(23, 512), 272);
  assert.equal(quantizedSize("iq4_nl", 96), 54);
  assert.throws(() => rowSize("q4_k", 100), RangeError);
  assert.throws(() => rowSize("q4_0", -32), RangeError);
  assert.throws(() => quantizedSize("q5_0", 33), RangeError);
  assert.throws(() => rowSize("zz", 32), TypeError);
});

Deno.test("quantize / dequantize round-trip every type with bounded error", () => {
  const x = gaussian(4096, 3, 1);
  // rough relative RMS error ceilings per type
  const ceiling: Record<string, number> = {
    f32: 0,
    f16: 1e-3,
    bf16: 5e-3,
    q8_0: 1e-2,
    q6_k: 2e-2,
    q5_0: 5e-2,
    q5_1: 5e-2,
    q5_k: 5e-2,
    q4_0: 0.12,
    q4_1: 0.12,
    q4_k: 0.1,
    iq4_nl: 0.1,
    iq4_xs: 0.1,
    q3_k: 0.25,
    q2_k: 0.45,
  };
  for (const type of QUANT_TYPES) {
    const bytes = quantize(type, x);
    assert.equal(bytes.length, rowSize(type, x.length), type);
    const back = dequantize(type, bytes, x.length);
    let e = 0, s = 0;
    for (let i = 0; i < x.length; i++) {
      e += (back[i] - x[i]) ** 2;
      s += x[i] ** 2;
    }
    const rel = Math.sqrt(e / s);
    assert.ok(rel <= ceiling[type], `${type}: relative RMS error ${rel}`);
    // the Into variants give the same
    const into = new Uint8Array(bytes.length);
    quantizeInto(type, x, into);
    assert.deepEqual(into, bytes, type);
    const out = new Float32Array(x.length);
    dequantizeInto(type, bytes, out);
    assert.deepEqual(out, back, type);
  }
  assert.deepEqual(dequantize("f32", quantize("f32", x), x.length), x);
});

Deno.test("errors: unknown or unsupported types, partial blocks, short buffers", () => {
  const x = new Float32Array(256);
  assert.throws(() => quantize("q4_2", x), TypeError);
  assert.throws(() => quantize("q8_1", x), /not supported/);
  assert.throws(() => quantize("iq2_xxs", x), TypeError);
  assert.throws(() => dequantize("mxfp4", new Uint8Array(17), 32), TypeError);
  assert.throws(() => quantize("q4_0", new Float32Array(33)), /multiple of the block size 32/);
  assert.throws(() => quantize("q4_k", new Float32Array(128)), RangeError);
  assert.throws(() => quantizeInto("q4_0", x, new Uint8Array(10)), RangeError);
  assert.throws(() => dequantize("q4_0", new Uint8Array(17), 32), RangeError);
  assert.throws(() => dequantize("q4_0", new Uint8Array(18), 31), RangeError);
  assert.throws(
    () => dequantizeInto("q6_k", new Uint8Array(210), new Float32Array(255)),
    RangeError,
  );
  assert.throws(
    () => quantize("q4_0", [1, 2] as unknown as Float32Array),
    TypeError,
  );
  // empty input is zero blocks
  assert.equal(quantize("q4_0", new Float32Array(0)).length, 0);
  assert.equal(dequantize("q4_k", new Uint8Array(0), 0).length, 0);
});
