// Tests of the connect-es transport (src/connect.ts): the bytes of SPEC.md
// §13.7 against a scripted socket, and every call shape against the Go
// server of internal/jsinterop, which serves PingService with package rpc
// (run through `go test ./internal/jsinterop`, which sets WSPLEX_URL).
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import WebSocket from "ws";

import { connect, Session, type WebSocketConstructor } from "../src/index.js";
import { createWsplexTransport, type WsplexTransportOptions } from "../src/connect.js";
import { FrameReader, TYPE_DATA, encodeFrame } from "../src/frame.js";
import { OpenResponseSchema } from "../src/gen/wsplex/v1/wsplex_pb.js";
import { PingRequestSchema, PingService } from "./gen/wsplex/ping/v1/ping_pb.js";

const url = process.env.WSPLEX_URL;
const skip = url ? false : "WSPLEX_URL is not set: run these through go test ./internal/jsinterop";
const WS = WebSocket as unknown as WebSocketConstructor;

/** A scripted WebSocket: it records what the client sends, frame by frame. */
class ScriptedSocket {
  binaryType = "";
  protocol = "wsplex.v1";
  readyState = 1;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  frames: string[] = [];
  private reader = new FrameReader(1 << 30);
  private waiting: (() => void) | undefined;

  send(data: Uint8Array): void {
    this.reader.push(new Uint8Array(data));
    for (let f = this.reader.next(); f; f = this.reader.next()) {
      this.frames.push(Buffer.from(encodeFrame(f, f.type === TYPE_DATA ? f.body : undefined)).toString("hex"));
    }
    this.waiting?.();
  }
  close(): void {}
  /** sent waits until the client has sent n frames. */
  async sent(n: number): Promise<string[]> {
    while (this.frames.length < n) await new Promise<void>((resolve) => (this.waiting = resolve));
    return this.frames;
  }
  deliver(hex: string): void {
    this.onmessage?.({ data: new Uint8Array(Buffer.from(hex.replace(/\s+/g, ""), "hex")).buffer });
  }
}

test("SPEC.md §13.7: a unary call's open, request and half-close leave before any answer", async () => {
  const ws = new ScriptedSocket();
  const session = new Session(ws, { windowSize: 256 * 1024 }); // the SYN adds no window, as in the example
  ws.onopen?.({});
  const client = createClient(PingService, createWsplexTransport(session));
  const call = client.ping({ number: 7n });
  assert.deepEqual(await ws.sent(4), [
    "000100010000000100000000",
    "00000000000000010000003a" +
      "390a202f7773706c65782e70696e672e76312e50696e67536572766963652f50696e67" +
      "12150a0a7773706c65782d72706312070a05756e617279",
    "000000000000000100000003020807",
    "000100040000000100000000",
  ]);
  ws.deliver(`00 01 00 02 00 00 00 01 00 00 00 00
    00 00 00 00 00 00 00 01 00 00 00 03 02 0a 00
    00 00 00 00 00 00 00 01 00 00 00 03 02 08 07
    00 01 00 04 00 00 00 01 00 00 00 00`);
  assert.equal((await call).number, 7n);
  assert.equal(ws.frames.length, 4, "nothing more: both sides sent FIN");
  session.close();
});

test("request metadata: reserved keys, codec and timeout (SPEC.md §13.1)", async () => {
  const ws = new ScriptedSocket();
  const session = new Session(ws);
  ws.onopen?.({});
  const client = createClient(PingService, createWsplexTransport(session, { useBinaryFormat: false }));
  const call = client.ping({ text: "x" }, { headers: { "X-App": "1" }, timeoutMs: 60_000 });
  const [, open, req] = await ws.sent(3);
  const body = Buffer.from(open!.slice(24), "hex");
  for (const want of ["x-app", "wsplex-rpc", "unary", "wsplex-codec", "json", "wsplex-timeout-ms"]) {
    assert.ok(body.includes(want), `the open request has ${want}`);
  }
  const ms = /wsplex-timeout-ms\x12.\x0a.(\d+)/s.exec(body.toString("latin1"))?.[1];
  assert.ok(Number(ms) > 59_000 && Number(ms) <= 60_000, `wsplex-timeout-ms ${ms}`);
  assert.match(Buffer.from(req!.slice(24), "hex").toString(), /\{"text":"x"\}/, "the request in JSON");
  await assert.rejects(
    client.ping({}, { headers: { "wsplex-rpc": "bidi" } }),
    (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument,
  );
  session.close();
  await assert.rejects(call, (e: unknown) => e instanceof ConnectError && e.code === Code.Unavailable);
});

test("a failed call's metadata: headers and trailers, once if the answer's trailers are its headers (SPEC.md §13.6)", async () => {
  // The answer to stream n: the status, with trailers, and the response headers.
  const answer = (n: number, headers: Record<string, string[]>, trailers: Record<string, string[]>) => {
    const values = (md: Record<string, string[]>) => Object.fromEntries(Object.entries(md).map(([k, v]) => [k, { values: v }]));
    const body = sizeDelimitedEncode(
      OpenResponseSchema,
      create(OpenResponseSchema, { status: { code: 9, message: "error", trailers: values(trailers) }, metadata: values(headers) }),
    );
    const id = n.toString(16).padStart(8, "0");
    const len = body.length.toString(16).padStart(8, "0");
    return `00010002${id}00000000 00000000${id}${len}${Buffer.from(body).toString("hex")}`;
  };
  type Case = { headers: Record<string, string[]>; trailers: Record<string, string[]>; want: string; h?: string };
  const cases: Case[] = [
    // What a gateway forwards for a gRPC trailers-only response.
    { headers: { "x-custom-trailer": ["bing", "quuz"] }, trailers: { "x-custom-trailer": ["bing", "quuz"] }, want: "bing, quuz" },
    { headers: { "x-custom-trailer": ["bing"] }, trailers: { "x-custom-trailer": ["bing", "quuz"] }, want: "bing, bing, quuz" },
    { headers: { "x-h": ["h"] }, trailers: { "x-custom-trailer": ["bing"] }, want: "bing", h: "h" },
  ];
  const ws = new ScriptedSocket();
  const session = new Session(ws);
  ws.onopen?.({});
  const client = createClient(PingService, createWsplexTransport(session));
  for (const [i, c] of cases.entries()) {
    const n = 2 * i + 1;
    const call = client.ping({});
    await ws.sent(4 * (i + 1));
    ws.deliver(answer(n, c.headers, c.trailers));
    await assert.rejects(call, (e: unknown) => {
      assert.ok(e instanceof ConnectError && e.code === Code.FailedPrecondition, `${e}`);
      assert.equal(e.metadata.get("x-custom-trailer"), c.want, `case ${i}`);
      assert.equal(e.metadata.get("x-h"), c.h ?? null, `case ${i}`);
      return true;
    });
  }
  session.close();
});

/** newClient returns a PingService client on a new session, closed after t. */
async function newClient(t: { after(fn: () => void): void }, opts: WsplexTransportOptions = {}) {
  const session = await connect(url!, { WebSocket: WS });
  t.after(() => session.close());
  return { session, client: createClient(PingService, createWsplexTransport(session, opts)) };
}

function codeOf(want: Code) {
  return (e: unknown) => {
    assert.ok(e instanceof ConnectError, `${e}`);
    assert.equal(e.code, want, e.message);
    return true;
  };
}

test("rpc: every call shape, in binary and JSON", { skip }, async (t) => {
  for (const useBinaryFormat of [true, false]) {
    const { client } = await newClient(t, { useBinaryFormat });
    const codec = useBinaryFormat ? "proto" : "json";
    assert.deepEqual(await client.ping({ number: 42n, text: "hi" }), { $typeName: "wsplex.ping.v1.PingResponse", number: 42n, text: "hi" });
    assert.equal((await client.ping({ text: "codec" })).text, codec);

    async function* numbers(...ns: number[]) {
      for (const n of ns) yield { number: BigInt(n) };
    }
    assert.equal((await client.sum(numbers(1, 2, 3, 4))).sum, 10n, codec);
    assert.equal((await client.sum(numbers())).sum, 0n, "no requests");

    const counted: bigint[] = [];
    for await (const r of client.countUp({ number: 5n, payloadSize: 3 })) {
      counted.push(r.number);
      assert.equal(r.payload.length, 3);
    }
    assert.deepEqual(counted, [1n, 2n, 3n, 4n, 5n]);

    const sums: bigint[] = [];
    for await (const r of client.cumSum(numbers(1, 2, 3))) sums.push(r.sum);
    assert.deepEqual(sums, [1n, 3n, 6n]);
  }
});

test("rpc: request and response headers and trailers", { skip }, async (t) => {
  const { client } = await newClient(t);
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  const bin = Buffer.from([0, 1, 254, 255]).toString("base64");
  await client.ping(
    { text: "headers" },
    { headers: { "X-In": "v", "x-bin": bin }, onHeader: (h) => (header = h), onTrailer: (h) => (trailer = h) },
  );
  assert.equal(header?.get("x-out"), "v");
  assert.equal(header?.get("x-bin"), bin, "binary headers travel as base64");
  assert.equal(trailer?.get("x-trailer"), "t-v");
  const keys = (await client.ping({ text: "keys" }, { headers: { "x-a": "1" } })).text;
  assert.equal(keys, "X-A", "the handler sees the application's headers, not wsplex-*");

  await client.sum((async function* () {})(), { onTrailer: (h) => (trailer = h) });
  assert.equal(trailer?.get("x-count"), "0");
  for await (const _ of client.countUp({ number: 2n }, { onHeader: (h) => (header = h), onTrailer: (h) => (trailer = h) }));
  assert.deepEqual([header?.get("x-count"), trailer?.get("x-sent")], ["2", "2"]);
});

test("rpc: an error's code, message, details, headers and trailers", { skip }, async (t) => {
  const { client } = await newClient(t);
  await assert.rejects(client.fail({ code: Code.FailedPrecondition, message: "not now" }), (e: unknown) => {
    assert.ok(e instanceof ConnectError);
    assert.deepEqual([e.code, e.rawMessage], [Code.FailedPrecondition, "not now"]);
    assert.deepEqual(
      e.findDetails(PingRequestSchema).map((d) => d.text),
      ["not now"],
    );
    assert.equal(e.metadata.get("x-header"), "h");
    assert.equal(e.metadata.get("x-trailer"), "t");
    return true;
  });
  // A bidi handler that fails after a response, and one that ends early
  // while the caller still sends: the caller reads the outcome.
  const got: bigint[] = [];
  await assert.rejects(async () => {
    for await (const r of client.cumSum((async function* () {
      yield { number: 4n };
      yield { number: -1n };
    })())) got.push(r.sum);
  }, codeOf(Code.Aborted));
  assert.deepEqual(got, [4n]);

  let trailer: Headers | undefined;
  const early: bigint[] = [];
  const more = async function* () {
    yield { number: 5n };
    yield { number: 0n }; // the handler returns here
    for (let i = 1n; i <= 100n; i++) yield { number: i }; // sent, or refused once the end arrives
  };
  for await (const r of client.cumSum(more(), { onTrailer: (h) => (trailer = h) })) early.push(r.sum);
  assert.deepEqual(early, [5n]);
  assert.equal(trailer?.get("x-ended"), "early");
});

test("rpc: cancelling a call reaches the Go handler's context", { skip }, async (t) => {
  const { client } = await newClient(t);
  // Abort a server stream once the handler runs (it sent a response).
  const ac = new AbortController();
  await assert.rejects(async () => {
    for await (const _ of client.countUp({ number: -1n }, { signal: ac.signal })) ac.abort();
  }, codeOf(Code.Canceled));
  assert.match((await client.ping({ text: "last-end" })).text, /canceled/);

  // Leave a response stream early.
  for await (const _ of client.countUp({ number: -1n })) break;
  assert.match((await client.ping({ text: "last-end" })).text, /canceled/);

  // Abort a bidi call.
  const bidi = new AbortController();
  await assert.rejects(async () => {
    for await (const _ of client.cumSum((async function* () {
      yield { number: 1n };
      yield { number: 999n };
    })(), { signal: bidi.signal })) bidi.abort();
  }, codeOf(Code.Canceled));
  assert.match((await client.ping({ text: "last-end" })).text, /canceled/);

  // A unary call aborted before it starts never leaves.
  const before = new AbortController();
  before.abort();
  await assert.rejects(client.ping({ text: "block" }, { signal: before.signal }), codeOf(Code.Canceled));
});

test("rpc: deadlines travel as wsplex-timeout-ms and fail the call with deadline_exceeded", { skip }, async (t) => {
  const { client } = await newClient(t);
  assert.equal((await client.ping({ text: "deadline" })).text, "none");
  const left = Number((await client.ping({ text: "deadline" }, { timeoutMs: 30_000 })).number);
  assert.ok(left > 0 && left <= 30_000, `the handler has ${left} ms left`);
  await assert.rejects(client.ping({ text: "block" }, { timeoutMs: 200 }), codeOf(Code.DeadlineExceeded));
  assert.match((await client.ping({ text: "last-end" })).text, /deadline/);
});

test("rpc: interceptors see and change every call", { skip }, async (t) => {
  const seen: string[] = [];
  const interceptor: Interceptor = (next) => async (req) => {
    req.header.set("x-in", "from-interceptor");
    seen.push(`${req.stream ? "stream" : "unary"} ${req.url}`);
    const res = await next(req);
    seen.push(`header x-out=${res.header.get("x-out")}`);
    return res;
  };
  const { client } = await newClient(t, { interceptors: [interceptor] });
  let trailer: Headers | undefined;
  await client.ping({ text: "headers" }, { onTrailer: (h) => (trailer = h) });
  assert.equal(trailer?.get("x-trailer"), "t-from-interceptor");
  for await (const _ of client.countUp({ number: 1n }));
  assert.deepEqual(seen, [
    "unary /wsplex.ping.v1.PingService/Ping",
    "header x-out=from-interceptor",
    "stream /wsplex.ping.v1.PingService/CountUp",
    "header x-out=null",
  ]);
});

test("rpc: a session lost mid-call fails it with unavailable; a transport given a URL connects again", { skip }, async (t) => {
  const done = new AbortController(); // closes the transport's session
  t.after(() => done.abort());
  const client = createClient(PingService, createWsplexTransport({ url: url!, WebSocket: WS, signal: done.signal }));
  await assert.rejects(client.ping({ text: "drop-session" }), codeOf(Code.Unavailable));
  assert.equal((await client.ping({ number: 1n })).number, 1n, "a new session");
  const got: bigint[] = [];
  await assert.rejects(async () => {
    for await (const r of client.countUp({ number: -2n })) got.push(r.number);
  }, codeOf(Code.Unavailable));
  assert.deepEqual(got, [1n], "the response sent before the loss");
  assert.match((await client.ping({ text: "last-end" })).text, /./, "the handler's context ended with its session");
});
