import { create, fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire";

import { Code, WsplexError, encodeStatus, errorOf, status, statusFromProto, statusOf, type Status } from "./errors.js";
import {
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  FrameReader,
  HEADER_SIZE,
  INITIAL_WINDOW,
  ProtocolError,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_RESET,
  TYPE_WINDOW_UPDATE,
  encodeFrame,
  type Frame,
} from "./frame.js";
import {
  OpenRequestSchema,
  OpenResponseSchema,
  StatusSchema,
} from "./gen/wsplex/v1/wsplex_pb.js";
import { metadataFromProto, metadataToProto, toMetadata, type Metadata, type MetadataInit } from "./metadata.js";
import { Router, type HandleOptions, type StreamHandler } from "./router.js";
import { Stream, type StreamHost } from "./stream.js";
import { Publisher, Subscription, oneSession, type PublisherOptions, type SubscribeOptions } from "./topic.js";

/** The WebSocket subprotocol of the wire protocol (SPEC.md §2). */
export const SUBPROTOCOL = "wsplex.v1";

/** The parts of the WebSocket API a Session uses: the browser's, or the ws package's. */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  readonly readyState: number;
  /** Bytes handed to send and not yet sent (absent: taken as 0). */
  readonly bufferedAmount?: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface SessionOptions {
  /**
   * The most bytes the server may send on one stream before the
   * application reads them: the memory one unread stream may hold in the
   * tab. At least 256 KiB. Default 1 MiB.
   */
  windowSize?: number;
  /** The largest message Stream.receive accepts. Default 4 MiB, as the Go server's. */
  maxMessageSize?: number;
  /** How long a server-opened stream may take to send its open request. Default 10 s. */
  openTimeout?: number;
  /**
   * The most streams the server may have open towards this client at
   * once; more are refused. Default 100.
   */
  maxServerStreams?: number;
  /**
   * The largest WebSocket message sent, in bytes; larger writes are split
   * into several frames. Default 128 KiB, so that a 64 KiB protobuf
   * message with its headers leaves as one message: browsers pay per
   * message. At most 1 MiB, the Go server's default read limit.
   */
  messageSize?: number;
  /**
   * Writes wait while the WebSocket holds more than this many bytes
   * unsent (its bufferedAmount), until it holds half as many: a page that
   * writes faster than the network takes cannot buffer without bound.
   * Default 1 MiB.
   */
  maxBufferedAmount?: number;
}

export interface ConnectOptions extends SessionOptions {
  /** Extra WebSocket subprotocols to offer after wsplex.v1. */
  protocols?: string[];
  /**
   * A bearer token, sent as the wsplex.bearer.<base64url> subprotocol
   * (SPEC.md §2.1), since browsers cannot set an Authorization header.
   */
  token?: string;
  /** Aborts connecting; once connected, closes the session. */
  signal?: AbortSignal;
  /** The WebSocket class; default globalThis.WebSocket. In Node 20, pass the ws package's. */
  WebSocket?: WebSocketConstructor;
}

export interface OpenOptions {
  /** Metadata for the open request, like HTTP headers. */
  metadata?: MetadataInit;
  /** Cancels the open, and afterwards the stream. */
  signal?: AbortSignal;
}

const MAX_HEADER_SIZE = 16 * 1024;
const DRAIN_POLL = 4; // ms between looks at a congested WebSocket's bufferedAmount
const GO_AWAY_PROTOCOL_ERROR = 1;
const MAX_PONGS = 16; // Ping answers that may wait (SPEC.md §4.6)
const MAX_MESSAGE_SIZE = 1 << 20; // the Go server's default ReadLimit

/** tokenProtocol returns the subprotocol that carries token (SPEC.md §2.1). */
export function tokenProtocol(token: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(token)) bin += String.fromCharCode(b);
  return "wsplex.bearer." + btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * connect opens a WebSocket to url (ws: or wss:), checks that the server
 * speaks wsplex.v1 and returns the session.
 */
export async function connect(url: string, opts: ConnectOptions = {}): Promise<Session> {
  const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) throw new Error("wsplex: no WebSocket class; pass one in ConnectOptions.WebSocket");
  opts.signal?.throwIfAborted();
  const protocols = [SUBPROTOCOL, ...(opts.token !== undefined ? [tokenProtocol(opts.token)] : []), ...(opts.protocols ?? [])];
  const ws = new WS(url, protocols);
  // Listeners go on before the socket opens, so that frames the server
  // sends right after the upgrade are not lost.
  const session = new Session(ws, opts);
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      ws.close(1000, "aborted");
      reject(opts.signal!.reason);
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    session.opened.then(
      () => {
        opts.signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      (err) => {
        opts.signal?.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
  if (ws.protocol !== SUBPROTOCOL) {
    session.close();
    throw new Error(`wsplex: server did not accept subprotocol ${SUBPROTOCOL} (got "${ws.protocol}")`);
  }
  if (opts.signal) {
    const signal = opts.signal;
    const onAbort = () => session.close();
    signal.addEventListener("abort", onAbort, { once: true });
    void session.closed.then(() => signal.removeEventListener("abort", onAbort));
  }
  return session;
}

/**
 * Session is the client side of a wsplex session: it opens named streams
 * to the server and serves the streams the server opens.
 */
export class Session implements StreamHost {
  /** @internal */
  readonly maxFrameBody: number;
  private readonly streams = new Map<number, Stream>();
  private readonly reader: FrameReader;
  private readonly router = new Router();
  private readonly windowSize: number;
  private readonly maxMessageSize: number;
  private readonly openTimeout: number;
  private nextID = 1;
  private goneAway = false;
  private readonly maxServerStreams: number;
  private serverStreams = 0;
  private readonly maxBuffered: number;
  private drain: Promise<void> | undefined; // settles when the WebSocket has drained
  private ended: WsplexError | undefined;
  private readonly pings = new Map<number, { resolve: () => void; reject: (e: WsplexError) => void }>();
  private nextPing = 1;
  private pongs: number[] = []; // values of Pings to answer
  /** Per stream: bytes consumed since the last window update. */
  private readonly unacked = new Map<number, number>();

  /** @internal Resolves when the WebSocket is open. */
  readonly opened: Promise<void>;
  /** Resolves when the session has ended, with why. */
  readonly closed: Promise<WsplexError>;
  private resolveClosed!: (err: WsplexError) => void;
  /**
   * Resolves when the server said it accepts no new streams (it is
   * shutting down): open streams go on, but a new session is needed for
   * new ones.
   */
  readonly goAway: Promise<void>;
  private resolveGoAway!: () => void;

  /** @internal Use connect. */
  constructor(
    private readonly ws: WebSocketLike,
    opts: SessionOptions = {},
  ) {
    this.windowSize = Math.max(opts.windowSize ?? 1 << 20, INITIAL_WINDOW);
    this.maxMessageSize = opts.maxMessageSize ?? 4 << 20;
    this.openTimeout = opts.openTimeout ?? 10_000;
    this.maxServerStreams = opts.maxServerStreams ?? 100;
    this.maxBuffered = opts.maxBufferedAmount ?? 1 << 20;
    this.goAway = new Promise((resolve) => (this.resolveGoAway = resolve));
    this.maxFrameBody = Math.min(Math.max(opts.messageSize ?? 128 * 1024, 1024), MAX_MESSAGE_SIZE) - HEADER_SIZE;
    this.reader = new FrameReader(this.windowSize);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("wsplex: WebSocket connection failed"));
      ws.onclose = (ev) => {
        reject(new Error(`wsplex: WebSocket closed during the handshake (code ${ev.code})`));
        this.end(closeError(ev.code, ev.reason));
      };
    });
    this.opened.then(
      () => {
        // An error event is always followed by a close event, which ends
        // the session; the listener must stay, or the ws package throws.
        ws.onerror = () => {};
        ws.onclose = (ev) => this.end(closeError(ev.code, ev.reason));
      },
      () => {},
    );
    ws.onmessage = (ev) => this.onMessage(ev.data);
  }

  /** Why the session ended, or undefined while it runs. */
  get error(): WsplexError | undefined {
    return this.ended;
  }

  /** @internal Whether the server said it accepts no new streams (Go Away). */
  get draining(): boolean {
    return this.goneAway;
  }

  /**
   * open opens a stream called name and writes its open request. It does
   * not wait for the server's answer (SPEC.md §6.4): the caller may send
   * at once, and the answer is read with the first read, or by
   * stream.response(). A refusal then fails reads with a WsplexError
   * carrying the server's code, message and response metadata
   * (Code.NOT_FOUND for a name no handler serves), and writes once the
   * reset that follows arrives. open itself throws only when no stream
   * can be opened: the session ended, or the server is shutting down.
   */
  async open(name: string, opts: OpenOptions = {}): Promise<Stream> {
    opts.signal?.throwIfAborted();
    if (this.ended) throw this.ended;
    if (this.goneAway) throw new WsplexError(Code.UNAVAILABLE, "peer accepts no new streams");
    const md = toMetadata(opts.metadata);
    const req = sizeDelimitedEncode(OpenRequestSchema, create(OpenRequestSchema, { name, metadata: metadataToProto(md) }));
    if (req.length > MAX_HEADER_SIZE) {
      throw new WsplexError(Code.RESOURCE_EXHAUSTED, `open request of ${req.length} bytes exceeds ${MAX_HEADER_SIZE}`);
    }
    const id = this.nextID;
    this.nextID += 2;
    const s = this.newStream(id);
    s.name = name;
    s.metadata = md;
    this.sendFrame({ type: TYPE_WINDOW_UPDATE, flags: FLAG_SYN, streamID: id, length: this.windowSize - INITIAL_WINDOW });
    this.grant(id, this.windowSize - INITIAL_WINDOW);
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => s.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
      s.onDone(() => signal.removeEventListener("abort", onAbort));
    }
    // The request is at most 16 KiB, within the initial window of 256
    // KiB: it goes out now, before anything the caller writes.
    void s.write(req).catch(() => {}); // a failure shows in the answer
    s.expectAnswer(MAX_HEADER_SIZE, (body) => this.parseAnswer(s, body), signal);
    return s;
  }

  /**
   * parseAnswer reads the server's answer to an open (SPEC.md §6.3) into
   * s, and throws a refusal as a remote WsplexError, or a malformed
   * answer.
   */
  private parseAnswer(s: Stream, body: Uint8Array): void {
    let answer;
    try {
      answer = fromBinary(OpenResponseSchema, body);
    } catch (e) {
      throw new WsplexError(Code.INVALID_ARGUMENT, `malformed open response: ${e instanceof Error ? e.message : e}`);
    }
    s.responseMetadata = metadataFromProto(answer.metadata);
    const st = statusFromProto(answer.status ?? create(StatusSchema));
    if (st.code !== Code.OK) throw errorOf(st, { metadata: s.responseMetadata, remote: true });
  }

  /**
   * subscribe subscribes to topic (SPEC.md §14) and returns the
   * subscription, an async iterable of its events: messages decoded with
   * schema, each with its position and prev, and gaps. It subscribes at
   * once; subscription.ready resolves when the server accepted. The
   * iteration rejects with a WsplexError when the server refuses
   * (NOT_FOUND, PERMISSION_DENIED), when the session ends, or with
   * options.signal's reason; it resubscribes from its position when the
   * server ends the subscription with RESOURCE_EXHAUSTED or UNAVAILABLE
   * while the session lives. Across sessions, use reconnector.subscribe.
   */
  subscribe<Desc extends DescMessage>(topic: string, schema: Desc, options?: SubscribeOptions): Subscription<Desc> {
    return new Subscription(oneSession(this), topic, schema, options);
  }

  /**
   * publisher opens a stream to publish messages of schema to topic
   * (SPEC.md §14.4), where the server lets this client publish.
   */
  publisher<Desc extends DescMessage>(topic: string, schema: Desc, options?: PublisherOptions): Publisher<Desc> {
    return new Publisher(this, topic, schema, options);
  }

  /**
   * handle serves the streams the server opens whose names match pattern:
   * "/notify/{id}" matches one segment (in stream.params.id),
   * "/files/{path...}" the rest, "/tree/" every name below it, anything
   * else only itself; the most specific pattern wins. The handler's
   * stream is closed when it settles: cleanly if it returns, with the
   * thrown error's status (a WsplexError's code, else Code.UNKNOWN) if it
   * throws. Streams no pattern matches are refused with Code.NOT_FOUND,
   * or Code.UNIMPLEMENTED for an RPC call (metadata wsplex-rpc, SPEC.md
   * §13.1). With options.answersOpen the handler answers the open itself
   * (see HandleOptions).
   */
  handle(pattern: string, handler: StreamHandler, options?: HandleOptions): void {
    this.router.add(pattern, handler, options);
  }

  /**
   * ping sends a yamux Ping and resolves with the round-trip time in
   * milliseconds; it rejects with Code.DEADLINE_EXCEEDED after timeout
   * milliseconds (default 10 s), or when the session ends.
   */
  ping(timeout = 10_000): Promise<number> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextPing++ >>> 0;
    const start = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new WsplexError(Code.DEADLINE_EXCEEDED, "no answer to ping"));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        this.pings.delete(id);
      };
      this.pings.set(id, {
        resolve: () => {
          done();
          resolve(performance.now() - start);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.sendFrame({ type: TYPE_PING, flags: FLAG_SYN, streamID: 0, length: id });
    });
  }

  /** close ends the session and every stream with it. */
  close(): void {
    if (!this.ended) this.ws.close(1000, "");
    this.end(new WsplexError(Code.CANCELED, "session closed"));
  }

  // --- StreamHost ---

  /** @internal */
  congested(): boolean {
    return !this.ended && (this.ws.bufferedAmount ?? 0) > this.maxBuffered;
  }

  /**
   * @internal drained settles once the WebSocket holds at most half of
   * maxBufferedAmount, or the session ended. WebSockets have no drain
   * event, so it looks every few milliseconds, one timer per session.
   */
  drained(): Promise<void> {
    this.drain ??= new Promise<void>((resolve) => {
      const check = () => {
        if (this.ended || (this.ws.bufferedAmount ?? 0) <= this.maxBuffered / 2) {
          this.drain = undefined;
          resolve();
        } else {
          setTimeout(check, DRAIN_POLL);
        }
      };
      setTimeout(check, DRAIN_POLL);
    });
    return this.drain;
  }

  /** @internal */
  sendData(s: Stream, data: Uint8Array): void {
    this.sendFrame({ type: TYPE_DATA, flags: 0, streamID: s.id, length: data.length }, data);
  }

  /** @internal */
  sendFIN(s: Stream): void {
    this.sendFrame({ type: TYPE_WINDOW_UPDATE, flags: FLAG_FIN, streamID: s.id, length: 0 });
    this.maybeForget(s);
  }

  /** @internal */
  sendReset(s: Stream, st: Status): void {
    this.sendResetFrame(s.id, st);
  }

  private sendResetFrame(id: number, st: Status): void {
    const body = encodeStatus(st);
    this.sendFrame({ type: TYPE_RESET, flags: 0, streamID: id, length: body.length }, body);
  }

  /** @internal */
  consumed(s: Stream, n: number): void {
    // Nothing more goes out on a stream after its reset (SPEC.md §5).
    if (this.ended || !this.streams.has(s.id) || !s.acceptsData) return;
    const total = (this.unacked.get(s.id) ?? 0) + n;
    if (total >= this.windowSize / 2) {
      this.unacked.set(s.id, 0);
      this.grant(s.id, total);
      this.sendFrame({ type: TYPE_WINDOW_UPDATE, flags: 0, streamID: s.id, length: total });
    } else {
      this.unacked.set(s.id, total);
    }
  }

  // --- internals ---

  private newStream(id: number): Stream {
    const s = new Stream(id, this, INITIAL_WINDOW, { maxMessageSize: this.maxMessageSize });
    this.streams.set(id, s);
    this.unacked.set(id, 0);
    this.recvWindow.set(id, INITIAL_WINDOW);
    return s;
  }

  /** Per stream: how many more Data bytes the server may send. */
  private readonly recvWindow = new Map<number, number>();

  private maybeForget(s: Stream): void {
    if (s.finishedLocally && s.finishedRemotely) this.forget(s.id);
  }

  private forget(id: number): void {
    if (this.streams.has(id) && id % 2 === 0) this.serverStreams--;
    this.streams.delete(id);
    this.unacked.delete(id);
    this.recvWindow.delete(id);
  }

  private sendFrame(h: { type: number; flags: number; streamID: number; length: number }, body?: Uint8Array): void {
    if (this.ended) return;
    this.ws.send(encodeFrame(h, body));
  }

  private onMessage(data: unknown): void {
    if (this.ended) return;
    if (!(data instanceof ArrayBuffer)) {
      this.fail(1003, "binary messages only", new WsplexError(Code.INVALID_ARGUMENT, "server sent a text message"));
      return;
    }
    this.reader.push(new Uint8Array(data));
    try {
      for (let f = this.reader.next(); f; f = this.reader.next()) {
        this.onFrame(f);
        if (this.ended) return;
      }
      this.answerPings();
    } catch (e) {
      if (e instanceof ProtocolError) {
        // Session-fatal (SPEC.md §4.8): Go Away with code 1, then close 1002.
        this.sendFrame({ type: TYPE_GO_AWAY, flags: 0, streamID: 0, length: GO_AWAY_PROTOCOL_ERROR });
        this.fail(1002, e.message, new WsplexError(Code.INTERNAL, `protocol error from server: ${e.message}`));
        return;
      }
      throw e;
    }
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case TYPE_PING:
        if (f.flags & FLAG_SYN) {
          // Answered once the message is handled; past 16 waiting answers
          // a Ping is dropped, so that a flood cannot grow memory (SPEC.md §4.6).
          if (this.pongs.length < MAX_PONGS) this.pongs.push(f.length);
        } else if (f.flags & FLAG_ACK) this.pings.get(f.length)?.resolve();
        return;
      case TYPE_GO_AWAY:
        if (f.length === 0) {
          this.goneAway = true;
          this.resolveGoAway();
        } else throw new ProtocolError(`go away with error code ${f.length}`);
        return;
    }
    if (f.type === TYPE_RESET) {
      const s = this.streams.get(f.streamID);
      if (!s) return; // a stream this side does not know, or refused
      let st: Status;
      try {
        st = statusFromProto(fromBinary(StatusSchema, f.body));
      } catch (e) {
        st = status(Code.UNKNOWN, `malformed reset status: ${e instanceof Error ? e.message : e}`);
      }
      s.onReset(st);
      return;
    }
    let s = this.streams.get(f.streamID);
    if (f.flags & FLAG_SYN) {
      if (f.streamID === 0) throw new ProtocolError("SYN for stream 0");
      if (f.streamID % 2 === 1) throw new ProtocolError(`SYN for stream ${f.streamID}, an ID of the client's`);
      if (s) throw new ProtocolError(`SYN for stream ${f.streamID}, which is open`);
      if (this.serverStreams >= this.maxServerStreams || !this.router.size) {
        // Refuse with a reason and a yamux RST, keeping nothing (SPEC.md §4.3).
        this.sendResetFrame(
          f.streamID,
          this.router.size
            ? status(Code.RESOURCE_EXHAUSTED, `too many concurrent streams (limit ${this.maxServerStreams})`)
            : status(Code.NOT_FOUND, "this client serves no streams"),
        );
        this.sendFrame({ type: TYPE_WINDOW_UPDATE, flags: FLAG_RST, streamID: f.streamID, length: 0 });
        return;
      }
      s = this.newStream(f.streamID);
      this.serverStreams++;
      // The full window is granted only once a handler took the stream.
      this.sendFrame({ type: TYPE_WINDOW_UPDATE, flags: FLAG_ACK, streamID: s.id, length: 0 });
      this.serve(s).catch(() => s!.close());
    }
    if (!s) return; // a frame for a stream already finished
    if (f.flags & FLAG_RST) {
      // A yamux-native RST, on a Window Update or a Data frame whose body
      // is discarded (SPEC.md §4.7).
      this.forget(s.id);
      s.onRST();
      return;
    }
    if (f.type === TYPE_WINDOW_UPDATE) {
      if (f.length > 0) s.onWindowUpdate(f.length);
    } else if (f.length > 0) {
      const left = this.recvWindow.get(s.id)! - f.length;
      if (left < 0) throw new ProtocolError(`stream ${s.id} sent ${f.length} bytes beyond its window`);
      this.recvWindow.set(s.id, left);
      s.onData(f.body);
    }
    if (f.flags & FLAG_FIN) {
      if (s.finishedRemotely) throw new ProtocolError(`second FIN on stream ${s.id}`);
      s.onFIN();
      this.maybeForget(s);
    }
  }

  /** grant lets the server send n more bytes on stream id. */
  private grant(id: number, n: number): void {
    this.recvWindow.set(id, (this.recvWindow.get(id) ?? 0) + n);
  }

  /** serve answers a stream the server opened and runs its handler. */
  private async serve(s: Stream): Promise<void> {
    const timer = setTimeout(() => s.reset(Code.DEADLINE_EXCEEDED, "no open request in time"), this.openTimeout);
    let reqBytes: Uint8Array | null;
    try {
      reqBytes = await s.readDelimited(MAX_HEADER_SIZE);
    } catch {
      clearTimeout(timer);
      s.close();
      return;
    } finally {
      clearTimeout(timer);
    }
    if (!reqBytes) {
      s.close();
      return;
    }
    let req;
    try {
      req = fromBinary(OpenRequestSchema, reqBytes);
    } catch (e) {
      this.refuse(s, Code.INVALID_ARGUMENT, `malformed open request: ${e instanceof Error ? e.message : e}`);
      return;
    }
    s.name = req.name;
    s.metadata = metadataFromProto(req.metadata);
    const match = this.router.match(req.name);
    if (!match) {
      if (s.metadata.has("wsplex-rpc")) this.refuse(s, Code.UNIMPLEMENTED, `no service for procedure "${req.name}"`);
      else this.refuse(s, Code.NOT_FOUND, `no handler for stream "${req.name}"`);
      return;
    }
    s.params = match.params;
    const extra = this.windowSize - INITIAL_WINDOW;
    if (extra > 0) {
      this.grant(s.id, extra);
      this.sendFrame({ type: TYPE_WINDOW_UPDATE, flags: 0, streamID: s.id, length: extra });
    }
    if (match.options.answersOpen) {
      // Answered by the handler's first write, or its end (SPEC.md §13.3).
      s.deferAnswer(encodeAnswer);
    } else {
      try {
        await s.write(encodeAnswer(undefined, new Map()).bytes);
      } catch {
        // A peer that closed the stream (a CODE_OK reset) reads no answer,
        // but what it sent is still served (SPEC.md §6.3).
        if (!s.peerClosed) {
          s.close(); // reset or session ended meanwhile
          return;
        }
      }
    }
    try {
      await match.handler(s);
      s.closeWrite();
      s.close();
    } catch (e) {
      const st = statusOf(e);
      s.reset(st.code, st.message, st);
    }
  }

  private refuse(s: Stream, code: Code, message: string): void {
    void s
      .write(sizeDelimitedEncode(OpenResponseSchema, create(OpenResponseSchema, { status: { code, message } })))
      .catch(() => {})
      .finally(() => s.reset(code, message));
  }

  /** answerPings sends the Ping answers that wait, in one message. */
  private answerPings(): void {
    if (this.pongs.length === 0) return;
    const out = new Uint8Array(HEADER_SIZE * this.pongs.length);
    this.pongs.forEach((value, i) => out.set(encodeFrame({ type: TYPE_PING, flags: FLAG_ACK, streamID: 0, length: value }), i * HEADER_SIZE));
    this.pongs = [];
    if (!this.ended) this.ws.send(out);
  }

  /** fail ends the session after a protocol error by the server. */
  private fail(code: number, reason: string, err: WsplexError): void {
    const short = reason.length > 100 ? reason.slice(0, 100) + "..." : reason;
    try {
      this.ws.close(code, short);
    } catch {
      // Browsers let scripts send only 1000 and 3000-4999.
      this.ws.close(1000, short);
    }
    this.end(err);
  }

  private end(err: WsplexError): void {
    if (this.ended) return;
    this.ended = err;
    for (const s of this.streams.values()) s.onFail(err);
    this.streams.clear();
    this.unacked.clear();
    this.recvWindow.clear();
    for (const p of [...this.pings.values()]) p.reject(err);
    this.resolveClosed(err);
  }
}

/**
 * encodeAnswer returns the delimited answer to an open: Code.OK, or st (a
 * refusal), with response metadata md. An answer over 16 KiB, which the
 * opener would refuse, loses its metadata, details and trailers, and one
 * that was to accept refuses with Code.INTERNAL, returned as refused.
 */
function encodeAnswer(st: Status | undefined, md: Metadata): { bytes: Uint8Array; refused?: Status } {
  const answer = (st: Status | undefined, md: Metadata) =>
    sizeDelimitedEncode(
      OpenResponseSchema,
      create(OpenResponseSchema, {
        status: st ? { code: st.code, message: st.message, details: st.details, trailers: metadataToProto(st.trailers) } : { code: Code.OK },
        metadata: metadataToProto(md),
      }),
    );
  const out = answer(st, md);
  if (out.length <= MAX_HEADER_SIZE) return { bytes: out };
  if (st) return { bytes: answer(status(st.code, st.message.length > 1024 ? st.message.slice(0, 1024) + "..." : st.message), new Map()) };
  const refused = status(Code.INTERNAL, `response metadata too large: answer of ${out.length} bytes exceeds ${MAX_HEADER_SIZE}`);
  return { bytes: answer(refused, new Map()), refused };
}

function closeError(code: number, reason: string): WsplexError {
  if (code === 1000 || code === 1001) {
    return new WsplexError(Code.UNAVAILABLE, `session closed by server${reason ? `: ${reason}` : ""}`, { remote: true });
  }
  return new WsplexError(Code.UNAVAILABLE, `connection lost (close code ${code}${reason ? `: ${reason}` : ""})`);
}
