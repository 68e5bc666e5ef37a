// serveConnect: connect-es service implementations served on a session,
// for calls the server makes into the page (SPEC.md §13, the server's side
// of each call). Exported by @wsplex/client/connect.
import {
  create,
  toBinary,
  type BinaryReadOptions,
  type BinaryWriteOptions,
  type DescService,
  type JsonReadOptions,
  type JsonWriteOptions,
} from "@bufbuild/protobuf";
import { AnySchema, type Any } from "@bufbuild/protobuf/wkt";
import {
  Code as ConnectCode,
  ConnectError,
  createHandlerContext,
  createServiceImplSpec,
  type ContextValues,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { createMethodSerializationLookup, transformInvokeImplementation } from "@connectrpc/connect/protocol";

import { Code, WsplexError } from "./errors.js";
import type { Metadata } from "./metadata.js";
import type { Session } from "./session.js";
import type { Stream } from "./stream.js";

/** Options of serveConnect. */
export interface ServeConnectOptions {
  /** Interceptors applied to every call, as connect-es's routers apply them. */
  interceptors?: Interceptor[];
  /** Options for the JSON encoding (calls with wsplex-codec "json"). */
  jsonOptions?: Partial<JsonReadOptions & JsonWriteOptions>;
  /** Options for the binary encoding. */
  binaryOptions?: Partial<BinaryReadOptions & BinaryWriteOptions>;
  /** Context values for each call's HandlerContext.values. */
  contextValues?: (stream: Stream) => ContextValues;
}

/**
 * serveConnect serves a connect-es implementation of service on session:
 * the server calls it as it calls any service on a session, with its
 * generated client over Go's rpc.NewTransport. Each method is served on
 * its procedure, /acme.chat.v1.ChatService/Send, the name the call's
 * stream opens with (SPEC.md §13.1); methods the implementation leaves
 * out fail with Code.Unimplemented, as connect-es's routers do.
 *
 *     serveConnect(session, ConfirmService, {
 *       async confirm(req, ctx) { return { ok: window.confirm(req.question) }; },
 *     });
 *
 * Request headers are ctx.requestHeader; ctx.responseHeader leaves in the
 * answer, with the first response or the call's end; ctx.responseTrailer
 * ends the call. A thrown ConnectError ends it with its code, message,
 * details and metadata (as trailers); other errors with Code.Unknown.
 * ctx.signal aborts when the caller cancels, the session ends, or the
 * call's wsplex-timeout-ms passes, which also ends the call with
 * DEADLINE_EXCEEDED at once. Call it again for each session, such as in a
 * Reconnector's onConnect.
 */
export function serveConnect<T extends DescService>(
  session: Session,
  service: T,
  implementation: Partial<ServiceImpl<T>>,
  options: ServeConnectOptions = {},
): void {
  const spec = createServiceImplSpec(service, implementation);
  for (const method of service.methods) {
    const m = spec.methods[method.localName]!;
    const lookup = createMethodSerializationLookup(m.method, options.binaryOptions, options.jsonOptions, {
      readMaxBytes: 0xffffffff, // the session's maxMessageSize limits what is read
      writeMaxBytes: 0xffffffff, // and what is sent
    });
    session.handle(`/${service.typeName}/${method.name}`, (stream) => serveCall(stream, m, lookup, options), { answersOpen: true });
  }
}

/** The call shape of each value of wsplex-rpc (SPEC.md §13.1). */
const kinds: Record<string, MethodImplSpec["kind"]> = {
  unary: "unary",
  client: "client_streaming",
  server: "server_streaming",
  bidi: "bidi_streaming",
};
const shapeNames: Record<MethodImplSpec["kind"], string> = {
  unary: "unary",
  client_streaming: "client",
  server_streaming: "server",
  bidi_streaming: "bidi",
};

/** The longest timer setTimeout keeps: 2³¹-1 ms, about 24.8 days. */
const MAX_TIMER_MS = 0x7fffffff;

/** serveCall serves one call on the stream its caller opened. */
async function serveCall(
  stream: Stream,
  spec: MethodImplSpec,
  lookup: ReturnType<typeof createMethodSerializationLookup>,
  options: ServeConnectOptions,
): Promise<void> {
  const md = stream.metadata;
  // Refusals, before the implementation runs (SPEC.md §13.1).
  const shape = md.get("wsplex-rpc")?.[0];
  if (shape !== undefined) {
    const kind = kinds[shape];
    if (kind === undefined) throw new WsplexError(Code.INVALID_ARGUMENT, `malformed wsplex-rpc "${shape}"`);
    if (kind !== spec.kind) throw new WsplexError(Code.UNIMPLEMENTED, `${stream.name} is a ${shapeNames[spec.kind]} call, not ${shape}`);
  }
  const codec = md.get("wsplex-codec")?.[0] ?? "proto";
  if (codec !== "proto" && codec !== "json") throw new WsplexError(Code.UNIMPLEMENTED, `codec "${codec}" not supported`);
  let timeoutMs: number | undefined;
  const timeout = md.get("wsplex-timeout-ms")?.[0];
  if (timeout !== undefined) {
    if (!/^[0-9]{1,10}$/.test(timeout) || Number(timeout) === 0) {
      throw new WsplexError(Code.INVALID_ARGUMENT, `malformed wsplex-timeout-ms "${timeout}"`);
    }
    timeoutMs = Number(timeout);
    if (timeoutMs > MAX_TIMER_MS) timeoutMs = undefined; // beyond any timer: no deadline
  }
  const requestHeader = new Headers();
  for (const [key, values] of md) {
    if (key.startsWith("wsplex-")) continue; // reserved, not the application's
    for (const v of values) {
      try {
        requestHeader.append(key, v);
      } catch {
        throw new WsplexError(Code.INVALID_ARGUMENT, `request header ${key}: not a valid HTTP header`);
      }
    }
  }

  const context = createHandlerContext({
    service: spec.method.parent,
    method: spec.method,
    protocolName: "wsplex",
    requestMethod: "POST",
    url: stream.name,
    timeoutMs,
    requestSignal: stream.signal,
    requestHeader,
    contextValues: options.contextValues?.(stream),
  });
  // The call's time is up: end it at once, whatever the implementation
  // does (SPEC.md §13.5).
  const onAbort = () => {
    const why: unknown = context.signal.reason;
    if (why instanceof ConnectError && why.code === ConnectCode.DeadlineExceeded) {
      answer();
      stream.reset(Code.DEADLINE_EXCEEDED, "deadline exceeded");
    }
  };
  context.signal.addEventListener("abort", onAbort, { once: true });

  // The response headers go in the answer, taken when it leaves: with the
  // first response, or at the end.
  let answered = false;
  function answer(): void {
    if (answered) return;
    answered = true;
    stream.responseMetadata = headersToMetadata(context.responseHeader);
  }

  const binary = codec === "proto";
  const input = lookup.getI(binary);
  const output = lookup.getO(binary);
  async function* requests() {
    for (;;) {
      let bytes: Uint8Array | null;
      try {
        bytes = await stream.receiveBytes();
      } catch (e) {
        throw toConnectError(e);
      }
      if (bytes === null) return;
      let req;
      try {
        req = input.parse(bytes);
      } catch (e) {
        // A request that does not decode ends the call (SPEC.md §7).
        throw toConnectError(stream.malformedMessage(e instanceof ConnectError ? e.rawMessage : String(e)));
      }
      yield req;
    }
  }

  try {
    for await (const res of transformInvokeImplementation(spec, context, options.interceptors ?? [])(requests())) {
      answer();
      try {
        await stream.sendBytes(output.serialize(res));
      } catch (e) {
        throw toConnectError(e);
      }
    }
    answer();
    const trailers = headersToMetadata(context.responseTrailer);
    if (trailers.size > 0) {
      stream.reset(Code.OK, "", { trailers });
    }
  } catch (e) {
    answer();
    throw toWsplexError(e, context.responseTrailer);
  } finally {
    context.signal.removeEventListener("abort", onAbort);
    context.abort(); // the call is over: its signal aborts, as connect-es's do
  }
}

/**
 * toWsplexError returns the status a failed call ends with: a ConnectError's
 * code, message, details and metadata (with the trailers), other errors'
 * Code.Unknown, as connect-es reports them.
 */
function toWsplexError(e: unknown, trailer: Headers): WsplexError {
  if (e instanceof WsplexError) return e;
  const ce = ConnectError.from(e);
  const trailers = headersToMetadata(trailer);
  ce.metadata.forEach((value, key) => trailers.set(key, [...(trailers.get(key) ?? []), value]));
  const details: Any[] = ce.details.map((d) =>
    "desc" in d
      ? create(AnySchema, { typeUrl: `type.googleapis.com/${d.desc.typeName}`, value: toBinary(d.desc, create(d.desc, d.value)) })
      : create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value }),
  );
  return new WsplexError(ce.code as number as Code, ce.rawMessage, { details, trailers });
}

/** toConnectError turns what a stream operation failed with into the ConnectError the implementation sees. */
function toConnectError(e: unknown): ConnectError {
  if (!(e instanceof WsplexError)) return ConnectError.from(e);
  const err = new ConnectError(e.rawMessage, e.code as number as ConnectCode, undefined, undefined, e);
  err.isWireError = e.remote;
  return err;
}

function headersToMetadata(h: Headers): Metadata {
  const md: Metadata = new Map();
  h.forEach((value, key) => md.set(key, [...(md.get(key) ?? []), value]));
  return md;
}
