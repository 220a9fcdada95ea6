import assert from "node:assert/strict";
import { FormatError } from "@quantx/core";
import {
  parseQuantState,
  pythonFloatRepr,
  quantStateBytes,
  quantStateJson,
} from "./quant_state.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const origin = {
  param: "model.layers.0.mlp.up_proj.weight",
  file: "model.safetensors",
  offset: 123,
};

Deno.test("quant_state JSON is byte-exact (DESIGN.md §3)", () => {
  assert.equal(
    quantStateJson({ quantType: "nf4", blockSize: 64, dtype: "bfloat16", shape: [2048, 8192] }),
    '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2048, 8192]}',
  );
  assert.equal(
    quantStateJson({
      quantType: "fp4",
      blockSize: 64,
      dtype: "float16",
      shape: [512, 2048],
      nested: { blockSize: 256, dtype: "float32", offset: Math.fround(0.05052706599235535) },
    }),
    '{"quant_type": "fp4", "blocksize": 64, "dtype": "float16", "shape": [512, 2048], ' +
      '"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.05052706599235535}',
  );
  const bytes = quantStateBytes({
    quantType: "nf4",
    blockSize: 64,
    dtype: "float32",
    shape: [1, 2],
  });
  assert.equal(
    new TextDecoder().decode(bytes),
    '{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [1, 2]}',
  );
});

Deno.test("pythonFloatRepr matches Python's repr(float)", () => {
  const cases: [number, string][] = [
    [6, "6.0"],
    [0, "0.0"],
    [-0, "-0.0"],
    [0.5, "0.5"],
    [-2.25, "-2.25"],
    [1e-4, "0.0001"],
    [1e-5, "1e-05"],
    [1.5e-7, "1.5e-07"],
    [123456.789, "123456.789"],
    [1e15, "1000000000000000.0"],
    [9999999999999998, "9999999999999998.0"],
    [1e16, "1e+16"],
    [1.2345678901234568e20, "1.2345678901234568e+20"],
    [1e100, "1e+100"],
    [5e-324, "5e-324"],
    [Math.fround(0.1), "0.10000000149011612"],
    [Math.fround(0.017920099), "0.017920099198818207"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    [-Infinity, "-Infinity"],
  ];
  for (const [x, want] of cases) assert.equal(pythonFloatRepr(x), want, `repr(${x})`);
});

Deno.test("parseQuantState reads what bitsandbytes writes", () => {
  const s = parseQuantState(
    enc(
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2048, 2048], ' +
        '"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.05052706599235535}',
    ),
    "nf4",
    origin,
  );
  assert.deepEqual(s, {
    quantType: "nf4",
    blockSize: 64,
    dtype: "bfloat16",
    shape: [2048, 2048],
    nested: { blockSize: 256, dtype: "float32", offset: Math.fround(0.05052706599235535) },
  });
  // round trip
  assert.equal(
    new TextDecoder().decode(quantStateBytes(s)),
    '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2048, 2048], ' +
      '"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.05052706599235535}',
  );
});

Deno.test("parseQuantState rejects bad quant_states with a FormatError naming the parameter", () => {
  const bad: [string, RegExp][] = [
    [
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 4], "extra": 1}',
      /unknown key "extra"/,
    ],
    ['{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16"}', /lacks "shape"/],
    [
      '{"quant_type": "fp4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 4]}',
      /quant_type "fp4"/,
    ],
    ['{"quant_type": "nf4", "blocksize": 0, "dtype": "bfloat16", "shape": [4, 4]}', /blocksize 0/],
    ['{"quant_type": "nf4", "blocksize": 64, "dtype": "int8", "shape": [4, 4]}', /dtype "int8"/],
    ['{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, -1]}', /shape/],
    ['{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": "4x4"}', /shape/],
    [
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 4], "nested_blocksize": 256}',
      /without nested_dtype, nested_offset/,
    ],
    [
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 4], "nested_blocksize": 256, ' +
      '"nested_dtype": "float32", "nested_offset": "x"}',
      /nested_offset/,
    ],
    ['{"quant_type": "nf4", "blocksize": 64,', /not valid JSON/],
    ["[1, 2]", /not a JSON object/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => parseQuantState(enc(text), "nf4", origin),
      (e: unknown) =>
        e instanceof FormatError && re.test(e.message) &&
        e.message.startsWith(
          'model.safetensors: at byte 123: parameter "model.layers.0.mlp.up_proj.weight"',
        ),
      text,
    );
  }
  assert.throws(
    () => parseQuantState(new Uint8Array([0xff, 0xfe]), "nf4", origin),
    /not valid UTF-8/,
  );
});
