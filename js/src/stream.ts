import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";

import type { Any } from "@bufbuild/protobuf/wkt";

import { Code, WsplexError, errorOf, type Status } from "./errors.js";
import { toMetadata, type Metadata, type MetadataInit } from "./metadata.js";

/** Limits of one stream. */
export interface StreamLimits {
  /** The largest message receive and messages accept. Default 4 MiB. */
  maxMessageSize: number;
}

/**
 * The session side of a stream: what a Stream asks of the Session that
 * carries it.
 */
export interface StreamHost {
  /** Sends a Data frame of length bytes, the concatenation of parts; at most the send window. */
  sendData(s: Stream, parts: Uint8Array[], length: number): void;
  sendFIN(s: Stream): void;
  sendReset(s: Stream, st: Status): void;
  /** The application consumed n bytes: the peer may send more. */
  consumed(s: Stream, n: number): void;
  /** The largest Data body to send at once. */
  readonly maxFrameBody: number;
  /** Whether the WebSocket holds too much unsent: writes wait for drained. */
  congested(): boolean;
  drained(): Promise<void>;
  /** Whether the WebSocket holds enough unsent that a write should wait for nextTask. */
  backlogged(): boolean;
  nextTask(): Promise<void>;
}

/**
 * Stream is one named stream of a Session: protobuf messages with send and
 * receive (or messages), or raw bytes with readable and writable. Get one
 * from Session.open, or as a handler's argument for a stream the server
 * opened. Every stream must be closed (close, cancel or reset); a handler's
 * stream is closed when the handler settles.
 */
export class Stream {
  /** Request metadata: what the opener sent. */
  metadata: Metadata = new Map();
  /**
   * Response metadata: what the acceptor answered (opening side); on the
   * accepting side, what a handler that answers the open itself
   * (HandleOptions.answersOpen) answers with, until it answered.
   */
  responseMetadata: Metadata = new Map();
  /** Values of the pattern's wildcards, for streams a handler serves. */
  params: Record<string, string> = {};
  /** The stream's name, such as "/chat/room/42". */
  name = "";

  // Receiving: a queue of chunks read from qHead on, so that taking from
  // the front costs nothing however long the queue is.
  private queue: Uint8Array[] = [];
  private qHead = 0;
  private queued = 0;
  private tail: Uint8Array | undefined; // owned buffer that small bodies are packed into
  private waiters: (() => void)[] = [];
  private remoteFIN = false;
  private remoteStatus: Status | undefined; // from a reset frame
  private sawEOF = false;

  // Sending.
  private sendWindow: number;
  private windowWaiters: (() => void)[] = [];
  private localFIN = false;
  private localStatus: Status | undefined; // a reset this side sent

  private failure: WsplexError | undefined; // refused, session ended
  private dropped = false; // by a yamux RST: nothing more goes on the wire
  private closed = false; // close was called
  private cleanups: (() => void)[] = [];
  private readonly abort = new AbortController();
  // The opener's side: the peer's answer (SPEC.md §6.4), taken from the
  // stream's first bytes as soon as they are all in, while the
  // application may already write. Reads wait for it while it is pending.
  private answer: Promise<void> | undefined;
  private answering: Answering | undefined;
  private answered = true; // false from expectAnswer until an OK answer
  // The accepting side's answer, when its handler answers the open
  // itself: it leaves with the first write, closeWrite or respond, or
  // carries the status of a reset before those (SPEC.md §13.3).
  private pendingAnswer: AnswerEncoder | undefined;

  /** @internal */
  constructor(
    readonly id: number,
    private readonly host: StreamHost,
    initialWindow: number,
    private readonly limits: StreamLimits,
  ) {
    this.sendWindow = initialWindow;
  }

  /**
   * The trailers the peer ended the stream with (a reset's status, OK or
   * not), once reading ended; empty before, or if it sent none.
   */
  get trailers(): Metadata {
    return new Map(this.remoteStatus?.trailers);
  }

  /**
   * response waits for the peer's answer to the open and returns its
   * response metadata. It throws what the first read would: a WsplexError
   * with the peer's status and metadata when it refused the stream. A
   * stream the server opened has no answer to wait for.
   */
  async response(): Promise<Metadata> {
    if (this.answer) await this.answer;
    if (!this.answered) throw this.readError() ?? new WsplexError(Code.CANCELED, "stream ended before the answer");
    return this.responseMetadata;
  }

  /**
   * @internal expectAnswer makes the stream take the peer's answer from
   * its first bytes: parse gets the answer's bytes and throws a refusal
   * (remote) or a malformed answer (not remote). Reads wait for it and
   * fail as it fails; a signal that aborted the stream before the answer
   * fails them with its reason.
   */
  expectAnswer(limit: number, parse: (body: Uint8Array) => void, signal?: AbortSignal): void {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    this.answer = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.answer.catch(() => {}); // reads and response report it
    this.answered = false;
    this.answering = { limit, parse, signal, resolve, reject };
    this.checkAnswer();
  }

  /** @internal deferAnswer makes the accepting side answer the open when it first writes or ends. */
  deferAnswer(encode: AnswerEncoder): void {
    this.pendingAnswer = encode;
  }

  /**
   * respond answers the open of a stream the server opened, with Code.OK
   * and responseMetadata, if its handler answers the open itself
   * (HandleOptions.answersOpen) and has not answered yet; the first
   * write or closeWrite answers too. Otherwise it does nothing.
   */
  respond(): void {
    this.answerNow(undefined);
  }

  /**
   * answerNow sends the pending answer: Code.OK, or the status st of a
   * reset that ends the stream before it answered. The answer is the
   * stream's first data, within the window every stream starts with, so
   * it goes out at once, ahead of anything written after.
   */
  private answerNow(st: Status | undefined): void {
    const encode = this.pendingAnswer;
    if (!encode) return;
    this.pendingAnswer = undefined;
    if (this.writeError()) return; // nothing can go out, or the peer reads no answer
    const { bytes, refused } = encode(st, this.responseMetadata);
    for (let off = 0; off < bytes.length; ) {
      const n = Math.min(bytes.length - off, this.host.maxFrameBody);
      this.sendWindow = Math.max(0, this.sendWindow - n);
      this.host.sendData(this, [bytes.subarray(off, off + n)], n);
      off += n;
    }
    if (refused) this.reset(refused.code, refused.message);
  }

  /**
   * checkAnswer takes the answer if all its bytes are in, or settles it
   * if the stream ended first (SPEC.md §6.4).
   */
  private checkAnswer(): void {
    const a = this.answering;
    if (!a) return;
    const settle = (err?: unknown) => {
      this.answering = undefined;
      if (err === undefined) {
        this.answer = undefined;
        a.resolve();
      } else a.reject(err);
    };
    if (this.closed || this.localStatus) {
      // Ended by this side: reads report that, or the signal's reason.
      settle(a.signal?.aborted ? a.signal.reason : undefined);
      return;
    }
    const len = this.peekLength();
    if (len === "malformed" || (len && len.size > a.limit)) {
      const err =
        len === "malformed"
          ? this.malformed("open response length does not fit in 32 bits")
          : new WsplexError(Code.RESOURCE_EXHAUSTED, `open response of ${len.size} bytes exceeds ${a.limit}`);
      settle(err);
      this.reset(err.code, err.rawMessage);
      return;
    }
    if (len && this.queued >= len.prefix + len.size) {
      this.takeBytes(len.prefix);
      const body = this.takeBytes(len.size);
      try {
        a.parse(body);
      } catch (e) {
        const err = e instanceof WsplexError ? e : new WsplexError(Code.INTERNAL, String(e));
        settle(err);
        if (err.remote) this.refuse(err); // the peer resets the stream itself
        else this.reset(err.code, err.rawMessage);
        return;
      }
      this.answered = true;
      settle();
      return;
    }
    let err: WsplexError | undefined = this.failure;
    const rs = this.remoteStatus;
    if (!err && rs && rs.code !== Code.OK) err = errorOf(rs, { remote: true });
    if (!err && this.remoteFIN) {
      if (this.queued === 0) err = new WsplexError(Code.UNAVAILABLE, "peer ended the stream without answering", { remote: true });
      else {
        err = new WsplexError(Code.INVALID_ARGUMENT, "malformed open response: cut short by the end of the stream");
        settle(err);
        this.reset(err.code, err.rawMessage);
        return;
      }
    }
    if (err) {
      settle(err);
      this.refuse(err);
    }
  }

  /** peekLength decodes the length prefix at the head of the queue, if all of it is in. */
  private peekLength(): { prefix: number; size: number } | "malformed" | undefined {
    let size = 0;
    let prefix = 0;
    for (let i = this.qHead; i < this.queue.length; i++) {
      for (const byte of this.queue[i]!) {
        if (prefix === 4 && byte > 0x0f) return "malformed";
        size += (byte & 0x7f) * 2 ** (7 * prefix);
        prefix++;
        if (byte < 0x80) return { prefix, size };
      }
    }
    return undefined;
  }

  /** takeBytes removes n buffered bytes, as many as are queued at least. */
  private takeBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; ) {
      const head = this.queue[this.qHead]!;
      const k = Math.min(head.length, n - off);
      out.set(head.subarray(0, k), off);
      this.take(k);
      off += k;
    }
    return out;
  }

  /**
   * refuse ends the stream with the peer's refusal or what kept its
   * answer from coming: reads and writes fail with err, and only a FIN
   * goes out, once the frames that came with the cause are handled (a
   * reset frame then a yamux RST, a refusal at the SYN, takes none).
   */
  private refuse(err: WsplexError): void {
    if (this.closed || this.localStatus) return;
    if (!this.failure) {
      this.failure = err;
      this.abort.abort(err);
    }
    queueMicrotask(() => this.finish(false));
  }

  /** An AbortSignal that fires when the stream is reset, refused or its session ends. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  // --- events from the session ---

  /** @internal */
  onData(body: Uint8Array): void {
    if (!this.acceptsData) return; // discarded: after a reset, or once released

    this.queued += body.length;
    if (body.length < SMALL) {
      // Pack small bodies together: a chunk each would cost far more than
      // its bytes, and pin the whole WebSocket message it came in.
      this.pack(body);
    } else {
      this.queue.push(body.length * 4 < body.buffer.byteLength ? body.slice() : body);
    }
    this.checkAnswer();
    this.notify();
  }

  /** pack appends a small body to the last chunk if it is the tail buffer's. */
  private pack(body: Uint8Array): void {
    const last = this.queue.length > this.qHead ? this.queue[this.queue.length - 1]! : undefined;
    const t = this.tail;
    if (last && t && last.buffer === t.buffer && last.byteOffset + last.length + body.length <= t.byteOffset + t.length &&
        last.byteOffset + last.length === this.tailEnd) {
      t.set(body, this.tailEnd - t.byteOffset);
      this.tailEnd += body.length;
      this.queue[this.queue.length - 1] = new Uint8Array(t.buffer, last.byteOffset, last.length + body.length);
      return;
    }
    this.tail = new Uint8Array(TAIL_SIZE);
    this.tail.set(body);
    this.tailEnd = this.tail.byteOffset + body.length;
    this.queue.push(this.tail.subarray(0, body.length));
  }

  private tailEnd = 0;

  /** @internal */
  onWindowUpdate(delta: number): void {
    this.sendWindow += delta;
    const waiters = this.windowWaiters;
    this.windowWaiters = [];
    for (const w of waiters) w();
  }

  /** @internal */
  onFIN(): void {
    this.remoteFIN = true;
    this.checkAnswer();
    this.notify();
  }

  /**
   * @internal The peer's reset frame. Only the first counts, and none
   * after this side reset or released the stream (SPEC.md §5).
   */
  onReset(st: Status): void {
    if (this.remoteStatus || this.localStatus || this.failure || this.closed) return;
    this.remoteStatus = st;
    if (st.code !== Code.OK) this.abort.abort(errorOf(st, { remote: true }));
    this.checkAnswer();
    this.notify();
    this.onWindowUpdate(0);
  }

  /** @internal */
  onFail(err: WsplexError): void {
    if (this.failure) return;
    this.failure = err;
    this.abort.abort(err);
    this.checkAnswer();
    this.notify();
    this.onWindowUpdate(0);
    this.cleanup();
  }

  /**
   * @internal A yamux RST: the stream ends at once in both directions,
   * its buffered data dropped, and no FIN follows. It reports the status
   * of the peer's reset frame just before it (a refusal at the SYN), if
   * any, or UNAVAILABLE (SPEC.md §4.7).
   */
  onRST(): void {
    this.dropped = true;
    this.localFIN = this.remoteFIN = true;
    this.drop();
    const rs = this.remoteStatus;
    if (rs?.code === Code.OK) {
      // Reads end cleanly, writes fail: as after the reset alone.
      this.checkAnswer();
      this.notify();
      this.onWindowUpdate(0);
      return;
    }
    this.onFail(rs ? errorOf(rs, { remote: true }) : new WsplexError(Code.UNAVAILABLE, "stream refused by peer", { remote: true }));
  }

  /** @internal Runs fn once the stream is done on this side. */
  onDone(fn: () => void): void {
    if (this.closed || this.failure || this.localStatus) fn();
    else this.cleanups.push(fn);
  }

  private cleanup(): void {
    const fns = this.cleanups;
    this.cleanups = [];
    for (const fn of fns) fn();
  }

  /** @internal Whether this side is done with the stream in both directions. */
  get finishedLocally(): boolean {
    return this.localFIN;
  }

  /** @internal */
  get finishedRemotely(): boolean {
    return this.remoteFIN;
  }

  /**
   * @internal Whether data the peer sends is still wanted: not after a
   * reset either way, the peer's FIN, or close. No window is granted
   * for a stream that wants none.
   */
  get acceptsData(): boolean {
    return !this.localStatus && !this.remoteStatus && !this.failure && !this.closed && !this.remoteFIN;
  }

  /** @internal Whether the peer closed the stream with a CODE_OK reset: it reads no more. */
  get peerClosed(): boolean {
    return this.remoteStatus?.code === Code.OK;
  }

  private notify(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  // --- reading ---

  private readError(): WsplexError | undefined {
    if (this.localStatus && this.localStatus.code !== Code.OK) return errorOf(this.localStatus);
    if (this.failure) return this.failure;
    if (this.closed) return new WsplexError(Code.CANCELED, "read after close");
    return undefined;
  }

  /**
   * fill waits until bytes are buffered and reports true, or false at the
   * end of the stream. It throws a WsplexError when the stream was reset
   * with a status, refused, or its session ended.
   */
  private async fill(): Promise<boolean> {
    for (;;) {
      const err = this.readError();
      if (err) throw err;
      if (this.queue.length > this.qHead) return true;
      const rs = this.remoteStatus;
      if (rs && rs.code !== Code.OK) throw errorOf(rs, { remote: true });
      if (this.remoteFIN || this.localStatus) {
        this.sawEOF = true;
        return false;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** take removes n bytes from the head chunk, and lets the peer send as many more. */
  private take(n: number): void {
    const head = this.queue[this.qHead]!;
    if (n === head.length) {
      this.qHead++;
      if (this.qHead === this.queue.length) {
        this.queue = [];
        this.qHead = 0;
      } else if (this.qHead >= 1024 && this.qHead * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.qHead);
        this.qHead = 0;
      }
    } else {
      this.queue[this.qHead] = head.subarray(n);
    }
    this.queued -= n;
    this.host.consumed(this, n);
  }

  /**
   * read returns the next bytes that arrived, or null at the end of the
   * stream. It throws a WsplexError when the stream was reset with a
   * status, refused, or its session ended.
   */
  async read(): Promise<Uint8Array | null> {
    if (this.answer) await this.answer;
    for (;;) {
      if (!(await this.fill())) return null;
      const chunk = this.queue[this.qHead];
      if (!chunk) continue; // a concurrent read took it
      this.take(chunk.length);
      return chunk;
    }
  }

  /**
   * readExactly returns n bytes, or null at a clean end before the first.
   * It allocates as the bytes arrive, not up front: a length prefix alone
   * costs nothing.
   */
  private async readExactly(n: number): Promise<Uint8Array | null> {
    const parts: Uint8Array[] = [];
    let off = 0;
    while (off < n) {
      if (!(await this.fill())) {
        if (off === 0) return null;
        throw this.malformed("message cut short by the end of the stream");
      }
      const head = this.queue[this.qHead];
      if (!head) continue; // a concurrent read took it
      const k = Math.min(head.length, n - off);
      parts.push(k === head.length ? head : head.slice(0, k));
      this.take(k);
      off += k;
    }
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /**
   * @internal readDelimited reads one length-delimited message's bytes,
   * or null at a clean end, without waiting for the answer.
   */
  async readDelimited(limit: number): Promise<Uint8Array | null> {
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = await this.readExactly(1);
      if (!b) {
        if (shift === 0) return null;
        throw this.malformed("message length cut short by the end of the stream");
      }
      const byte = b[0]!;
      if (shift === 28 && byte > 0x0f) throw this.malformed("message length does not fit in 32 bits");
      size += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    if (size > limit) {
      const err = new WsplexError(Code.RESOURCE_EXHAUSTED, `received message of ${size} bytes exceeds the ${limit}-byte limit`);
      this.reset(err.code, err.rawMessage);
      throw err;
    }
    const body = await this.readExactly(size);
    if (!body) throw this.malformed("message cut short by the end of the stream");
    return body;
  }

  private malformed(what: string): WsplexError {
    const err = new WsplexError(Code.INVALID_ARGUMENT, `malformed message: ${what}`);
    this.reset(err.code, err.rawMessage);
    return err;
  }

  /**
   * receive reads the next message, or returns null when the peer ended
   * its side cleanly between messages. It throws a WsplexError for a
   * message over maxMessageSize (RESOURCE_EXHAUSTED) or one that does not
   * decode (INVALID_ARGUMENT), after resetting the stream, and for a reset
   * or refused stream.
   */
  async receive<Desc extends DescMessage>(schema: Desc): Promise<MessageShape<Desc> | null> {
    const bytes = await this.receiveBytes();
    if (!bytes) return null;
    try {
      return fromBinary(schema, bytes);
    } catch (e) {
      throw this.malformed(e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * receiveBytes reads the next message's bytes, undecoded, or returns
   * null when the peer ended its side cleanly between messages; it fails
   * as receive does, for messages in an encoding of the application's.
   */
  async receiveBytes(): Promise<Uint8Array | null> {
    if (this.answer) await this.answer;
    return this.readDelimited(this.limits.maxMessageSize);
  }

  /** @internal malformedMessage resets the stream with INVALID_ARGUMENT and returns the error. */
  malformedMessage(why: string): WsplexError {
    return this.malformed(why);
  }

  /** messages yields every message the peer sends, until it ends its side. */
  async *messages<Desc extends DescMessage>(schema: Desc): AsyncGenerator<MessageShape<Desc>, void, undefined> {
    for (;;) {
      const m = await this.receive(schema);
      if (m === null) return;
      yield m;
    }
  }

  // --- writing ---

  private writeError(): WsplexError | undefined {
    if (this.failure) return this.failure;
    if (this.closed) return new WsplexError(Code.CANCELED, "write after close");
    if (this.localStatus) {
      return new WsplexError(this.localStatus.code === Code.OK ? Code.CANCELED : this.localStatus.code, this.localStatus.message || "stream closed");
    }
    const rs = this.remoteStatus;
    if (rs) return rs.code === Code.OK ? new WsplexError(Code.CANCELED, "peer closed the stream", { remote: true }) : errorOf(rs, { remote: true });
    if (this.localFIN) return new WsplexError(Code.CANCELED, "write after closeWrite");
    return undefined;
  }

  /**
   * write sends bytes, waiting while the peer's window is full (a peer
   * that does not read makes write wait) and while the WebSocket holds
   * more than SessionOptions.maxBufferedAmount unsent. What it does not
   * wait for is queued before it returns its promise.
   */
  async write(data: Uint8Array): Promise<void> {
    await this.writeParts([data]);
  }

  /**
   * writeParts writes the concatenation of parts, as write does, without
   * joining them first: each frame copies its share of them once.
   */
  private async writeParts(parts: Uint8Array[]): Promise<void> {
    this.answerNow(undefined);
    let left = 0;
    for (const p of parts) left += p.length;
    const total = left;
    let i = 0; // parts[i] from off on is what is left
    let off = 0;
    while (left > 0) {
      const err = this.writeError();
      if (err) throw err;
      if (this.sendWindow === 0) {
        await new Promise<void>((resolve) => this.windowWaiters.push(resolve));
        continue;
      }
      if (this.host.congested()) {
        await this.host.drained();
        continue;
      }
      const n = Math.min(left, this.sendWindow, this.host.maxFrameBody);
      const frame: Uint8Array[] = [];
      for (let k = n; k > 0; ) {
        const p = parts[i]!;
        const m = Math.min(p.length - off, k);
        frame.push(m === p.length ? p : p.subarray(off, off + m));
        k -= m;
        off += m;
        if (off === p.length) {
          i++;
          off = 0;
        }
      }
      this.sendWindow -= n;
      this.host.sendData(this, frame, n);
      left -= n;
    }
    const err = this.writeError();
    if (err && total === 0) throw err;
    // All of it is queued. A caller that awaits each write would queue
    // the next at once, in the same task; while the WebSocket holds a
    // backlog, let the event loop turn first (Session.backlogged).
    if (this.host.backlogged()) await this.host.nextTask();
  }

  /** send writes one length-delimited message. */
  async send<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Promise<void> {
    await this.sendBytes(toBinary(schema, message));
  }

  /**
   * sendBytes writes one message already encoded, length-delimited; as
   * send, it refuses one over maxMessageSize.
   */
  async sendBytes(body: Uint8Array): Promise<void> {
    if (body.length > this.limits.maxMessageSize) {
      throw new WsplexError(Code.RESOURCE_EXHAUSTED, `message of ${body.length} bytes exceeds the ${this.limits.maxMessageSize}-byte limit`);
    }
    await this.writeParts([new BinaryWriter().uint32(body.length).finish(), body]);
  }

  /**
   * closeWrite ends the sending side: the peer reads the end of the
   * stream. Writes waiting for window fail.
   */
  closeWrite(): void {
    if (this.localFIN) return;
    this.answerNow(undefined);
    if (this.localFIN) return; // the answer failed the stream
    this.localFIN = true;
    this.host.sendFIN(this);
    this.onWindowUpdate(0);
  }

  /**
   * close releases the stream; pending and later reads and writes fail. If
   * the peer's side was not read to its end, the peer is told that no more
   * will be read (its writes fail), as a Go Close does.
   */
  close(): void {
    this.finish(true);
  }

  /** @internal finish closes; tell says whether an unread peer is told with a CODE_OK reset. */
  finish(tell: boolean): void {
    if (this.closed) return;
    if (tell) this.answerNow(undefined);
    if (tell && !this.dropped && !this.sawEOF && !this.localStatus && !this.remoteStatus && !this.failure) {
      this.localStatus = { code: Code.OK, message: "", details: [], trailers: new Map() };
      this.host.sendReset(this, this.localStatus);
    }
    this.closed = true;
    if (!this.dropped) this.closeWrite();
    this.drop();
    this.checkAnswer();
    this.notify();
    this.onWindowUpdate(0);
    this.cleanup();
  }

  /**
   * reset ends the stream with a status the peer sees, and releases it:
   * the peer's reads end with it after the data sent before, and its
   * writes fail. With Code.OK the peer reads a clean end of stream (and
   * the trailers); details say more about an error, as in
   * google.rpc.Status.
   */
  reset(code: Code, message = "", opts: { details?: Any[]; trailers?: MetadataInit } = {}): void {
    if (this.localStatus || this.failure || this.closed) {
      if (!this.dropped) this.closeWrite();
      return;
    }
    const st: Status = { code, message, details: opts.details ?? [], trailers: toMetadata(opts.trailers) };
    // A status before the answer goes in the answer too (SPEC.md §13.3);
    // a clean end is answered Code.OK first.
    this.answerNow(code === Code.OK ? undefined : st);
    if (this.localStatus) return; // the answer failed the stream
    this.localStatus = st;
    if (code !== Code.OK) this.abort.abort(errorOf(this.localStatus));
    // After the peer's reset, only the FIN goes out (SPEC.md §5).
    if (!this.remoteStatus) this.host.sendReset(this, this.localStatus);
    this.closeWrite();
    this.drop();
    this.checkAnswer();
    this.notify();
    this.onWindowUpdate(0);
    this.cleanup();
  }

  /** cancel resets the stream with Code.CANCELED. */
  cancel(): void {
    this.reset(Code.CANCELED, "canceled");
  }

  /** drop discards what is buffered; the window it held goes back to the peer. */
  private drop(): void {
    const n = this.queued;
    this.queue = [];
    this.qHead = 0;
    this.queued = 0;
    this.tail = undefined;
    if (n > 0) this.host.consumed(this, n);
  }

  // --- web streams ---

  private rs: ReadableStream<Uint8Array> | undefined;
  private ws: WritableStream<Uint8Array> | undefined;

  /** readable is the stream's incoming bytes; cancelling it closes the stream. */
  get readable(): ReadableStream<Uint8Array> {
    this.rs ??= new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const chunk = await this.read();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
        cancel: () => this.close(),
      },
      { highWaterMark: 0 },
    );
    return this.rs;
  }

  /** writable sends bytes; closing it half-closes the stream, aborting it cancels the stream. */
  get writable(): WritableStream<Uint8Array> {
    this.ws ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.closeWrite(),
      abort: () => this.cancel(),
    });
    return this.ws;
  }
}

/**
 * AnswerEncoder returns the delimited answer to an open: Code.OK, or the
 * status st, with response metadata md; refused is set when it refuses
 * although asked to accept (response metadata too large).
 */
export type AnswerEncoder = (st: Status | undefined, md: Metadata) => { bytes: Uint8Array; refused?: Status };

/** Answering is an answer to an open that a Stream waits for. */
interface Answering {
  limit: number;
  parse: (body: Uint8Array) => void;
  signal: AbortSignal | undefined;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Bodies under SMALL bytes are packed into TAIL_SIZE buffers. */
const SMALL = 1024;
const TAIL_SIZE = 16 * 1024;
