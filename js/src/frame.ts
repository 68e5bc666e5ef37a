// yamux frames as wsplex uses them (SPEC.md §4, §5).

export const HEADER_SIZE = 12;

export const TYPE_DATA = 0;
export const TYPE_WINDOW_UPDATE = 1;
export const TYPE_PING = 2;
export const TYPE_GO_AWAY = 3;
/** wsplex's own frame: a stream's end with a status (SPEC.md §5). */
export const TYPE_RESET = 4;

export const FLAG_SYN = 0x1;
export const FLAG_ACK = 0x2;
export const FLAG_FIN = 0x4;
export const FLAG_RST = 0x8;

/** Every stream's window before any Window Update: 256 KiB. */
export const INITIAL_WINDOW = 256 * 1024;

/** The largest body of a wsplex reset frame (SPEC.md §5). */
export const MAX_RESET_BODY = 16384;

const EMPTY = new Uint8Array(0);

export interface Header {
  type: number;
  flags: number;
  streamID: number;
  /** Data: body length; Window Update: delta; Ping: opaque; Go Away: code. */
  length: number;
}

export interface Frame extends Header {
  /** The body of a Data or Reset frame; empty for other types. */
  body: Uint8Array;
  /**
   * A Data body over the reader's limit is skipped, not buffered: body is
   * empty, and length says how long it was.
   */
  skipped?: boolean;
}

/** ProtocolError is a violation of the wire protocol by the peer. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** encodeFrame returns a frame's bytes: the header, then body if any. */
export function encodeFrame(h: Header, body?: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + (body?.length ?? 0));
  writeHeader(out, { ...h, length: body ? body.length : h.length });
  if (body) out.set(body, HEADER_SIZE);
  return out;
}

/** writeHeader writes h into the first HEADER_SIZE bytes of out. */
export function writeHeader(out: Uint8Array, h: Header): void {
  const v = new DataView(out.buffer, out.byteOffset, HEADER_SIZE);
  v.setUint8(0, 0);
  v.setUint8(1, h.type);
  v.setUint16(2, h.flags);
  v.setUint32(4, h.streamID);
  v.setUint32(8, h.length);
}

/**
 * FrameReader turns the concatenated payloads of the WebSocket's binary
 * messages into frames. Message boundaries mean nothing: a frame may be
 * split anywhere, and one message may hold several frames (SPEC.md §3).
 */
export class FrameReader {
  // Chunks are read from head on; taking from the front must not cost
  // time proportional to how many wait, or one-byte messages would make
  // a frame quadratic.
  private chunks: Uint8Array[] = [];
  private head = 0;
  private buffered = 0;
  private header: Header | undefined;
  private skip = 0; // bytes of a skipped body still to come

  /**
   * @param maxBody bounds the Data bodies buffered, so that a peer cannot
   * make the reader hold more than that: a longer one is skipped as it
   * arrives (Frame.skipped). The session checks every body against its
   * stream's receive window.
   */
  constructor(private readonly maxBody: number) {}

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** next returns the next complete frame, or undefined until more arrives. */
  next(): Frame | undefined {
    if (this.skip > 0) {
      const n = Math.min(this.skip, this.buffered);
      this.take(n, false);
      this.skip -= n;
      if (this.skip > 0) return undefined;
    }
    if (!this.header) {
      if (this.buffered < HEADER_SIZE) return undefined;
      const b = this.take(HEADER_SIZE);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const version = v.getUint8(0);
      const type = v.getUint8(1);
      if (version !== 0) throw new ProtocolError(`frame with unknown version ${version}`);
      if (type > TYPE_RESET) throw new ProtocolError(`frame with unknown type ${type}`);
      const h: Header = { type, flags: v.getUint16(2), streamID: v.getUint32(4), length: v.getUint32(8) };
      if (h.type === TYPE_RESET) {
        if (h.streamID === 0) throw new ProtocolError("reset frame for stream 0");
        if (h.length > MAX_RESET_BODY) {
          throw new ProtocolError(`reset frame body of ${h.length} bytes exceeds ${MAX_RESET_BODY}`);
        }
      } else if (h.type === TYPE_DATA && h.length > this.maxBody) {
        // Beyond any window this side grants: fatal for a stream the
        // session knows, ignored for others, and never held.
        this.skip = h.length;
        return { ...h, body: EMPTY, skipped: true };
      }
      this.header = h;
    }
    const h = this.header;
    const size = h.type === TYPE_DATA || h.type === TYPE_RESET ? h.length : 0;
    if (this.buffered < size) return undefined;
    this.header = undefined;
    return { ...h, body: size > 0 ? this.take(size) : EMPTY };
  }

  /**
   * take removes the first n buffered bytes (n <= buffered) and returns
   * them, or only drops them if keep is false.
   */
  private take(n: number, keep = true): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[this.head];
    if (first && first.length >= n) {
      if (first.length === n) this.drop();
      else this.chunks[this.head] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = keep ? new Uint8Array(n) : EMPTY;
    let off = 0;
    while (off < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.length, n - off);
      if (keep) out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.drop();
      else this.chunks[this.head] = c.subarray(k);
    }
    return out;
  }

  /** drop removes the first chunk. */
  private drop(): void {
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
