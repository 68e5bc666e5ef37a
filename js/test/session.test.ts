// Unit tests of the frame layer and the session against a scripted fake
// WebSocket: exact bytes on the wire, flow control, and bad input from the
// server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire";
import { StringValueSchema, anyPack, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";

import { Code, Session, WsplexError } from "../src/index.js";
import {
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  FrameReader,
  ProtocolError,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_RESET,
  TYPE_WINDOW_UPDATE,
  encodeFrame,
  type Frame,
} from "../src/frame.js";
import { OpenRequestSchema, OpenResponseSchema, StatusSchema } from "../src/gen/wsplex/v1/wsplex_pb.js";

const KiB = 1024;

/** A frame the client sent, with its bytes. */
type SentFrame = Frame & { raw: Uint8Array };

/** FakeSocket is a WebSocket whose peer is the test. */
class FakeSocket {
  binaryType = "";
  bufferedAmount = 0;
  protocol = "wsplex.v1";
  readyState = 1;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closedWith: { code: number; reason: string } | undefined;
  private reader = new FrameReader(1 << 30);
  private waiting: ((f: SentFrame) => void) | undefined;
  private frames: SentFrame[] = [];

  messages = 0;

  send(data: Uint8Array): void {
    this.messages++;
    this.reader.push(new Uint8Array(data));
    for (let next = this.reader.next(); next; next = this.reader.next()) {
      const f = { ...next, raw: encodeFrame(next, next.type === TYPE_DATA || next.type === TYPE_RESET ? next.body : undefined) };
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(f);
      else this.frames.push(f);
    }
  }
  close(code = 1000, reason = ""): void {
    if (this.closedWith) return;
    this.closedWith = { code, reason };
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  /** sent returns the next frame the client sent. */
  sent(): Promise<SentFrame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => (this.waiting = resolve));
  }
  /** sentNow returns the frames sent so far. */
  sentNow(): SentFrame[] {
    return this.frames.splice(0);
  }
  /** deliver hands the client a binary message. */
  deliver(...parts: Uint8Array[]): void {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const msg = new Uint8Array(n);
    let off = 0;
    for (const p of parts) {
      msg.set(p, off);
      off += p.length;
    }
    this.onmessage?.({ data: msg.buffer });
  }
}

function newSession(opts = {}): { s: Session; ws: FakeSocket } {
  const ws = new FakeSocket();
  const s = new Session(ws, opts);
  ws.onopen?.({});
  return { s, ws };
}

function data(id: number, body: Uint8Array, flags = 0): Uint8Array {
  return encodeFrame({ type: TYPE_DATA, flags, streamID: id, length: body.length }, body);
}
function win(id: number, flags: number, delta = 0): Uint8Array {
  return encodeFrame({ type: TYPE_WINDOW_UPDATE, flags, streamID: id, length: delta });
}
function reset(id: number, code: Code, message = "", more: { details?: Any[]; trailers?: Record<string, string[]> } = {}): Uint8Array {
  const trailers = Object.fromEntries(Object.entries(more.trailers ?? {}).map(([k, values]) => [k, { values }]));
  const body = toBinary(StatusSchema, create(StatusSchema, { code, message, details: more.details, trailers }));
  return encodeFrame({ type: TYPE_RESET, flags: 0, streamID: id, length: body.length }, body);
}
function unhex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
}
function okResponse(): Uint8Array {
  return sizeDelimitedEncode(OpenResponseSchema, create(OpenResponseSchema, { status: { code: Code.OK } }));
}
function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** openOK opens a stream and plays the server's part of accepting it. */
async function openOK(s: Session, ws: FakeSocket, name = "/echo", delta = 0) {
  const opened = s.open(name);
  const syn = await ws.sent();
  await ws.sent(); // the open request
  ws.deliver(win(syn.streamID, FLAG_ACK, delta), data(syn.streamID, okResponse()));
  return { st: await opened, id: syn.streamID };
}

test("FrameReader parses frames split anywhere and packed together", () => {
  const frames = [
    encodeFrame({ type: TYPE_WINDOW_UPDATE, flags: FLAG_SYN, streamID: 1, length: 5 }),
    encodeFrame({ type: TYPE_DATA, flags: 0, streamID: 1, length: 3 }, new Uint8Array([1, 2, 3])),
    encodeFrame({ type: TYPE_PING, flags: FLAG_ACK, streamID: 0, length: 77 }),
    encodeFrame({ type: TYPE_DATA, flags: FLAG_FIN, streamID: 3, length: 0 }, new Uint8Array(0)),
    encodeFrame({ type: TYPE_RESET, flags: 0, streamID: 3, length: 2 }, new Uint8Array([8, 1])),
  ];
  const wire = Buffer.concat(frames);
  for (let step = 1; step <= wire.length; step++) {
    const r = new FrameReader(1 << 20);
    const got: Frame[] = [];
    for (let off = 0; off < wire.length; off += step) {
      r.push(wire.subarray(off, off + step));
      for (let f = r.next(); f; f = r.next()) got.push(f);
    }
    assert.deepEqual(
      got.map((f) => [f.type, f.flags, f.streamID, f.type === TYPE_DATA || f.type === TYPE_RESET ? hex(f.body) : f.length]),
      [
        [TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 5],
        [TYPE_DATA, 0, 1, "010203"],
        [TYPE_PING, FLAG_ACK, 0, 77],
        [TYPE_DATA, FLAG_FIN, 3, ""],
        [TYPE_RESET, 0, 3, "0801"],
      ],
      `split every ${step} bytes`,
    );
  }
});

test("FrameReader rejects bad headers before buffering their bodies", () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), /unknown version 1/],
    [new Uint8Array([0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), /unknown type 5/],
    [encodeFrame({ type: TYPE_RESET, flags: 0, streamID: 1, length: 16385 }), /reset frame body of 16385 bytes exceeds 16384/],
    [encodeFrame({ type: TYPE_RESET, flags: 0, streamID: 0, length: 2 }), /reset frame for stream 0/],
  ];
  for (const [header, want] of cases) {
    const r = new FrameReader(1 << 20);
    r.push(header);
    assert.throws(() => r.next(), (e: unknown) => e instanceof ProtocolError && want.test(e.message));
  }
});

test("open sends SYN with the extra window, then the delimited request (SPEC.md §4.3, §6.2)", async () => {
  const { s, ws } = newSession({ windowSize: KiB * KiB });
  const opened = s.open("/echo");
  const syn = await ws.sent();
  assert.deepEqual([syn.type, syn.flags, syn.streamID, syn.length], [TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 786432]);
  const req = await ws.sent();
  assert.equal(hex(req.body), "070a052f6563686f"); // the example of SPEC.md §6.2
  ws.deliver(win(1, FLAG_ACK), data(1, okResponse()));
  const st = await opened;
  assert.equal(st.id, 1);
  const second = await s.open("/echo");
  assert.equal((await ws.sent()).streamID, 3, "client streams have odd, increasing IDs");
  s.close();
  await assert.rejects(second.response());
});

test("a refusal fails the first read, and response(), with the peer's status and metadata", async () => {
  const { s, ws } = newSession();
  const st = await s.open("/nope");
  await ws.sent();
  await ws.sent();
  const resp = create(OpenResponseSchema, {
    status: { code: Code.NOT_FOUND, message: 'no handler for stream "/nope"' },
    metadata: { hint: { values: ["try /echo"] } },
  });
  ws.deliver(win(1, FLAG_ACK), data(1, sizeDelimitedEncode(OpenResponseSchema, resp)), reset(1, Code.NOT_FOUND, "no handler"), win(1, FLAG_FIN));
  const refused = (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.equal(e.code, Code.NOT_FOUND);
    assert.equal(e.rawMessage, 'no handler for stream "/nope"');
    assert.deepEqual(e.metadata.get("hint"), ["try /echo"]);
    return true;
  };
  await assert.rejects(st.receive(StringValueSchema), refused);
  await assert.rejects(st.response(), refused);
  await assert.rejects(st.write(new Uint8Array([1])), refused);
  assert.ok(st.signal.aborted);
  assert.deepEqual(ws.sentNow().map((f) => [f.type, f.flags]), [[TYPE_WINDOW_UPDATE, FLAG_FIN]], "only a FIN after a refusal");
  s.close();
});

test("open does not wait for the answer: the caller sends at once, and the first read takes the answer (SPEC.md §6.4)", async () => {
  const { s, ws } = newSession({ windowSize: 256 * KiB });
  const st = await Promise.race([
    s.open("/echo"),
    new Promise<never>((_, reject) => setImmediate(() => reject(new Error("open waited for the server's answer")))),
  ]);
  await st.send(StringValueSchema, create(StringValueSchema, { value: "hello" }));
  st.closeWrite();
  // Open, request and half-close are on the wire before any answer: a
  // call with one request costs one round trip.
  assert.deepEqual(
    ws.sentNow().map((f) => hex(f.raw)),
    ["000100010000000100000000", "000000000000000100000008070a052f6563686f", "000000000000000100000008070a0568656c6c6f", "000100040000000100000000"],
  );
  const reading = st.receive(StringValueSchema);
  const resp = create(OpenResponseSchema, { status: {}, metadata: { "x-answer": { values: ["yes"] } } });
  ws.deliver(
    win(1, FLAG_ACK),
    data(1, sizeDelimitedEncode(OpenResponseSchema, resp)),
    data(1, sizeDelimitedEncode(StringValueSchema, create(StringValueSchema, { value: "hello" }))),
    win(1, FLAG_FIN),
  );
  assert.equal((await reading)?.value, "hello", "the first read skips the answer");
  assert.deepEqual((await st.response()).get("x-answer"), ["yes"]);
  assert.deepEqual(st.responseMetadata.get("x-answer"), ["yes"]);
  assert.equal(await st.receive(StringValueSchema), null);
  st.close();
  s.close();
});

test("writes wait for the peer's window and resume on its update", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws); // no extra window: 256 KiB
  ws.sentNow();
  const payload = new Uint8Array(300 * KiB);
  let done = false;
  const writing = st.write(payload).then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  const before = ws.sentNow().reduce((n, f) => n + f.body.length, 0);
  assert.equal(before, 256 * KiB - 8, "only the window minus the open request goes out"); // 8 bytes of request
  assert.equal(done, false);
  ws.deliver(win(id, 0, 64 * KiB));
  await writing;
  const rest = ws.sentNow();
  assert.equal(before + rest.reduce((n, f) => n + f.body.length, 0), 300 * KiB);
  assert.ok(rest.length > 0);
  for (const f of rest) assert.ok(f.body.length <= 128 * KiB - 12, "each frame fits a 128 KiB message");
  s.close();
});

test("reading grants window back, half a window at a time", async () => {
  const { s, ws } = newSession({ windowSize: 512 * KiB });
  const { st, id } = await openOK(s, ws);
  ws.sentNow();
  ws.deliver(data(id, new Uint8Array(200 * KiB)));
  await st.read();
  assert.deepEqual(ws.sentNow(), [], "no update below half the window");
  ws.deliver(data(id, new Uint8Array(100 * KiB)));
  await st.read();
  const updates = ws.sentNow().filter((f) => f.type === TYPE_WINDOW_UPDATE);
  assert.equal(updates.length, 1);
  assert.equal(updates[0]!.length, 300 * KiB + 3); // includes the 3-byte open response
  s.close();
});

test("data beyond the window ends the session with a protocol error", async () => {
  const { s, ws } = newSession({ windowSize: 256 * KiB });
  const { st, id } = await openOK(s, ws);
  ws.deliver(data(id, new Uint8Array(200 * KiB)), data(id, new Uint8Array(100 * KiB)));
  assert.equal(ws.closedWith?.code, 1002);
  assert.match(ws.closedWith!.reason, /beyond its window/);
  await assert.rejects(st.read(), (e: unknown) => e instanceof WsplexError && /protocol error from server/.test(e.message));
  await assert.rejects(s.open("/echo"));
});

test("session-fatal input: Go Away with code 1, then close 1002 with a reason, and no read hangs (SPEC.md §4.8)", async () => {
  const goAway1 = "000300000000000000000001";
  const cases: [string, (ws: FakeSocket) => void, number, RegExp][] = [
    ["bad version", (ws) => ws.deliver(new Uint8Array([7, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])), 1002, /unknown version 7/],
    ["bad type", (ws) => ws.deliver(new Uint8Array([0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])), 1002, /unknown type 5/],
    ["SYN for stream 0", (ws) => ws.deliver(win(0, FLAG_SYN)), 1002, /SYN for stream 0/],
    ["SYN with the client's parity", (ws) => ws.deliver(win(3, FLAG_SYN)), 1002, /SYN for stream 3, an ID of the client's/],
    ["SYN for an open stream", (ws) => ws.deliver(win(2, FLAG_SYN), win(2, FLAG_SYN)), 1002, /SYN for stream 2, which is open/],
    ["SYN for this side's open stream", (ws) => ws.deliver(data(1, new Uint8Array([1]), FLAG_SYN)), 1002, /SYN for stream 1/],
    ["data over the window", (ws) => ws.deliver(data(1, new Uint8Array(300 * KiB))), 1002, /beyond its window/],
    ["data far over the window", (ws) => ws.deliver(encodeFrame({ type: TYPE_DATA, flags: 0, streamID: 1, length: 8 << 20 })), 1002, /beyond its window/],
    ["oversized reset", (ws) => ws.deliver(encodeFrame({ type: TYPE_RESET, flags: 0, streamID: 1, length: 16385 })), 1002, /reset frame body/],
    ["reset for stream 0", (ws) => ws.deliver(reset(0, Code.CANCELED)), 1002, /reset frame for stream 0/],
    ["go away with error", (ws) => ws.deliver(encodeFrame({ type: TYPE_GO_AWAY, flags: 0, streamID: 0, length: 2 })), 1002, /go away with error code 2/],
    ["second FIN", (ws) => ws.deliver(win(1, FLAG_FIN), win(1, FLAG_FIN)), 1002, /second FIN/],
    ["text message", (ws) => ws.onmessage?.({ data: "hello" }), 1003, /binary messages only/],
  ];
  for (const [name, bad, code, why] of cases) {
    const { s, ws } = newSession({ windowSize: 256 * KiB });
    s.handle("/", () => new Promise(() => {}));
    const { st } = await openOK(s, ws);
    const pending = st.read();
    ws.sentNow();
    bad(ws);
    assert.equal(ws.closedWith?.code, code, name);
    assert.match(ws.closedWith!.reason, why, name);
    const sent = ws.sentNow().map((f) => hex(f.raw));
    if (code === 1002) assert.equal(sent.at(-1), goAway1, `${name}: Go Away(1) is the last frame`);
    else assert.ok(!sent.includes(goAway1), name);
    await assert.rejects(pending, (e: unknown) => e instanceof WsplexError, name);
    assert.ok(s.error, name);
    await assert.rejects(s.open("/echo"), (e: unknown) => e instanceof WsplexError, name);
  }
});

test("frames for streams never opened or finished are ignored, except a SYN (SPEC.md §4.5)", async () => {
  const { s, ws } = newSession({ windowSize: 256 * KiB });
  const { st, id } = await openOK(s, ws);
  ws.deliver(win(id, FLAG_FIN));
  assert.equal(await st.read(), null);
  st.close(); // both FINs: finished
  ws.deliver(
    data(id, new Uint8Array(10)),
    win(id, FLAG_FIN),
    win(id, FLAG_ACK, 1000),
    data(41, new Uint8Array(300 * KiB)), // over any window, for nobody
    encodeFrame({ type: TYPE_DATA, flags: FLAG_FIN, streamID: 43, length: 4 << 20 }),
  );
  ws.deliver(new Uint8Array(4 << 20)); // its body
  ws.deliver(win(45, FLAG_RST), reset(47, Code.INTERNAL));
  assert.equal(s.error, undefined);
  assert.equal(ws.closedWith, undefined);
  ws.sentNow();
  const next = await openOK(s, ws); // still works
  next.st.close();
  s.close();
});

test("an oversized message resets the stream with RESOURCE_EXHAUSTED, and only that stream", async () => {
  const { s, ws } = newSession({ maxMessageSize: 1000 });
  const { st, id } = await openOK(s, ws);
  const other = await openOK(s, ws);
  ws.sentNow();
  ws.deliver(data(id, new Uint8Array([0xe9, 0x07]))); // length 1001
  await assert.rejects(st.receive(StringValueSchema), (e: unknown) => e instanceof WsplexError && e.code === Code.RESOURCE_EXHAUSTED);
  const rst = ws.sentNow().find((f) => f.type === TYPE_RESET);
  assert.ok(rst, "a reset frame was sent");
  assert.deepEqual([rst.flags, rst.streamID], [0, id]);
  ws.deliver(data(other.id, sizeDelimitedEncode(StringValueSchema, create(StringValueSchema, { value: "fine" }))));
  assert.equal((await other.st.receive(StringValueSchema))?.value, "fine");
  s.close();
});

test("a malformed message resets the stream with INVALID_ARGUMENT", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.deliver(data(id, new Uint8Array([2, 0x0a, 0xff]))); // field 1 length 255, cut short
  await assert.rejects(st.receive(StringValueSchema), (e: unknown) => e instanceof WsplexError && e.code === Code.INVALID_ARGUMENT);
  s.close();
});

test("server-opened streams are ACKed at once, routed by pattern, and refused when unknown", async () => {
  const { s, ws } = newSession();
  const seen: string[] = [];
  s.handle("/notify/{id}", async (st) => {
    seen.push(`${st.name} ${st.params.id} ${st.metadata.get("k")}`);
  });
  const req = (name: string) =>
    sizeDelimitedEncode(OpenRequestSchema, create(OpenRequestSchema, { name, metadata: { k: { values: ["v"] } } }));
  ws.deliver(win(2, FLAG_SYN, 0));
  const ack = await ws.sent();
  assert.deepEqual([ack.type, ack.flags & FLAG_ACK, ack.streamID], [TYPE_WINDOW_UPDATE, FLAG_ACK, 2], "ACK before any request byte");
  ws.deliver(data(2, req("/notify/42")));
  const grant = await ws.sent();
  assert.deepEqual([grant.type, grant.flags, grant.length], [TYPE_WINDOW_UPDATE, 0, (1 << 20) - 256 * KiB], "the full window once routed");
  const resp = await ws.sent();
  assert.equal(hex(resp.body), "020a00"); // OpenResponse{status: {}}
  const fin = await ws.sent();
  assert.equal(fin.flags & FLAG_FIN, FLAG_FIN);
  assert.deepEqual(seen, ["/notify/42 42 v"]);
  ws.sentNow(); // the handler did not read to the end: a CODE_OK reset follows

  ws.deliver(win(4, FLAG_SYN, 0), data(4, req("/elsewhere")));
  await ws.sent(); // ACK
  const refusal = await ws.sent();
  assert.match(Buffer.from(refusal.body).toString(), /no handler for stream "\/elsewhere"/);
  const rst = await ws.sent();
  assert.deepEqual([rst.type, rst.flags], [TYPE_RESET, 0]);
  s.close();
});

test("Go Away stops new streams but not open ones", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.deliver(encodeFrame({ type: TYPE_GO_AWAY, flags: 0, streamID: 0, length: 0 }));
  await assert.rejects(s.open("/echo"), (e: unknown) => e instanceof WsplexError && e.code === Code.UNAVAILABLE);
  ws.deliver(data(id, new Uint8Array([1, 2])));
  assert.deepEqual(await st.read(), new Uint8Array([1, 2]));
  s.close();
});

test("Ping is answered with the same value, and ping() measures a round trip", async () => {
  const { s, ws } = newSession();
  ws.deliver(encodeFrame({ type: TYPE_PING, flags: FLAG_SYN, streamID: 0, length: 0xdeadbeef }));
  const pong = await ws.sent();
  assert.deepEqual([pong.type, pong.flags, pong.length], [TYPE_PING, FLAG_ACK, 0xdeadbeef]);
  const rtt = s.ping();
  const ping = await ws.sent();
  ws.deliver(encodeFrame({ type: TYPE_PING, flags: FLAG_ACK, streamID: 0, length: ping.length }));
  assert.ok((await rtt) >= 0);
  s.close();
});

test("Ping answers are bounded: at most 16 wait, more Pings are dropped (SPEC.md §4.6)", async () => {
  const { s, ws } = newSession();
  const flood = Array.from({ length: 1000 }, (_, i) => encodeFrame({ type: TYPE_PING, flags: FLAG_SYN, streamID: 0, length: i }));
  ws.deliver(...flood);
  const pongs = ws.sentNow();
  assert.equal(pongs.length, 16);
  assert.deepEqual(
    pongs.map((f) => [f.type, f.flags, f.length]),
    Array.from({ length: 16 }, (_, i) => [TYPE_PING, FLAG_ACK, i]),
  );
  assert.equal(ws.messages, 1, "answered in one message");
  ws.deliver(encodeFrame({ type: TYPE_PING, flags: FLAG_SYN, streamID: 0, length: 7 }));
  assert.deepEqual(ws.sentNow().map((f) => f.length), [7], "once written, answers resume");
  s.close();
});

test("a yamux RST reads as UNAVAILABLE, and no FIN follows it (SPEC.md §4.7)", async () => {
  const { s, ws } = newSession();
  const opened = await s.open("/busy");
  const syn = await ws.sent();
  await ws.sent(); // the open request
  ws.deliver(win(syn.streamID, FLAG_RST));
  await assert.rejects(opened.read(), (e: unknown) => e instanceof WsplexError && e.code === Code.UNAVAILABLE && /refused/.test(e.message));
  assert.deepEqual(ws.sentNow(), [], "nothing more on a refused stream");
  s.close();
});

test("close fails pending writes and reads at once", async () => {
  const { s, ws } = newSession();
  const { st } = await openOK(s, ws); // 256 KiB of window
  const writing = st.write(new Uint8Array(300 * KiB)); // waits for window
  const reading = st.read();
  st.close();
  await assert.rejects(writing, (e: unknown) => e instanceof WsplexError && /after close/.test(e.message));
  await assert.rejects(reading, (e: unknown) => e instanceof WsplexError && /after close/.test(e.message));
  s.close();
});

test("closeWrite fails a write waiting for window", async () => {
  const { s, ws } = newSession();
  const { st } = await openOK(s, ws);
  const writing = st.write(new Uint8Array(300 * KiB));
  st.closeWrite();
  await assert.rejects(writing, (e: unknown) => e instanceof WsplexError && /closeWrite/.test(e.message));
  s.close();
});

test("concurrent reads all settle", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  const a = st.read();
  const b = st.read();
  ws.deliver(data(id, new Uint8Array([1])), win(id, FLAG_FIN));
  const got = await Promise.all([a, b]);
  assert.deepEqual(got.map((c) => c && [...c]), [[1], null]);
  s.close();
});

test("server pushes still work after Go Away, which stops only new opens from this side", async () => {
  const { s, ws } = newSession();
  s.handle("/notify/{id}", async () => {});
  ws.deliver(encodeFrame({ type: TYPE_GO_AWAY, flags: 0, streamID: 0, length: 0 }));
  await s.goAway;
  ws.deliver(win(2, FLAG_SYN));
  const ack = await ws.sent();
  assert.deepEqual([ack.flags, ack.streamID], [FLAG_ACK, 2]);
  s.close();
});

test("server-opened streams beyond maxServerStreams are refused with a reset frame and a yamux RST, and not kept (SPEC.md §4.3)", async () => {
  const { s, ws } = newSession({ maxServerStreams: 2 });
  s.handle("/", async () => new Promise(() => {})); // holds its streams
  ws.deliver(win(2, FLAG_SYN), win(4, FLAG_SYN), win(6, FLAG_SYN));
  const frames = [await ws.sent(), await ws.sent(), await ws.sent(), await ws.sent()];
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamID, f.flags]),
    [[TYPE_WINDOW_UPDATE, 2, FLAG_ACK], [TYPE_WINDOW_UPDATE, 4, FLAG_ACK], [TYPE_RESET, 6, 0], [TYPE_WINDOW_UPDATE, 6, FLAG_RST]],
  );
  const why = fromBinary(StatusSchema, frames[2]!.body);
  assert.deepEqual([why.code, why.message], [Code.RESOURCE_EXHAUSTED, "too many concurrent streams (limit 2)"]);
  ws.deliver(data(6, new Uint8Array([1])), win(6, FLAG_FIN)); // sent before the refusal arrived: ignored
  assert.deepEqual(ws.sentNow(), []);
  assert.equal(s.error, undefined);
  s.close();
});

test("with no handlers, server-opened streams are refused at once", async () => {
  const { s, ws } = newSession();
  ws.deliver(win(2, FLAG_SYN));
  const [rst, f] = [await ws.sent(), await ws.sent()];
  assert.deepEqual([rst.type, rst.streamID, fromBinary(StatusSchema, rst.body).code], [TYPE_RESET, 2, Code.NOT_FOUND]);
  assert.deepEqual([f.streamID, f.flags], [2, FLAG_RST]);
  s.close();
});

test("a frame split into one-byte messages is reassembled", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  const body = new Uint8Array(200 * KiB).map((_, i) => i * 7);
  const frame = data(id, body);
  for (let i = 0; i < frame.length; i++) ws.deliver(frame.subarray(i, i + 1));
  const got: number[] = [];
  let n = 0;
  while (n < body.length) {
    const c = await st.read();
    n += c!.length;
    if (got.length < 10) got.push(...c!.subarray(0, 10 - got.length));
  }
  assert.equal(n, body.length);
  assert.deepEqual(got, [...body.subarray(0, 10)]);
  s.close();
});

test("ping times out without an answer", async () => {
  const { s } = newSession();
  await assert.rejects(s.ping(10), (e: unknown) => e instanceof WsplexError && e.code === Code.DEADLINE_EXCEEDED);
  s.close();
});

test("a reset delivers earlier data, then its status; close after a CODE_OK reset is clean", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.deliver(data(id, new Uint8Array([9])), reset(id, Code.CANCELED, "bye"), win(id, FLAG_FIN));
  assert.deepEqual(await st.read(), new Uint8Array([9]));
  await assert.rejects(st.read(), (e: unknown) => e instanceof WsplexError && e.code === Code.CANCELED && e.rawMessage === "bye");
  await assert.rejects(st.write(new Uint8Array([1])), (e: unknown) => e instanceof WsplexError && e.code === Code.CANCELED);
  assert.ok(st.signal.aborted);
  s.close();
});

test("close before the end tells the peer with a CODE_OK reset, then FIN (SPEC.md §8)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.sentNow();
  st.close();
  const [rst, fin] = ws.sentNow();
  assert.deepEqual([rst!.type, rst!.flags, rst!.streamID, rst!.body.length], [TYPE_RESET, 0, id, 0]);
  assert.deepEqual([fin!.type, fin!.flags, fin!.streamID], [TYPE_WINDOW_UPDATE, FLAG_FIN, id]);
  s.close();
});

test("a Data frame with the RST flag is a yamux-native RST, its body discarded (SPEC.md §4.7)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.sentNow();
  const status = toBinary(StatusSchema, create(StatusSchema, { code: Code.CANCELED, message: "not a status" }));
  ws.deliver(data(id, new Uint8Array([1, 2])), data(id, status, FLAG_RST));
  await assert.rejects(st.read(), (e: unknown) => e instanceof WsplexError && e.code === Code.UNAVAILABLE && /refused/.test(e.message));
  st.close();
  assert.deepEqual(ws.sentNow(), [], "no reset or FIN after a yamux RST");
  s.close();
});

test("FrameReader skips a Data body over its limit as it arrives, without holding it", () => {
  const r = new FrameReader(1000);
  r.push(encodeFrame({ type: TYPE_DATA, flags: 0, streamID: 7, length: 5000 }));
  const f = r.next();
  assert.deepEqual([f?.type, f?.streamID, f?.length, f?.body.length, f?.skipped], [TYPE_DATA, 7, 5000, 0, true]);
  r.push(new Uint8Array(4999));
  assert.equal(r.next(), undefined);
  r.push(Buffer.concat([new Uint8Array(1), encodeFrame({ type: TYPE_PING, flags: FLAG_SYN, streamID: 0, length: 5 })]));
  const ping = r.next();
  assert.deepEqual([ping?.type, ping?.length], [TYPE_PING, 5], "the frame after the skipped body");
});

test("a reset's status over 16 KiB is cut on a UTF-8 boundary and says so (SPEC.md §5)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.sentNow();
  st.reset(Code.INTERNAL, "é".repeat(10_000), { details: [why("d")], trailers: { k: "v" } }); // 20,000 bytes of two-byte characters
  const [rst] = ws.sentNow();
  assert.deepEqual([rst!.type, rst!.flags, rst!.streamID], [TYPE_RESET, 0, id]);
  assert.ok(rst!.body.length <= 16384, `a ${rst!.body.length}-byte status`);
  const got = fromBinary(StatusSchema, rst!.body);
  assert.equal(got.code, Code.INTERNAL);
  assert.match(got.message, /^(é)+\.\.\. \[status over 16 KiB: details and trailers dropped\]$/);
  assert.deepEqual([got.details.length, Object.keys(got.trailers).length], [0, 0], "details and trailers dropped");
  s.close();
});

test("SPEC.md §11: the client's bytes of the worked example, a refusal, a cancel and an early close", async () => {
  // windowSize 256 KiB: the SYN grants nothing beyond the initial window,
  // as in the example (the default window adds its extra to the SYN).
  const { s, ws } = newSession({ windowSize: 256 * KiB });
  const opened = s.open("/echo");
  assert.equal(hex((await ws.sent()).raw), "000100010000000100000000", "1: SYN, +0");
  assert.equal(hex((await ws.sent()).raw), "0000000000000001000000080" + "70a052f6563686f", "2: OpenRequest");
  ws.deliver(unhex("00 01 00 02 00 00 00 01 00 00 00 00"));
  ws.deliver(unhex("00 00 00 00 00 00 00 01 00 00 00 03 02 0a 00"));
  ws.deliver(unhex("00 00 00 00 00 00 00 01 00 00 00 08 07 0a 05 68 65 6c 6c 6f"));
  const echo = await opened;
  await echo.send(StringValueSchema, create(StringValueSchema, { value: "hello" }));
  assert.equal(hex((await ws.sent()).raw), "000000000000000100000008070a0568656c6c6f", "3: the message");
  assert.equal((await echo.receive(StringValueSchema))?.value, "hello");
  echo.closeWrite();
  assert.equal(hex((await ws.sent()).raw), "000100040000000100000000", "7: FIN");
  ws.deliver(unhex("00 01 00 04 00 00 00 01 00 00 00 00"));
  assert.equal(await echo.receive(StringValueSchema), null);
  echo.close();
  assert.deepEqual(ws.sentNow(), [], "nothing after both FINs");

  // A refused stream.
  const nope = await s.open("/nope");
  await ws.sent();
  await ws.sent();
  ws.deliver(unhex("00 01 00 02 00 00 00 03 00 00 00 00"));
  ws.deliver(
    unhex(`00 00 00 00 00 00 00 03 00 00 00 24
      23 0a 21 08 05 12 1d 6e 6f 20 68 61 6e 64 6c 65 72 20 66 6f 72 20 73 74 72 65 61 6d 20 22 2f 6e 6f 70 65 22`),
  );
  ws.deliver(
    unhex(`00 04 00 00 00 00 00 03 00 00 00 21
      08 05 12 1d 6e 6f 20 68 61 6e 64 6c 65 72 20 66 6f 72 20 73 74 72 65 61 6d 20 22 2f 6e 6f 70 65 22`),
  );
  ws.deliver(unhex("00 01 00 04 00 00 00 03 00 00 00 00"));
  await assert.rejects(nope.read(), (e: unknown) => e instanceof WsplexError && e.code === Code.NOT_FOUND && e.rawMessage === 'no handler for stream "/nope"');
  assert.deepEqual(ws.sentNow().map((f) => hex(f.raw)), ["000100040000000300000000"], "the client's FIN");

  // A cancelled stream, and one closed early.
  const cancelled = await openOK(s, ws);
  ws.sentNow();
  cancelled.st.cancel();
  assert.deepEqual(ws.sentNow().map((f) => hex(f.raw)), ["00040000000000050000000c080112086361" + "6e63656c6564", "000100040000000500000000"]);
  const early = await openOK(s, ws);
  ws.sentNow();
  early.st.close();
  assert.deepEqual(ws.sentNow().map((f) => hex(f.raw)), ["000400000000000700000000", "000100040000000700000000"]);
  s.close();
});

/** why packs a detail message. */
function why(value: string): Any {
  return anyPack(StringValueSchema, create(StringValueSchema, { value }));
}

test("a reset's details and trailers reach the application, and an unknown code reads as UNKNOWN (SPEC.md §5, §9)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.deliver(reset(id, 99 as Code, "from the future", { details: [why("because")], trailers: { "x-k": ["a", "b"] } }), win(id, FLAG_FIN));
  await assert.rejects(st.read(), (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.deepEqual([e.code, e.rawMessage, e.remote], [Code.UNKNOWN, "unknown code 99: from the future", true]);
    assert.equal(e.details.length, 1);
    assert.equal(anyUnpack(e.details[0]!, StringValueSchema)?.value, "because");
    assert.deepEqual(e.trailers.get("x-k"), ["a", "b"]);
    return true;
  });
  assert.deepEqual(st.trailers.get("x-k"), ["a", "b"], "stream.trailers");

  // A refused open carries the status's details and trailers too.
  const opened = await s.open("/nope");
  const syn = await ws.sent();
  await ws.sent();
  const resp = create(OpenResponseSchema, {
    status: { code: Code.PERMISSION_DENIED, message: "no", details: [why("policy")], trailers: { t: { values: ["1"] } } },
    metadata: { m: { values: ["2"] } },
  });
  ws.deliver(win(syn.streamID, FLAG_ACK), data(syn.streamID, sizeDelimitedEncode(OpenResponseSchema, resp)));
  await assert.rejects(opened.response(), (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.equal(e.code, Code.PERMISSION_DENIED);
    assert.equal(anyUnpack(e.details[0]!, StringValueSchema)?.value, "policy");
    assert.deepEqual([e.trailers.get("t"), e.metadata.get("m")], [["1"], ["2"]]);
    return true;
  });
  s.close();
});

test("a CODE_OK reset with trailers: reads deliver the data, then end normally; writes fail; the work goes on (SPEC.md §5)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.deliver(data(id, new Uint8Array([7])), reset(id, Code.OK, "", { trailers: { done: ["yes"] } }), win(id, FLAG_FIN));
  assert.deepEqual(await st.read(), new Uint8Array([7]));
  assert.equal(await st.read(), null, "end of stream, not an error");
  assert.deepEqual(st.trailers.get("done"), ["yes"]);
  await assert.rejects(st.write(new Uint8Array([1])), (e: unknown) => e instanceof WsplexError && /peer closed/.test(e.message));
  assert.equal(st.signal.aborted, false, "the stream's work is not cancelled");
  s.close();
});

test("reset and a handler's thrown WsplexError send details and trailers; a CODE_OK reset may carry trailers", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.sentNow();
  st.reset(Code.ABORTED, "conflict", { details: [why("retry")], trailers: { "X-Rev": "7" } });
  const [rst, fin] = ws.sentNow();
  assert.deepEqual([rst!.type, rst!.streamID, fin!.flags], [TYPE_RESET, id, FLAG_FIN]);
  const sent = fromBinary(StatusSchema, rst!.body);
  assert.deepEqual([sent.code, sent.message, sent.trailers["x-rev"]?.values], [Code.ABORTED, "conflict", ["7"]]);
  assert.equal(anyUnpack(sent.details[0]!, StringValueSchema)?.value, "retry");

  const clean = await openOK(s, ws);
  ws.sentNow();
  clean.st.reset(Code.OK, "", { trailers: { sum: "42" } });
  const [okReset] = ws.sentNow();
  assert.deepEqual(fromBinary(StatusSchema, okReset!.body).trailers["sum"]?.values, ["42"]);
  assert.equal(clean.st.signal.aborted, false, "ending cleanly cancels nothing");
  assert.equal(await clean.st.read(), null, "this side's reads end cleanly");

  s.handle("/fail", async () => {
    throw new WsplexError(Code.FAILED_PRECONDITION, "not now", { details: [why("later")], trailers: { k: "v" } });
  });
  ws.deliver(win(2, FLAG_SYN), data(2, sizeDelimitedEncode(OpenRequestSchema, create(OpenRequestSchema, { name: "/fail" }))));
  let f = await ws.sent();
  while (f.type !== TYPE_RESET) f = await ws.sent();
  const thrown = fromBinary(StatusSchema, f.body);
  assert.deepEqual([f.streamID, thrown.code, thrown.message, thrown.trailers["k"]?.values], [2, Code.FAILED_PRECONDITION, "not now", ["v"]]);
  assert.equal(anyUnpack(thrown.details[0]!, StringValueSchema)?.value, "later");
  s.close();
});

test("data after a reset is discarded; a second reset, or one for an unknown stream, is ignored (SPEC.md §5)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.deliver(data(id, new Uint8Array([1])), reset(id, Code.ABORTED, "first"), data(id, new Uint8Array([2])), reset(id, Code.INTERNAL, "second"));
  ws.deliver(reset(99, Code.INTERNAL, "nobody's"), reset(4, Code.INTERNAL, "never opened"));
  assert.deepEqual(await st.read(), new Uint8Array([1]));
  await assert.rejects(st.read(), (e: unknown) => e instanceof WsplexError && e.code === Code.ABORTED && e.rawMessage === "first");
  assert.equal(s.error, undefined, "the session goes on");
  s.close();
});

test("a reset from the peer after this side's own is ignored: each keeps the status it sent (SPEC.md §5)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  st.reset(Code.OK, "", { trailers: { k: "v" } }); // ends cleanly
  ws.deliver(reset(id, Code.CANCELED, "crossed"), win(id, FLAG_FIN));
  assert.equal(await st.read(), null, "still this side's clean end");
  assert.equal(st.signal.aborted, false, "the peer's reset cancels nothing");
  assert.equal(st.trailers.size, 0);
  s.close();
});

test("after the peer's reset, a local reset sends only FIN (SPEC.md §5)", async () => {
  const { s, ws } = newSession();
  const { st, id } = await openOK(s, ws);
  ws.sentNow();
  ws.deliver(reset(id, Code.UNAVAILABLE, "going"));
  st.cancel();
  assert.deepEqual(ws.sentNow().map((f) => hex(f.raw)), [hex(win(id, FLAG_FIN))]);
  s.close();
});

test("nothing but FIN follows a reset: no window update for data dropped (SPEC.md §5)", async () => {
  const { s, ws } = newSession({ windowSize: 256 * KiB });
  const a = await openOK(s, ws);
  const b = await openOK(s, ws);
  ws.deliver(data(a.id, new Uint8Array(200 * KiB)), data(b.id, new Uint8Array(200 * KiB)));
  ws.sentNow();
  a.st.cancel();
  b.st.close(); // a CODE_OK reset: the peer's data was not read to the end
  assert.deepEqual(
    ws.sentNow().map((f) => [f.type, f.streamID]),
    [[TYPE_RESET, a.id], [TYPE_WINDOW_UPDATE, a.id], [TYPE_RESET, b.id], [TYPE_WINDOW_UPDATE, b.id]],
  );
  ws.deliver(data(a.id, new Uint8Array(50 * KiB))); // in flight before the reset: dropped, within the window
  assert.deepEqual(ws.sentNow(), []);
  assert.equal(s.error, undefined);
  s.close();
});

test("a server-opened stream closed by its opener (CODE_OK reset) after its request is still served (SPEC.md §6.3)", async () => {
  const { s, ws } = newSession();
  let served!: (what: string) => void;
  const seen = new Promise<string>((resolve) => (served = resolve));
  s.handle("/upload", async (st) => {
    const got = await st.receive(StringValueSchema);
    const end = await st.receive(StringValueSchema);
    served(`${got?.value} ${end} aborted=${st.signal.aborted}`);
  });
  const req = sizeDelimitedEncode(OpenRequestSchema, create(OpenRequestSchema, { name: "/upload" }));
  const msg = sizeDelimitedEncode(StringValueSchema, create(StringValueSchema, { value: "payload" }));
  ws.deliver(win(2, FLAG_SYN), data(2, req), data(2, msg), win(2, FLAG_FIN), reset(2, Code.OK));
  assert.equal(await seen, "payload null aborted=false");
  s.close();
});

test("a reset frame then a yamux RST, a refusal at the SYN, fails the first read with the reset's status (SPEC.md §4.3, §6.4)", async () => {
  const { s, ws } = newSession();
  const opened = await s.open("/busy");
  const syn = await ws.sent();
  await ws.sent(); // the open request
  ws.deliver(reset(syn.streamID, Code.RESOURCE_EXHAUSTED, "too many concurrent streams (limit 4096)"), win(syn.streamID, FLAG_RST));
  await assert.rejects(opened.read(), (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.deepEqual([e.code, e.rawMessage, e.remote], [Code.RESOURCE_EXHAUSTED, "too many concurrent streams (limit 4096)", true]);
    return true;
  });
  assert.deepEqual(ws.sentNow(), [], "no FIN after a yamux RST");

  // After a CODE_OK reset, a yamux RST drops what was buffered and ends
  // reads cleanly.
  const { st, id } = await openOK(s, ws);
  ws.deliver(data(id, new Uint8Array([1])), reset(id, Code.OK), win(id, FLAG_RST));
  assert.equal(await st.read(), null);
  await assert.rejects(st.write(new Uint8Array([1])), /peer closed/);
  s.close();
});

test("tokenProtocol matches SPEC.md §2.1", async () => {
  const { tokenProtocol } = await import("../src/index.js");
  assert.equal(tokenProtocol("t-alice"), "wsplex.bearer.dC1hbGljZQ");
});

test("random bytes from the server end the session cleanly or are taken, never throw (fuzz)", async () => {
  // A deterministic pseudo-random generator, so a failure can be replayed.
  let seed = 0x2545f491;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  for (let round = 0; round < 2000; round++) {
    const { s, ws } = newSession({ maxMessageSize: 4096, windowSize: 256 * KiB });
    s.handle("/", async (st) => {
      for await (const _ of st.messages(StringValueSchema));
    });
    const opened = s.open("/x").then((st) => st.response()).catch((e) => e);
    // Plausible headers with random fields, then random bytes.
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 1 + Math.floor(rand() * 6); i++) {
      const type = Math.floor(rand() * 6);
      const flags = Math.floor(rand() * 16);
      const id = Math.floor(rand() * 5);
      const body = new Uint8Array(Math.floor(rand() * 40)).map(() => Math.floor(rand() * 256));
      if (type === 4 && rand() < 0.5) {
        // A reset frame with a status that decodes, now and then.
        parts.push(reset(id, Math.floor(rand() * 20), "r"));
        continue;
      }
      const h = encodeFrame({ type: type % 5, flags, streamID: id, length: body.length }, body);
      if (type === 5) h[0] = 1; // a bad version now and then
      parts.push(h);
    }
    const wire = Buffer.concat(parts);
    for (let off = 0; off < wire.length; ) {
      const n = 1 + Math.floor(rand() * 20);
      ws.deliver(wire.subarray(off, off + n)); // must not throw
      off += n;
    }
    s.close();
    const r = await opened;
    assert.ok(!(r instanceof Error) || r instanceof WsplexError, `round ${round}: open failed with ${r}`);
  }
});

test("writes wait while the WebSocket holds more than maxBufferedAmount, until it holds half", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { s, ws } = newSession({ maxBufferedAmount: 1000 });
  const { st } = await openOK(s, ws);
  ws.bufferedAmount = 1001;
  let done = false;
  const w = st.write(new Uint8Array([1, 2, 3])).then(() => (done = true));
  for (let i = 0; i < 10; i++) await Promise.resolve();
  assert.equal(done, false, "the write waits");
  assert.deepEqual(ws.sentNow(), [], "nothing was sent");
  ws.bufferedAmount = 501;
  t.mock.timers.tick(100);
  for (let i = 0; i < 10; i++) await Promise.resolve();
  assert.equal(done, false, "above half of the limit, the write still waits");
  ws.bufferedAmount = 500;
  t.mock.timers.tick(100);
  await w;
  const sent = ws.sentNow();
  assert.equal(sent.length, 1);
  assert.equal(hex(sent[0]!.body), "010203");
  s.close();
});

test("a write waiting for the WebSocket to drain fails when the session ends", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { s, ws } = newSession({ maxBufferedAmount: 1000 });
  const { st } = await openOK(s, ws);
  ws.bufferedAmount = 5000;
  const w = st.write(new Uint8Array([1]));
  s.close();
  t.mock.timers.tick(100);
  await assert.rejects(w, WsplexError);
});
