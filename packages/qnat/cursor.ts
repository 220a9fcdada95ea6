/**
 * A forward-only reader of little-endian fields over a {@link ByteSource}, buffered in chunks, that
 * turns every read past the end into a {@link FormatError} naming the field and its offset.
 * @module
 */
import { type ByteSource, FormatError } from "@quantx/core";

const CHUNK = 64 * 1024;

/** Sequential little-endian field reader used to parse QNAT headers. */
export class FieldCursor {
  /** Absolute offset of the next field. */
  pos = 0;
  readonly #source: ByteSource;
  #buf: Uint8Array = new Uint8Array(0);
  #bufStart = 0;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });

  /** Read `source` from offset `pos`. */
  constructor(source: ByteSource, pos = 0) {
    this.#source = source;
    this.pos = pos;
  }

  /** Throw a {@link FormatError} at `offset` (default: the current position). */
  fail(reason: string, offset = this.pos): never {
    throw new FormatError(reason, { file: this.#source.name, offset });
  }

  /** Bytes left in the file after the current position. */
  get remaining(): number {
    return this.#source.size - this.pos;
  }

  async #ensure(n: number, what: string): Promise<number> {
    if (n > this.remaining) {
      this.fail(`${what}: needs ${n} bytes but the file has ${Math.max(0, this.remaining)} left`);
    }
    const rel = this.pos - this.#bufStart;
    if (rel >= 0 && rel + n <= this.#buf.length) return rel;
    const length = Math.min(Math.max(n, CHUNK), this.remaining);
    this.#buf = await this.#source.read(this.pos, length);
    this.#bufStart = this.pos;
    return 0;
  }

  /** A little-endian u8. */
  async u8(what: string): Promise<number> {
    const at = await this.#ensure(1, what);
    this.pos += 1;
    return this.#buf[at];
  }

  /** A little-endian u32. */
  async u32(what: string): Promise<number> {
    const at = await this.#ensure(4, what);
    const b = this.#buf;
    this.pos += 4;
    return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
  }

  /** A little-endian u64 that must be a safe integer. */
  async u64(what: string): Promise<number> {
    const start = this.pos;
    const lo = await this.u32(what);
    const hi = await this.u32(what);
    if (hi > 0x1fffff) {
      this.fail(`${what}: value ${BigInt(hi) << 32n | BigInt(lo)} is too large`, start);
    }
    return hi * 2 ** 32 + lo;
  }

  /** `n` raw bytes (a copy). */
  async bytes(n: number, what: string): Promise<Uint8Array> {
    const at = await this.#ensure(n, what);
    this.pos += n;
    return this.#buf.slice(at, at + n);
  }

  /** A u32-length-prefixed UTF-8 string. */
  async string(what: string): Promise<string> {
    const start = this.pos;
    const length = await this.u32(`${what} length`);
    const bytes = await this.bytes(length, what);
    try {
      return this.#decoder.decode(bytes);
    } catch {
      return this.fail(`${what} is not valid UTF-8`, start + 4);
    }
  }
}
