// @wsplex/client/connect: a connect-es Transport on wsplex streams, as
// SPEC.md §13 maps RPC calls onto them. Its own entry point, so that a page
// that uses only named streams does not bundle connect-es.
import type {
  BinaryReadOptions,
  BinaryWriteOptions,
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  JsonReadOptions,
  JsonWriteOptions,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import {
  Code as ConnectCode,
  ConnectError,
  createContextValues,
  type ContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { createClientMethodSerializers, runStreamingCall, runUnaryCall } from "@connectrpc/connect/protocol";

import { Code, WsplexError } from "./errors.js";
import type { Metadata } from "./metadata.js";
import { Reconnector } from "./reconnect.js";
import { connect, type ConnectOptions, type Session } from "./session.js";
import type { Stream } from "./stream.js";

export { serveConnect, type ServeConnectOptions } from "./serve.js";

/** Options of createWsplexTransport. */
export interface WsplexTransportOptions {
  /**
   * Whether messages use protobuf's binary encoding (wsplex-codec
   * "proto"). Default true; false sends and reads protobuf's JSON
   * mapping ("json").
   */
  useBinaryFormat?: boolean;
  /** Interceptors applied to every call, as connect-es's own transports do. */
  interceptors?: Interceptor[];
  /** Options for the JSON encoding. */
  jsonOptions?: Partial<JsonReadOptions & JsonWriteOptions>;
  /** Options for the binary encoding. */
  binaryOptions?: Partial<BinaryReadOptions & BinaryWriteOptions>;
  /** The timeout of calls that set none, in milliseconds. Default none. */
  defaultTimeoutMs?: number;
}

/**
 * What a transport calls through: a Session; a Reconnector, whose calls
 * fail at once with Code.Unavailable while it waits to reconnect and wait
 * while it connects; a function that returns a Session (asked again for
 * each call, so it may reconnect); or where to connect,
 * once on the first call and again on the next call after the session
 * ended or its server went away.
 */
export type SessionSource = Session | Reconnector | (() => Session | Promise<Session>) | (ConnectOptions & { url: string });

/**
 * createWsplexTransport returns a connect-es Transport that makes each
 * call one wsplex stream (SPEC.md §13): named by the procedure, with the
 * request headers and the keys wsplex-rpc, wsplex-codec and
 * wsplex-timeout-ms in its open request, the response headers in the
 * server's answer, and the status, its details and the trailers in the
 * stream's end. Give it to createClient:
 *
 *     const client = createClient(ChatService, createWsplexTransport(session));
 *
 * Aborting a call's signal, or leaving a response stream early, resets
 * the stream with CANCELED (DEADLINE_EXCEEDED once its timeout passed),
 * which cancels the server's handler. A call whose session ends fails
 * with Code.Unavailable.
 */
export function createWsplexTransport(source: SessionSource, options: WsplexTransportOptions = {}): Transport {
  const useBinaryFormat = options.useBinaryFormat ?? true;
  const getSession = sessionGetter(source);

  function timeout(timeoutMs: number | undefined): number | undefined {
    const t = timeoutMs === undefined ? options.defaultTimeoutMs : timeoutMs;
    return t !== undefined && t <= 0 ? undefined : t;
  }

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const { serialize, parse } = createClientMethodSerializers(method, useBinaryFormat, options.jsonOptions, options.binaryOptions);
      timeoutMs = timeout(timeoutMs);
      const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      return await runUnaryCall<I, O>({
        interceptors: options.interceptors,
        signal,
        timeoutMs,
        req: {
          stream: false,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: procedure(method),
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: async (req: UnaryRequest<I, O>): Promise<UnaryResponse<I, O>> => {
          const call = await Call.start(await getSession(), req, useBinaryFormat, deadline);
          try {
            await call.send(serialize(req.message));
            call.stream.closeWrite();
            const header = await call.header();
            const first = await call.receive();
            if (first === null) throw new ConnectError("protocol error: missing response message", ConnectCode.Unimplemented);
            const message = call.parse(parse, first);
            if ((await call.receive()) !== null) throw new ConnectError("protocol error: received extra output message for unary method", ConnectCode.Unimplemented);
            return { stream: false, service: method.parent, method, header, message, trailer: call.trailer() };
          } catch (e) {
            throw call.fail(e);
          } finally {
            call.end();
          }
        },
      });
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const { serialize, parse } = createClientMethodSerializers(method, useBinaryFormat, options.jsonOptions, options.binaryOptions);
      timeoutMs = timeout(timeoutMs);
      const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      return await runStreamingCall<I, O>({
        interceptors: options.interceptors,
        signal,
        timeoutMs,
        req: {
          stream: true,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: procedure(method),
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: async (req: StreamRequest<I, O>): Promise<StreamResponse<I, O>> => {
          const call = await Call.start(await getSession(), req, useBinaryFormat, deadline);
          const trailer = new Headers();
          // Requests go out while responses come in; a send that fails
          // because the server ended the call leaves the outcome to the
          // reads (SPEC.md §13.4).
          void (async () => {
            try {
              for await (const m of req.message) await call.send(serialize(m));
              call.stream.closeWrite();
            } catch (e) {
              call.sendFailed(e);
            }
          })();
          let header: Headers;
          let refused: ConnectError | undefined;
          try {
            header = await call.header();
          } catch (e) {
            if (!(e instanceof WsplexError && e.remote && e.metadata.size > 0)) {
              call.end();
              throw call.fail(e);
            }
            // The server failed the call at once, and answered with the
            // response headers as well as the status (SPEC.md §13.3): the
            // headers are the response's, and the status fails its
            // messages, with the trailers as its metadata.
            header = toHeaders(e.metadata);
            refused = call.fail(e, false);
          }
          async function* messages(): AsyncGenerator<MessageShape<O>> {
            try {
              if (refused) throw refused;
              for (;;) {
                const bytes = await call.receive();
                if (bytes === null) break;
                yield call.parse(parse, bytes);
              }
              call.trailer().forEach((value, key) => trailer.append(key, value));
            } catch (e) {
              throw call.fail(e);
            } finally {
              call.end();
            }
          }
          return { stream: true, service: method.parent, method, header, message: messages(), trailer };
        },
      });
    },
  };
}

/** procedure returns a method's procedure path, the stream's name: /acme.chat.v1.ChatService/Send. */
function procedure(method: DescMethodUnary | DescMethodStreaming): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The value of wsplex-rpc for each kind of method (SPEC.md §13.1). */
const shapes = {
  unary: "unary",
  client_streaming: "client",
  server_streaming: "server",
  bidi_streaming: "bidi",
} as const;

/** The largest wsplex-timeout-ms: 10 digits. */
const MAX_TIMEOUT_MS = 9_999_999_999;

/**
 * Call is one call's stream: it opens it, sends and reads messages, ends
 * it, and turns what went wrong into ConnectErrors.
 */
class Call {
  private done = false;
  private inputError: unknown;

  private constructor(
    readonly session: Session,
    readonly stream: Stream,
    private readonly signal: AbortSignal,
  ) {}

  /** start opens the call's stream; the call's signal resets it. */
  static async start(
    session: Session,
    req: UnaryRequest | StreamRequest,
    useBinaryFormat: boolean,
    deadline: number | undefined,
  ): Promise<Call> {
    req.signal.throwIfAborted();
    const md: Metadata = new Map();
    req.header.forEach((value, key) => {
      if (key.startsWith("wsplex-")) {
        throw new ConnectError(`request header ${key}: keys that begin with wsplex- are reserved`, ConnectCode.InvalidArgument);
      }
      md.set(key, [...(md.get(key) ?? []), value]);
    });
    md.set("wsplex-rpc", [shapes[req.method.methodKind]]);
    if (!useBinaryFormat) md.set("wsplex-codec", ["json"]);
    if (deadline !== undefined) {
      // What is left of the call's time when it leaves (SPEC.md §13.1).
      md.set("wsplex-timeout-ms", [String(Math.min(Math.max(Math.ceil(deadline - Date.now()), 1), MAX_TIMEOUT_MS))]);
    }
    let stream: Stream;
    try {
      stream = await session.open(req.url, { metadata: md });
    } catch (e) {
      throw toConnectError(e, session);
    }
    const call = new Call(session, stream, req.signal);
    if (req.signal.aborted) call.onAbort();
    else req.signal.addEventListener("abort", call.onAbort, { once: true });
    return call;
  }

  /**
   * onAbort resets a stream whose call was abandoned before its outcome
   * was read (SPEC.md §13.5): cancelled, its deadline passed, or its
   * response stream left early.
   */
  private readonly onAbort = (): void => {
    if (this.done) return;
    this.done = true;
    const reason: unknown = this.signal.reason;
    if (reason instanceof ConnectError && reason.code === ConnectCode.DeadlineExceeded) {
      this.stream.reset(Code.DEADLINE_EXCEEDED, "deadline exceeded");
    } else {
      this.stream.reset(Code.CANCELED, "canceled");
    }
  };

  /**
   * sendFailed handles a request that could not be sent. When the server
   * ended the call, or the session ended, the reads report the outcome
   * (SPEC.md §13.4); otherwise (the application's request messages
   * failed, or one is too large) the call fails with that error.
   */
  sendFailed(e: unknown): void {
    if (this.done || (e instanceof WsplexError && (e.remote || e === this.session.error))) return;
    this.inputError = e;
    if (e instanceof WsplexError) this.stream.reset(e.code, e.rawMessage);
    else this.stream.reset(Code.CANCELED, "canceled");
  }

  /** parse decodes a response; one that does not decode resets the stream with INVALID_ARGUMENT (SPEC.md §7). */
  parse<T>(parse: (bytes: Uint8Array) => T, bytes: Uint8Array): T {
    try {
      return parse(bytes);
    } catch (e) {
      throw this.stream.malformedMessage(e instanceof Error ? e.message : String(e));
    }
  }

  async send(bytes: Uint8Array): Promise<void> {
    await this.stream.sendBytes(bytes);
  }

  async receive(): Promise<Uint8Array | null> {
    return this.stream.receiveBytes();
  }

  /** header waits for the server's answer and returns the response headers. */
  async header(): Promise<Headers> {
    return toHeaders(await this.stream.response());
  }

  /** trailer returns the trailers the call ended with. */
  trailer(): Headers {
    return toHeaders(this.stream.trailers);
  }

  /** end releases the stream once the call's outcome is read, or abandons it. */
  end(): void {
    this.signal.removeEventListener("abort", this.onAbort);
    if (this.done) return;
    this.done = true;
    this.stream.close();
  }

  /**
   * fail returns what the call failed with, as a ConnectError; its
   * metadata hold the response headers unless withHeaders is false.
   */
  fail(e: unknown, withHeaders = true): ConnectError {
    return toConnectError(this.inputError ?? e, this.session, withHeaders ? this.stream : undefined, withHeaders);
  }
}

/**
 * toConnectError turns a wsplex failure into a ConnectError: a status the
 * server sent keeps its code, message and details, with the response
 * headers (unless withHeaders is false) and trailers as metadata; a
 * session's end is Unavailable.
 *
 * An answer that fails the call with trailers equal to its response
 * headers holds one set of metadata, given once: a gateway forwards gRPC's
 * "trailers-only" response so (SPEC.md §13.6), and connect-es's own gRPC
 * transports give that response's one header block once.
 */
function toConnectError(e: unknown, session: Session, stream?: Stream, withHeaders = true): ConnectError {
  if (!(e instanceof WsplexError)) return ConnectError.from(e);
  if (e === session.error) return new ConnectError(e.rawMessage || "session ended", ConnectCode.Unavailable, undefined, undefined, e);
  const metadata = withHeaders ? toHeaders(e.metadata.size > 0 ? e.metadata : (stream?.responseMetadata ?? new Map())) : new Headers();
  if (!(withHeaders && e.metadata.size > 0 && sameMetadata(e.metadata, e.trailers))) {
    e.trailers.forEach((values, key) => values.forEach((v) => metadata.append(key, v)));
  }
  const code = e.code === Code.OK ? ConnectCode.Unknown : (e.code as number as ConnectCode);
  const err = new ConnectError(e.rawMessage, code, metadata, undefined, e);
  err.details = e.details.map((any) => ({ type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1), value: any.value }));
  err.isWireError = e.remote;
  return err;
}

/** sameMetadata reports whether a and b hold the same keys with the same values in the same order. */
function sameMetadata(a: Metadata, b: Metadata): boolean {
  if (a.size !== b.size) return false;
  for (const [key, values] of a) {
    const other = b.get(key);
    if (!other || other.length !== values.length || values.some((v, i) => v !== other[i])) return false;
  }
  return true;
}

function toHeaders(md: Metadata): Headers {
  const h = new Headers();
  md.forEach((values, key) => values.forEach((v) => h.append(key, v)));
  return h;
}

/** sessionGetter returns the session a call goes through, connecting if it must. */
function sessionGetter(source: SessionSource): () => Promise<Session> {
  if (typeof source === "function") return async () => source();
  if (source instanceof Reconnector) {
    return async () => {
      try {
        return await source.sessionFailFast();
      } catch (e) {
        throw e instanceof WsplexError ? new ConnectError(e.rawMessage, e.code as number as ConnectCode, undefined, undefined, e) : e;
      }
    };
  }
  if (!("url" in source)) return async () => source;
  const { url, ...opts } = source;
  let current: Promise<Session> | undefined;
  let usable = false;
  return async () => {
    if (!current || !usable) {
      const next = connect(url, opts);
      current = next;
      usable = true;
      next.then(
        (s) => {
          const stale = () => {
            if (current === next) usable = false;
          };
          void s.closed.then(stale);
          void s.goAway.then(stale);
        },
        () => {
          if (current === next) usable = false; // try again on the next call
        },
      );
    }
    try {
      return await current;
    } catch (e) {
      throw new ConnectError(`connecting to ${url}: ${e instanceof Error ? e.message : e}`, ConnectCode.Unavailable, undefined, undefined, e);
    }
  };
}
