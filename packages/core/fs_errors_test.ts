import assert from "node:assert/strict";
import { fsError } from "./fs_errors.ts";
import { QuantxError } from "./errors.ts";

Deno.test("fsError names the path and says the reason in plain words", () => {
  const cases: [string, RegExp][] = [
    ["ENOSPC", /^cannot write out\.gguf: no space left on device$/],
    ["EACCES", /^cannot write out\.gguf: permission denied$/],
    ["EROFS", /^cannot write out\.gguf: read-only file system$/],
    ["EDQUOT", /^cannot write out\.gguf: disk quota exceeded$/],
  ];
  for (const [code, message] of cases) {
    const cause = Object.assign(new Error(`${code}: raw`), { code });
    const e = fsError(cause, "cannot write out.gguf", "out.gguf");
    assert.ok(e instanceof QuantxError);
    assert.match(e.message, message);
    assert.equal(e.code, code);
    assert.equal(e.path, "out.gguf");
    assert.equal(e.cause, cause);
  }
  const unknown = fsError(new Error("something odd"), "cannot read x", "x");
  assert.equal(unknown.message, "cannot read x: something odd");
  const passthrough = new QuantxError("as it is", { code: "EEXIST" });
  assert.equal(fsError(passthrough, "ignored", "p"), passthrough);
});
