/**
 * JSON helpers for headers and index files: parse UTF-8 bytes with byte-exact error offsets, and
 * list an object's members in file order with the byte offset of each key (JSON.parse reorders
 * integer-like keys and silently keeps the last of duplicate keys; this keeps neither secret).
 * Internal to `@quantx/safetensors`.
 * @module
 */
import { FormatError } from "@quantx/core";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Index of the first byte of an invalid UTF-8 sequence in `b`, or -1 when it is all valid. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number, min: number;
    if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/**
 * Parse JSON from UTF-8 `bytes` that start at byte `base` of `file`. Invalid UTF-8 and syntax
 * errors become a {@link FormatError} at the byte where the problem is.
 */
export function parseJsonBytes(bytes: Uint8Array, file: string, base: number): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    const at = Math.max(0, firstInvalidUtf8(bytes));
    throw new FormatError("JSON is not valid UTF-8", { file, offset: base + at });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    // JSON.parse does not always say where; find the first syntax error ourselves.
    const found = jsonSyntaxError(bytes);
    if (found) {
      throw new FormatError(`invalid JSON: ${found.reason}`, { file, offset: base + found.pos });
    }
    const message = e instanceof Error ? e.message : String(e);
    throw new FormatError(`invalid JSON: ${message}`, { file, offset: base + bytes.byteLength });
  }
}

const CLOSE: Record<number, string> = { 0x7b: "}", 0x5b: "]" };

function describe(c: number | undefined): string {
  if (c === undefined) return "end of JSON";
  return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16)}`;
}

const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;
const isHex = (c: number | undefined) =>
  c !== undefined && ((c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66));

/** End of the string starting at `b[i] === '"'`, or the error inside it. */
function scanString(b: Uint8Array, i: number): number | { pos: number; reason: string } {
  let j = i + 1;
  while (j < b.length) {
    const c = b[j];
    if (c === 0x22) return j + 1;
    if (c < 0x20) return { pos: j, reason: "control character in string" };
    if (c === 0x5c) {
      const e = b[j + 1];
      if (e === 0x75) {
        for (let k = 2; k < 6; k++) {
          if (!isHex(b[j + k])) return { pos: j, reason: "bad \\u escape in string" };
        }
        j += 6;
      } else if (e !== undefined && '"\\/bfnrt'.includes(String.fromCharCode(e))) j += 2;
      else return { pos: j, reason: "bad escape in string" };
    } else j++;
  }
  return { pos: i, reason: "unterminated string" };
}

/** End of the number starting at `i`, or the error inside it. */
function scanNumber(b: Uint8Array, i: number): number | { pos: number; reason: string } {
  let j = i;
  if (b[j] === 0x2d) j++;
  if (b[j] === 0x30) j++;
  else if (isDigit(b[j])) { while (isDigit(b[j])) j++; }
  else return { pos: j, reason: `${describe(b[j])} in a number` };
  if (b[j] === 0x2e) {
    j++;
    if (!isDigit(b[j])) return { pos: j, reason: `${describe(b[j])} after a decimal point` };
    while (isDigit(b[j])) j++;
  }
  if (b[j] === 0x65 || b[j] === 0x45) {
    j++;
    if (b[j] === 0x2b || b[j] === 0x2d) j++;
    if (!isDigit(b[j])) return { pos: j, reason: `${describe(b[j])} in an exponent` };
    while (isDigit(b[j])) j++;
  }
  return j;
}

/**
 * The first syntax error in JSON `b` (byte index and reason), or undefined when it is valid JSON.
 * Iterative (no recursion), so any nesting depth is fine.
 */
export function jsonSyntaxError(b: Uint8Array): { pos: number; reason: string } | undefined {
  const stack: number[] = [];
  let state: "value" | "firstValue" | "key" | "firstKey" | "colon" | "after" = "value";
  let i = 0;
  for (;;) {
    i = skipWs(b, i);
    const c = b[i] as number | undefined;
    switch (state) {
      case "value":
      case "firstValue": {
        if (state === "firstValue" && c === 0x5d) {
          stack.pop();
          i++;
          state = "after";
          break;
        }
        if (c === 0x7b || c === 0x5b) {
          stack.push(c);
          i++;
          state = c === 0x7b ? "firstKey" : "firstValue";
          break;
        }
        let end: number | { pos: number; reason: string };
        if (c === 0x22) end = scanString(b, i);
        else if (c === 0x2d || isDigit(c)) end = scanNumber(b, i);
        else {
          const word = ["true", "false", "null"].find((w) =>
            [...w].every((ch, k) => b[i + k] === ch.charCodeAt(0))
          );
          if (!word) {
            return { pos: i, reason: `unexpected ${describe(c)} where a value was expected` };
          }
          end = i + word.length;
        }
        if (typeof end !== "number") return end;
        i = end;
        state = "after";
        break;
      }
      case "firstKey":
      case "key": {
        if (state === "firstKey" && c === 0x7d) {
          stack.pop();
          i++;
          state = "after";
          break;
        }
        if (c !== 0x22) {
          return { pos: i, reason: `expected a property name in quotes, got ${describe(c)}` };
        }
        const end = scanString(b, i);
        if (typeof end !== "number") return end;
        i = end;
        state = "colon";
        break;
      }
      case "colon":
        if (c !== 0x3a) {
          return { pos: i, reason: `expected ':' after a property name, got ${describe(c)}` };
        }
        i++;
        state = "value";
        break;
      case "after": {
        if (stack.length === 0) {
          return c === undefined
            ? undefined
            : { pos: i, reason: `unexpected ${describe(c)} after the JSON value` };
        }
        const top = stack[stack.length - 1];
        if (c === 0x2c) {
          i++;
          state = top === 0x7b ? "key" : "value";
        } else if (c !== undefined && CLOSE[top] === String.fromCharCode(c)) {
          stack.pop();
          i++;
        } else {
          return { pos: i, reason: `expected ',' or '${CLOSE[top]}', got ${describe(c)}` };
        }
        break;
      }
    }
  }
}

/** One member of a JSON object as it appears in the bytes. */
export interface JsonMember {
  /** The key, unescaped. */
  key: string;
  /** Byte index of the key's opening quote. */
  keyPos: number;
  /** Byte index of the first byte of the value. */
  valuePos: number;
}

const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** Index of the first non-whitespace byte at or after `i`. */
export function skipWs(b: Uint8Array, i: number): number {
  while (i < b.length && isWs(b[i])) i++;
  return i;
}

function skipString(b: Uint8Array, i: number): number {
  i++;
  while (i < b.length && b[i] !== 0x22) i += b[i] === 0x5c ? 2 : 1;
  return i + 1;
}

function skipValue(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c === 0x22) return skipString(b, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    while (i < b.length) {
      const d = b[i];
      if (d === 0x22) {
        i = skipString(b, i);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return i;
  }
  while (i < b.length && b[i] !== 0x2c && b[i] !== 0x7d && b[i] !== 0x5d && !isWs(b[i])) i++;
  return i;
}

/**
 * The members of the object whose `{` is at byte `start` of `b`, in file order. `b` must be JSON
 * that `JSON.parse` accepted; the scan is linear and never recurses.
 */
export function scanMembers(b: Uint8Array, start: number): JsonMember[] {
  const out: JsonMember[] = [];
  let i = skipWs(b, start + 1);
  if (b[i] === 0x7d) return out;
  while (i < b.length) {
    i = skipWs(b, i);
    const keyPos = i;
    i = skipString(b, i);
    const key = JSON.parse(decoder.decode(b.subarray(keyPos, Math.min(i, b.length)))) as string;
    i = skipWs(b, i) + 1; // ':'
    const valuePos = skipWs(b, i);
    i = skipValue(b, valuePos);
    out.push({ key, keyPos, valuePos });
    i = skipWs(b, i);
    if (b[i] !== 0x2c) break;
    i++;
  }
  return out;
}

/** A short JSON rendering of `v` for error messages (depth, items and length are capped). */
export function brief(v: unknown): string {
  const s = render(v, 0);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function render(v: unknown, depth: number): string {
  if (Array.isArray(v)) {
    if (depth >= 2) return v.length ? "[...]" : "[]";
    const items = v.slice(0, 8).map((x) => render(x, depth + 1));
    if (v.length > 8) items.push(`... (${v.length} items)`);
    return `[${items.join(", ")}]`;
  }
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v);
    if (depth >= 2) return keys.length ? "{...}" : "{}";
    const rec = v as Record<string, unknown>;
    const items = keys.slice(0, 4).map((k) => `${render(k, 2)}: ${render(rec[k], depth + 1)}`);
    if (keys.length > 4) items.push("...");
    return `{${items.join(", ")}}`;
  }
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? v.slice(0, 80) : v);
  return String(v);
}

/** True for a plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
