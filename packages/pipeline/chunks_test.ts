import assert from "node:assert/strict";
import { SpareBuffers } from "./chunks.ts";

Deno.test("SpareBuffers: exact sizes only, at most `max` kept, oldest dropped first", () => {
  const spare = new SpareBuffers(2);
  const a = new ArrayBuffer(8), b = new ArrayBuffer(16), c = new ArrayBuffer(8);
  spare.give(a);
  spare.give(undefined);
  spare.give(new ArrayBuffer(0));
  assert.equal(spare.take(16), undefined);
  assert.equal(spare.take(8), a);
  assert.equal(spare.take(8), undefined, "a taken buffer is no longer kept");
  spare.give(a);
  spare.give(b);
  spare.give(c); // over max: a goes
  assert.equal(spare.take(8), c);
  assert.equal(spare.take(8), undefined);
  assert.equal(spare.take(16), b);
});
