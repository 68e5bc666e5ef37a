// Tests of serveConnect (src/serve.ts): a page serves PingService and is
// called. Against a scripted socket, the bytes of the server's side of
// SPEC.md §13 (answer, refusals, end, deadline); against the Go server of
// internal/jsinterop, whose route /call-page/{what} calls the page's
// service with the generated connect-go client (run through
// `go test ./internal/jsinterop`, which sets WSPLEX_URL).
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { Code as ConnectCode, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import WebSocket from "ws";

import { Code, connect, Session, type WebSocketConstructor } from "../src/index.js";
import { serveConnect } from "../src/connect.js";
import {
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  FrameReader,
  TYPE_DATA,
  TYPE_RESET,
  TYPE_WINDOW_UPDATE,
  encodeFrame,
  type Frame,
} from "../src/frame.js";
import { OpenRequestSchema, OpenResponseSchema, StatusSchema } from "../src/gen/wsplex/v1/wsplex_pb.js";
import { metadataToProto, toMetadata } from "../src/metadata.js";
import { CountUpRequestSchema, FailRequestSchema, PingRequestSchema, PingResponseSchema, PingService } from "./gen/wsplex/ping/v1/ping_pb.js";

const url = process.env.WSPLEX_URL;
const skip = url ? false : "WSPLEX_URL is not set: run these through go test ./internal/jsinterop";
const WS = WebSocket as unknown as WebSocketConstructor;

/** Queue hands values to whoever waits for them, in order. */
class Queue<T> {
  private items: T[] = [];
  private waiters: ((v: T) => void)[] = [];
  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }
  next(): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift()!);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * pingService returns the page's PingService: it follows the Go test
 * server's (internal/jsinterop/ping.go), and reports through ends how each
 * handler that waits for its signal saw it abort.
 */
function pingService(ends: Queue<unknown>): ServiceImpl<typeof PingService> {
  function waitEnd(ctx: HandlerContext): Promise<never> {
    return new Promise((_, reject) => {
      const done = () => {
        ends.push(ctx.signal.reason);
        reject(ctx.signal.reason);
      };
      if (ctx.signal.aborted) done();
      else ctx.signal.addEventListener("abort", done, { once: true });
    });
  }
  return {
    async ping(req, ctx) {
      switch (req.text) {
        case "headers":
          ctx.responseHeader.set("x-out", ctx.requestHeader.get("x-in") ?? "");
          ctx.responseTrailer.set("x-trailer", "t-" + ctx.requestHeader.get("x-in"));
          break;
        case "keys": {
          const keys: string[] = [];
          ctx.requestHeader.forEach((_, k) => keys.push(k));
          return { text: keys.sort().join(" ") };
        }
        case "deadline":
          return { number: BigInt(ctx.timeoutMs() ?? -1) };
        case "block":
          await waitEnd(ctx);
      }
      return { number: req.number, text: req.text };
    },
    fail(req, ctx) {
      ctx.responseHeader.set("x-header", "h");
      ctx.responseTrailer.set("x-trailer", "t");
      throw new ConnectError(req.message, req.code as ConnectCode, { "x-meta": "m" }, [
        { desc: PingRequestSchema, value: { text: req.message } },
      ]);
    },
    async sum(reqs, ctx) {
      let sum = 0n;
      let n = 0;
      for await (const r of reqs) {
        sum += r.number;
        n++;
      }
      ctx.responseTrailer.set("x-count", String(n));
      return { sum };
    },
    async *countUp(req, ctx) {
      if (req.number < 0n) {
        yield { number: 1n };
        await waitEnd(ctx);
      }
      ctx.responseHeader.set("x-count", String(req.number));
      for (let i = 1n; i <= req.number; i++) yield { number: i };
      ctx.responseTrailer.set("x-sent", String(req.number));
    },
    async *cumSum(reqs) {
      let sum = 0n;
      for await (const r of reqs) {
        sum += r.number;
        yield { sum };
      }
    },
  };
}

/** servingPage connects a session that serves PingService; closed after t. */
async function servingPage(t: { after(fn: () => void): void }) {
  const session = await connect(url!, { WebSocket: WS });
  t.after(() => session.close());
  const ends = new Queue<unknown>();
  serveConnect(session, PingService, pingService(ends));
  /** call has the Go server call the page's service as what says, and returns its report. */
  async function call(what: string): Promise<string> {
    const s = await session.open(`/call-page/${what}`);
    const got = await s.receive(StringValueSchema);
    s.close();
    return got?.value ?? "(no report)";
  }
  return { session, ends, call };
}

test("serve: Go calls every shape of the page's service, in binary and JSON", { skip }, async (t) => {
  const { call } = await servingPage(t);
  const want = "ping=7 hi; countUp=1,2,3 header=3 trailer=3; sum=10 trailer=4; cumSum=1,3,6";
  assert.equal(await call("shapes"), want);
  assert.equal(await call("shapes-json"), want);
});

test("serve: request headers, response headers and trailers", { skip }, async (t) => {
  const { call } = await servingPage(t);
  assert.equal(await call("headers"), "header=v1 trailer=t-v1 keys=x-in");
});

test("serve: a ConnectError reaches Go with its code, message, details, headers and trailers", { skip }, async (t) => {
  const { call } = await servingPage(t);
  assert.equal(
    await call("error"),
    `failed_precondition "not now" details=[wsplex.ping.v1.PingRequest: not now] header=h trailer=t meta=m`,
  );
});

test("serve: the page ends a call whose wsplex-timeout-ms passed, and its handler's signal aborts", { skip }, async (t) => {
  const { call, ends } = await servingPage(t);
  assert.equal(await call("deadline"), "deadline_exceeded");
  const why = await ends.next();
  assert.ok(why instanceof ConnectError && why.code === ConnectCode.DeadlineExceeded, `${why}`);
});

test("serve: a Go caller's deadline aborts the handler's signal", { skip }, async (t) => {
  const { call, ends } = await servingPage(t);
  assert.equal(await call("timeout"), "deadline_exceeded");
  const why = await ends.next();
  assert.ok(why instanceof Error && /deadline/i.test(why.message), `${why}`);
});

test("serve: a Go caller's cancel aborts the handler's signal", { skip }, async (t) => {
  const { call, ends } = await servingPage(t);
  assert.equal(await call("cancel"), "got 1, then canceled");
  const why = await ends.next();
  assert.ok(why instanceof Error && /cancel/i.test(why.message), `${why}`);
});

test("serve: unknown procedure and shape mismatch are unimplemented", { skip }, async (t) => {
  const { call } = await servingPage(t);
  assert.equal(await call("unknown"), `unimplemented: no service for procedure "/wsplex.ping.v1.Missing/Ping"`);
  assert.equal(await call("mismatch"), "unimplemented: /wsplex.ping.v1.PingService/Ping is a unary call, not bidi");
});

// --- against a scripted socket ---

/** A scripted server: it opens streams to the client and records what the client sends. */
class ScriptedServer {
  binaryType = "";
  protocol = "wsplex.v1";
  readyState = 1;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private reader = new FrameReader(1 << 30);
  private frames: Frame[] = [];
  private waiting: (() => void) | undefined;

  send(data: Uint8Array): void {
    this.reader.push(new Uint8Array(data));
    for (let f = this.reader.next(); f; f = this.reader.next()) this.frames.push({ ...f, body: f.body.slice() });
    this.waiting?.();
  }
  close(): void {}
  deliver(...frames: Uint8Array[]): void {
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let off = 0;
    for (const f of frames) {
      all.set(f, off);
      off += f.length;
    }
    this.onmessage?.({ data: all.buffer });
  }
  /** until waits until the client sent a frame on stream id that done accepts, and returns the stream's frames. */
  async until(id: number, done: (f: Frame) => boolean): Promise<Frame[]> {
    for (;;) {
      const mine = this.frames.filter((f) => f.streamID === id);
      if (mine.some(done)) return mine;
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

const data = (id: number, body: Uint8Array, flags = 0) => encodeFrame({ type: TYPE_DATA, flags, streamID: id, length: body.length }, body);
const win = (id: number, flags: number) => encodeFrame({ type: TYPE_WINDOW_UPDATE, flags, streamID: id, length: 0 });

/** scriptedPage returns a session on a scripted socket that serves PingService. */
function scriptedPage(impl: Partial<ServiceImpl<typeof PingService>> = pingService(new Queue())) {
  const ws = new ScriptedServer();
  const session = new Session(ws, { windowSize: 256 * 1024 }); // no Window Update besides the ACK
  ws.onopen?.({});
  serveConnect(session, PingService, impl);
  /** open opens stream id with a procedure, metadata and messages, then FIN. */
  function open(id: number, name: string, md: Record<string, string>, ...messages: Uint8Array[]) {
    const req = sizeDelimitedEncode(OpenRequestSchema, create(OpenRequestSchema, { name, metadata: metadataToProto(toMetadata(md)) }));
    ws.deliver(win(id, FLAG_SYN), data(id, req), ...messages.map((m) => data(id, m)), win(id, FLAG_FIN));
  }
  return { ws, session, open };
}

/** outcome reads what the client sent on a stream: the answer, the messages, the reset's status and whether it sent FIN. */
function outcome(frames: Frame[]) {
  const bytes = Buffer.concat(frames.filter((f) => f.type === TYPE_DATA).map((f) => f.body));
  // The delimited messages: the first is the answer.
  const parts: Uint8Array[] = [];
  for (let off = 0; off < bytes.length; ) {
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[off++]!;
      size |= (b & 0x7f) << shift;
      shift += 7;
      if (b < 0x80) break;
    }
    parts.push(bytes.subarray(off, off + size));
    off += size;
  }
  const reset = frames.find((f) => f.type === TYPE_RESET);
  return {
    answer: fromBinary(OpenResponseSchema, parts[0]!),
    messages: parts.slice(1),
    reset: reset && fromBinary(StatusSchema, reset.body),
    fin: frames.some((f) => f.type === TYPE_WINDOW_UPDATE && f.flags & FLAG_FIN),
    ack: frames[0]?.type === TYPE_WINDOW_UPDATE && (frames[0].flags & FLAG_ACK) !== 0,
  };
}

const isEnd = (f: Frame) => f.type === TYPE_WINDOW_UPDATE && (f.flags & (FLAG_FIN | FLAG_RST)) !== 0;
const msg = <D extends DescMessage>(schema: D, init: MessageInitShape<D>) => sizeDelimitedEncode(schema, create(schema, init));

test("serve: the answer carries the response headers and leaves before the response; trailers end the call", async () => {
  const { ws, session, open } = scriptedPage();
  open(2, "/wsplex.ping.v1.PingService/Ping", { "wsplex-rpc": "unary", "x-in": "v" }, msg(PingRequestSchema, { text: "headers" }));
  const got = outcome(await ws.until(2, isEnd));
  assert.ok(got.ack);
  assert.equal(got.answer.status?.code ?? Code.OK, Code.OK);
  assert.deepEqual(got.answer.metadata["x-out"]?.values, ["v"]);
  assert.equal(fromBinary(PingResponseSchema, got.messages[0]!).text, "headers");
  assert.equal(got.reset?.code, Code.OK);
  assert.deepEqual(got.reset?.trailers["x-trailer"]?.values, ["t-v"]);
  assert.ok(got.fin);
  session.close();
});

test("serve: a call that fails before any response answers with its status, then resets with it (SPEC.md §13.3)", async () => {
  const { ws, session, open } = scriptedPage();
  open(2, "/wsplex.ping.v1.PingService/Fail", { "wsplex-rpc": "unary" }, msg(FailRequestSchema, { code: ConnectCode.Aborted, message: "no" }));
  const got = outcome(await ws.until(2, isEnd));
  const st = got.answer.status!;
  assert.equal(st.code, Code.ABORTED);
  assert.equal(st.message, "no");
  assert.equal(st.details[0]?.typeUrl, "type.googleapis.com/wsplex.ping.v1.PingRequest");
  assert.equal(fromBinary(PingRequestSchema, st.details[0]!.value).text, "no");
  assert.deepEqual(st.trailers["x-trailer"]?.values, ["t"]);
  assert.deepEqual(st.trailers["x-meta"]?.values, ["m"]);
  assert.deepEqual(got.answer.metadata["x-header"]?.values, ["h"]);
  assert.equal(got.messages.length, 0);
  assert.equal(got.reset?.code, Code.ABORTED);
  assert.equal(got.reset?.message, "no");
  session.close();
});

test("serve: refusals: unknown procedure, shape, codec, timeout; unimplemented methods; two requests for one", async () => {
  const { ws, session, open } = scriptedPage({ ping: (req) => ({ text: req.text }) });
  const cases: [Record<string, string>, string, number, RegExp][] = [
    [{ "wsplex-rpc": "unary" }, "/wsplex.ping.v1.Missing/Ping", Code.UNIMPLEMENTED, /no service for procedure/],
    [{}, "/wsplex.ping.v1.Missing/Ping", Code.NOT_FOUND, /no handler/],
    [{ "wsplex-rpc": "server" }, "/wsplex.ping.v1.PingService/Ping", Code.UNIMPLEMENTED, /is a unary call, not server/],
    [{ "wsplex-rpc": "both" }, "/wsplex.ping.v1.PingService/Ping", Code.INVALID_ARGUMENT, /malformed wsplex-rpc/],
    [{ "wsplex-codec": "xml" }, "/wsplex.ping.v1.PingService/Ping", Code.UNIMPLEMENTED, /codec "xml"/],
    [{ "wsplex-timeout-ms": "0" }, "/wsplex.ping.v1.PingService/Ping", Code.INVALID_ARGUMENT, /malformed wsplex-timeout-ms/],
    [{ "wsplex-rpc": "client" }, "/wsplex.ping.v1.PingService/Sum", Code.UNIMPLEMENTED, /Sum is not implemented/],
  ];
  let id = 2;
  for (const [md, name, code, message] of cases) {
    open(id, name, md);
    const got = outcome(await ws.until(id, isEnd));
    assert.equal(got.answer.status?.code, code, `${name} ${JSON.stringify(md)}`);
    assert.match(got.answer.status?.message ?? "", message);
    id += 2;
  }
  const one = msg(PingRequestSchema, { text: "a" });
  open(id, "/wsplex.ping.v1.PingService/Ping", { "wsplex-rpc": "unary" }, one, one);
  const got = outcome(await ws.until(id, isEnd));
  assert.equal(got.answer.status?.code, Code.UNIMPLEMENTED);
  assert.match(got.answer.status?.message ?? "", /extra input message/);
  session.close();
});

test("serve: wsplex-timeout-ms ends the call with DEADLINE_EXCEEDED and aborts the handler's signal", async () => {
  const ends = new Queue<unknown>();
  const { ws, session, open } = scriptedPage(pingService(ends));
  open(2, "/wsplex.ping.v1.PingService/Ping", { "wsplex-rpc": "unary", "wsplex-timeout-ms": "30" }, msg(PingRequestSchema, { text: "block" }));
  const got = outcome(await ws.until(2, isEnd));
  assert.equal(got.answer.status?.code, Code.DEADLINE_EXCEEDED);
  assert.equal(got.reset?.code, Code.DEADLINE_EXCEEDED);
  const why = await ends.next();
  assert.ok(why instanceof ConnectError && why.code === ConnectCode.DeadlineExceeded);
  session.close();
});

test("serve: the caller's reset aborts the handler's signal; only a FIN follows", async () => {
  const ends = new Queue<unknown>();
  const { ws, session, open } = scriptedPage(pingService(ends));
  open(2, "/wsplex.ping.v1.PingService/CountUp", { "wsplex-rpc": "server" }, msg(CountUpRequestSchema, { number: -1n }));
  await ws.until(2, (f) => f.type === TYPE_DATA);
  const body = toBinary(StatusSchema, create(StatusSchema, { code: Code.CANCELED, message: "canceled" }));
  ws.deliver(encodeFrame({ type: TYPE_RESET, flags: 0, streamID: 2, length: body.length }, body));
  const why = await ends.next();
  assert.ok(why instanceof Error && /cancel/.test(why.message), `${why}`);
  const got = outcome(await ws.until(2, isEnd));
  assert.equal(got.messages.length, 1, "the first response");
  assert.equal(got.reset, undefined, "no status after the caller's reset");
  session.close();
});
