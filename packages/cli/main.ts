/**
 * Entry point: `deno run -A jsr:@quantx/cli <command> ...` or, from the checkout, `deno task quantx`.
 * Imported as a module it only exports {@link main}.
 * @module
 */
import { main } from "./mod.ts";

export * from "./mod.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
