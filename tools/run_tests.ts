/**
 * `deno task test`: set up the native references (tools/setup.ts), then run every test with
 * libggml preloaded. Preloading keeps the library mapped for the whole process: without it, each
 * test module's `Deno.dlopen` could unload and map it again, and ggml's one-time terminate-handler
 * check aborts on the second load. Extra arguments go to `deno test`
 * (e.g. `deno task test packages/kernels`).
 */
import { join } from "node:path";
import { LIBGGML_PATH } from "../tests/support/libggml.ts";

const root = join(new URL("..", import.meta.url).pathname);
const setup = await new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", join(root, "tools/setup.ts")],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!setup.success) Deno.exit(setup.code);

const test = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", "--parallel", ...Deno.args],
  cwd: root,
  env: { LD_PRELOAD: LIBGGML_PATH },
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
Deno.exit((await test.status).code);
