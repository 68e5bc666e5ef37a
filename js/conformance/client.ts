// The Node client under test of the connectrpc conformance suite
// (connectrpc.com/conformance, docs/testing_clients.md): it reads
// size-delimited ClientCompatRequests on stdin, makes each case's call with
// connect-es's createClient over createWsplexTransport, and writes a
// ClientCompatResponse for each on stdout.
//
//     createWsplexTransport ─wsplex─▶ wsplexgateway ─HTTP─▶ reference server
//
// Its one argument is the path of conformance/cmd/wsplexgateway, which it
// starts: a wsplex server on loopback whose gateway forwards each call to
// the reference server its x-wsplex-conformance-upstream header names.
// Run through go test ./conformance (TestNodeConformance).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { create, createRegistry, toBinary, fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { anyPack, anyUnpack, type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient, type CallOptions, type Client } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import WebSocket from "ws";

import { connect, type Session, type WebSocketConstructor } from "../src/index.js";
import { createWsplexTransport } from "../src/connect.js";
import {
  ClientCompatRequestSchema,
  ClientCompatResponseSchema,
  ClientResponseResultSchema,
  type ClientCompatRequest,
  type ClientResponseResult,
} from "./gen/connectrpc/conformance/v1/client_compat_pb.js";
import { Codec, StreamType } from "./gen/connectrpc/conformance/v1/config_pb.js";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  ConformancePayloadSchema,
  ConformanceService,
  ErrorSchema,
  HeaderSchema,
  IdempotentUnaryRequestSchema,
  ServerStreamRequestSchema,
  UnaryRequestSchema,
  UnimplementedRequestSchema,
  type ConformancePayload,
  file_connectrpc_conformance_v1_service,
  type Header,
} from "./gen/connectrpc/conformance/v1/service_pb.js";

/** The types the JSON codec meets in Any: the request messages that responses echo. */
const registry = createRegistry(file_connectrpc_conformance_v1_service);

/** How many cases run at once. */
const PARALLEL = 32;
/** The header that names a call's upstream for the gateway (conformance/internal/upstream). */
const UPSTREAM_HEADER = "x-wsplex-conformance-upstream";

async function main(): Promise<void> {
  const gatewayPath = process.argv[2];
  if (!gatewayPath) throw new Error("usage: node client.js <path of wsplexgateway>");
  const gateway = spawn(gatewayPath, [], { stdio: ["pipe", "pipe", "inherit"] });
  process.on("SIGTERM", () => {
    gateway.kill("SIGTERM");
    process.exit(1);
  });
  const url = await new Promise<string>((resolve, reject) => {
    gateway.once("error", reject);
    gateway.once("exit", (code) => reject(new Error(`wsplexgateway exited with ${code}`)));
    createInterface({ input: gateway.stdout! }).once("line", resolve);
  });

  // One session per message receive limit, which is a session's option.
  const sessions = new Map<number, Promise<Session>>();
  const session = (limit: number): Promise<Session> => {
    let s = sessions.get(limit);
    if (!s) {
      s = connect(url, { WebSocket: WebSocket as unknown as WebSocketConstructor, ...(limit > 0 ? { maxMessageSize: limit } : {}) });
      sessions.set(limit, s);
    }
    return s;
  };

  let running = 0;
  const waiting: (() => void)[] = [];
  const pending = new Set<Promise<void>>();
  for await (const req of readRequests(process.stdin)) {
    if (running >= PARALLEL) await new Promise<void>((r) => waiting.push(r));
    running++;
    const p = (async () => {
      let res;
      try {
        const response = await invoke(await session(req.messageReceiveLimit), req);
        res = create(ClientCompatResponseSchema, { testName: req.testName, result: { case: "response", value: response } });
      } catch (e) {
        res = create(ClientCompatResponseSchema, {
          testName: req.testName,
          result: { case: "error", value: { message: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) } },
        });
      }
      writeDelimited(toBinary(ClientCompatResponseSchema, res));
    })().finally(() => {
      running--;
      waiting.shift()?.();
      pending.delete(p);
    });
    pending.add(p);
  }
  await Promise.all(pending);
  for (const s of sessions.values()) (await s).close();
  gateway.stdin!.end();
  const code = await new Promise((r) => gateway.once("exit", r));
  if (code !== 0) throw new Error(`wsplexgateway exited with ${code}`);
}

/** readRequests yields the size-delimited requests on in. */
async function* readRequests(input: NodeJS.ReadableStream): AsyncGenerator<ClientCompatRequest> {
  let buf = Buffer.alloc(0);
  for await (const chunk of input) {
    buf = Buffer.concat([buf, chunk as Buffer]);
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) break;
      yield fromBinary(ClientCompatRequestSchema, buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
    }
  }
  if (buf.length > 0) throw new Error(`stdin ended within a request (${buf.length} bytes left)`);
}

function writeDelimited(b: Uint8Array): void {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(b.length);
  process.stdout.write(Buffer.concat([prefix, b]));
}

/** upstreamKey is the header value that tells the gateway where req's reference server is and how to reach it. */
function upstreamKey(req: ClientCompatRequest): string {
  const u = create(ClientCompatRequestSchema, {
    httpVersion: req.httpVersion,
    protocol: req.protocol,
    compression: req.compression,
    host: req.host,
    port: req.port,
    serverTlsCert: req.serverTlsCert,
    clientTlsCreds: req.clientTlsCreds,
  });
  return Buffer.from(toBinary(ClientCompatRequestSchema, u)).toString("base64");
}

/** Call is one case's call in progress: its options, cancellation and result. */
class Call {
  readonly abort = new AbortController();
  readonly result: ClientResponseResult = create(ClientResponseResultSchema);
  private header?: Headers;
  private trailer?: Headers;

  constructor(readonly req: ClientCompatRequest) {}

  options(): CallOptions {
    const headers = new Headers();
    for (const h of this.req.requestHeaders) for (const v of h.value) headers.append(h.name, v);
    headers.set(UPSTREAM_HEADER, upstreamKey(this.req));
    return {
      headers,
      signal: this.abort.signal,
      timeoutMs: this.req.timeoutMs !== undefined && this.req.timeoutMs > 0 ? this.req.timeoutMs : undefined,
      onHeader: (h) => (this.header = h),
      onTrailer: (t) => (this.trailer = t),
    };
  }

  async delay(): Promise<void> {
    if (this.req.requestDelayMs > 0) await sleep(this.req.requestDelayMs);
  }

  beforeCloseSend(): void {
    if (this.req.cancel?.cancelTiming.case === "beforeCloseSend") this.abort.abort();
  }

  /** afterCloseSend cancels the call as long after now as the case says, while it goes on. */
  afterCloseSend(): void {
    const t = this.req.cancel?.cancelTiming;
    if (t?.case === "afterCloseSendMs") setTimeout(() => this.abort.abort(), t.value);
  }

  addPayload(p: ConformancePayload | undefined): void {
    this.result.payloads.push(p ?? create(ConformancePayloadSchema));
    const t = this.req.cancel?.cancelTiming;
    if (t?.case === "afterNumResponses" && this.result.payloads.length === t.value) this.abort.abort();
  }

  /**
   * fail records the call's error. Its metadata are the trailers, as
   * docs/testing_clients.md says: a failed call gives connect-es no
   * onTrailer (for a unary call, no onHeader either, and the metadata hold
   * the headers as well, which the runner accepts).
   */
  fail(e: unknown): void {
    const err = ConnectError.from(e);
    this.result.error = create(ErrorSchema, {
      code: err.code as number,
      message: err.rawMessage,
      details: err.details.map((d): Any =>
        "desc" in d ? anyPack(d.desc, create(d.desc, d.value)) : create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value }),
      ),
    });
    if (this.trailer === undefined) this.trailer = err.metadata;
  }

  finish(): ClientResponseResult {
    this.result.responseHeaders = toProtoHeaders(this.header);
    this.result.responseTrailers = toProtoHeaders(this.trailer);
    return this.result;
  }
}

function toProtoHeaders(h: Headers | undefined): Header[] {
  const out: Header[] = [];
  h?.forEach((value, name) => out.push(create(HeaderSchema, { name, value: [value] })));
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function unpack<D extends DescMessage>(schema: D, any: Any): MessageShape<D> {
  const m = anyUnpack(any, schema);
  if (!m) throw new Error(`request message is ${any.typeUrl}, not ${schema.typeName}`);
  return m;
}

/** invoke makes the call req describes and returns what came of it; it throws if it could not make it. */
async function invoke(session: Session, req: ClientCompatRequest): Promise<ClientResponseResult> {
  if (req.service !== ConformanceService.typeName) throw new Error(`service ${req.service} not supported`);
  if (req.rawRequest) throw new Error("raw requests not supported");
  const transport = createWsplexTransport(session, { useBinaryFormat: req.codec !== Codec.JSON, jsonOptions: { registry } });
  const client = createClient(ConformanceService, transport);
  const c = new Call(req);
  const msgs = req.requestMessages;
  switch (req.method) {
    case "Unary":
    case "IdempotentUnary":
    case "Unimplemented": {
      if (msgs.length !== 1) throw new Error(`unary call with ${msgs.length} requests`);
      const opts = c.options();
      c.afterCloseSend();
      try {
        if (req.method === "Unary") c.addPayload((await client.unary(unpack(UnaryRequestSchema, msgs[0]!), opts)).payload);
        else if (req.method === "IdempotentUnary")
          c.addPayload((await client.idempotentUnary(unpack(IdempotentUnaryRequestSchema, msgs[0]!), opts)).payload);
        else {
          await client.unimplemented(unpack(UnimplementedRequestSchema, msgs[0]!), opts);
          c.addPayload(undefined);
        }
      } catch (e) {
        c.fail(e);
      }
      break;
    }
    case "ServerStream": {
      const opts = c.options();
      const m = unpack(ServerStreamRequestSchema, msgs[0]!);
      try {
        const res = client.serverStream(m, opts);
        c.afterCloseSend();
        for await (const r of res) c.addPayload(r.payload);
      } catch (e) {
        c.fail(e);
      }
      break;
    }
    case "ClientStream": {
      const opts = c.options();
      let sent = 0;
      const requests = async function* () {
        for (const any of msgs) {
          await c.delay();
          yield unpack(ClientStreamRequestSchema, any);
          sent++;
        }
        c.beforeCloseSend();
        c.afterCloseSend();
      };
      try {
        c.addPayload((await client.clientStream(requests(), opts)).payload);
      } catch (e) {
        c.fail(e);
      }
      if (sent < msgs.length && c.result.error) c.result.numUnsentRequests = msgs.length - sent;
      break;
    }
    case "BidiStream": {
      if (req.streamType === StreamType.FULL_DUPLEX_BIDI_STREAM) await fullDuplex(client, c);
      else await halfDuplex(client, c);
      break;
    }
    default:
      throw new Error(`method ${req.method} not supported`);
  }
  return c.finish();
}

async function halfDuplex(client: Client<typeof ConformanceService>, c: Call): Promise<void> {
  const msgs = c.req.requestMessages;
  let sent = 0;
  const requests = async function* () {
    for (const any of msgs) {
      await c.delay();
      yield unpack(BidiStreamRequestSchema, any);
      sent++;
    }
    c.beforeCloseSend();
    c.afterCloseSend();
  };
  try {
    for await (const r of client.bidiStream(requests(), c.options())) c.addPayload(r.payload);
  } catch (e) {
    c.fail(e);
  }
  if (sent < msgs.length && c.result.error) c.result.numUnsentRequests = msgs.length - sent;
}

async function fullDuplex(client: Client<typeof ConformanceService>, c: Call): Promise<void> {
  const msgs = c.req.requestMessages;
  const requests = createWritableIterable<MessageShape<typeof BidiStreamRequestSchema>>();
  const responses = client.bidiStream(requests, c.options())[Symbol.asyncIterator]();
  let sent = 0;
  try {
    for (const any of msgs) {
      await c.delay();
      try {
        await requests.write(unpack(BidiStreamRequestSchema, any));
      } catch (e) {
        c.result.numUnsentRequests = msgs.length - sent;
        break;
      }
      sent++;
      const r = await responses.next();
      if (r.done) break;
      c.addPayload(r.value.payload);
    }
    c.beforeCloseSend();
    requests.close();
    c.afterCloseSend();
    for (let r = await responses.next(); !r.done; r = await responses.next()) c.addPayload(r.value.payload);
  } catch (e) {
    c.fail(e);
    requests.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("client:", e);
    process.exit(1);
  },
);
