/**
 * `deno task demo`: the main job on a built-in example. Makes a small deterministic checkpoint in
 * a temporary folder, quantizes it to GGUF with every type, reads each file back and prints what
 * it holds and the error of each type.
 *
 *   npx -y deno@2.9.6 task demo
 */
import { join } from "node:path";
import { createFileSink } from "@quantx/core";
import { writeSafetensors } from "@quantx/safetensors";
import { openGguf } from "@quantx/gguf";
import { diffWeights, inspectWeights, quantizeModel } from "@quantx/pipeline";

const TYPES = [
  "f16",
  "bf16",
  "q8_0",
  "q6_k",
  "q5_k",
  "q5_1",
  "q5_0",
  "q4_k",
  "q4_1",
  "q4_0",
  "iq4_nl",
  "iq4_xs",
  "q3_k",
  "q2_k",
];

/** Deterministic N(0, std) values (xorshift + Box-Muller). */
function normal(n: number, seed: number, std: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = std * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  }
  return out;
}

const dir = await Deno.makeTempDir({ prefix: "quantx-demo-" });
try {
  const tensors = [
    { name: "embed.weight", shape: [512, 256], std: 0.02 },
    { name: "layer.0.attn.weight", shape: [256, 256], std: 0.05 },
    { name: "layer.0.mlp.weight", shape: [768, 256], std: 0.03 },
    { name: "layer.0.norm.weight", shape: [256], std: 0.1 },
  ];
  const input = join(dir, "model.safetensors");
  const sink = await createFileSink(input);
  await writeSafetensors(
    sink,
    tensors.map((t, i) => ({
      name: t.name,
      dtype: "F32",
      shape: t.shape,
      data: new Uint8Array(normal(t.shape.reduce((a, b) => a * b), 1 + i, t.std).buffer),
    })),
  );
  const source = await inspectWeights(input);
  console.log(
    `example checkpoint: ${input}\n  ${source.tensors.length} tensors, ${source.parameters} parameters, ${source.fileSize} bytes\n`,
  );
  console.log("type     bits/w   bytes     tensors (by type)              rmse        SNR dB");
  for (const type of TYPES) {
    const output = join(dir, `model-${type}.gguf`);
    await quantizeModel(input, output, { type, card: false });
    const file = await openGguf(output);
    const counts: Record<string, number> = {};
    for (const t of file.tensors) counts[t.typeName] = (counts[t.typeName] ?? 0) + 1;
    await file.close();
    const info = await inspectWeights(output);
    const diff = await diffWeights(input, output);
    const byType = Object.entries(counts).map(([k, v]) => `${k}:${v}`).join(" ");
    console.log(
      `${type.padEnd(8)} ${info.bitsPerWeight.toFixed(2).padStart(6)}  ${
        String(info.fileSize).padStart(8)
      }  ${byType.padEnd(30)} ${diff.total.rmse.toExponential(3).padStart(10)}  ${
        Number.isFinite(diff.total.snrDb) ? diff.total.snrDb.toFixed(2).padStart(7) : "  exact"
      }`,
    );
  }
  console.log(
    `\nEach file was read back with @quantx/gguf and compared to the input tensor by tensor.`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
