// Unit tests of topics (SPEC.md §14) against a scripted server: what a
// subscription sends, the events it yields from what the server sends,
// resubscribing, unsubscribing, and publishing with acks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { BinaryReader, sizeDelimitedEncode } from "@bufbuild/protobuf/wire";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";

import { Code, Session, WsplexError, type Position, type TopicEvent } from "../src/index.js";
import { FLAG_ACK, FLAG_FIN, FLAG_SYN, FrameReader, TYPE_DATA, TYPE_RESET, TYPE_WINDOW_UPDATE, encodeFrame, type Frame } from "../src/frame.js";
import { OpenRequestSchema, OpenResponseSchema, StatusSchema, type Status } from "../src/gen/wsplex/v1/wsplex_pb.js";
import { TopicEventSchema, TopicPublishedSchema } from "../src/gen/wsplex/v1/topic_pb.js";

/** Server is the scripted peer of a Session: the test plays the server. */
class Server {
  binaryType = "";
  bufferedAmount = 0;
  protocol = "wsplex.v1";
  readyState = 1;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly session: Session;
  private readonly reader = new FrameReader(1 << 30);
  private frames: Frame[] = [];
  private waiting: (() => void) | undefined;

  constructor() {
    this.session = new Session(this);
    this.onopen?.({});
  }

  // --- the WebSocket the client writes to ---
  send(data: Uint8Array): void {
    this.reader.push(new Uint8Array(data));
    for (let f = this.reader.next(); f; f = this.reader.next()) this.frames.push(f);
    this.waiting?.();
  }
  close(code = 1000, reason = ""): void {
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  /** frame returns the next frame the client sent that matches pred, dropping those before it. */
  async frame(pred: (f: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) {
        const f = this.frames[i]!;
        this.frames.splice(0, i + 1);
        return f;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  /** opened waits for the client to open a stream and returns it, with its open request. */
  async opened(): Promise<{ id: number; name: string; md: Record<string, string[]> }> {
    const syn = await this.frame((f) => f.type === TYPE_WINDOW_UPDATE && (f.flags & FLAG_SYN) !== 0);
    const req = fromBinary(OpenRequestSchema, new BinaryReader((await this.data(syn.streamID)).body).bytes());
    const md = Object.fromEntries(Object.entries(req.metadata).map(([k, v]) => [k, v.values]));
    return { id: syn.streamID, name: req.name, md };
  }

  /** data returns the next Data frame of stream id. */
  data(id: number): Promise<Frame> {
    return this.frame((f) => f.type === TYPE_DATA && f.streamID === id && f.length > 0);
  }

  /** reset returns the status of the next reset frame the client sent on stream id. */
  async reset(id: number): Promise<Status> {
    return fromBinary(StatusSchema, (await this.frame((f) => f.type === TYPE_RESET && f.streamID === id)).body);
  }

  deliver(...frames: Uint8Array[]): void {
    const b = Buffer.concat(frames);
    this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) });
  }

  /** accept answers the open of stream id with Code.OK and a position. */
  accept(id: number, p?: Position): void {
    const metadata: Record<string, { values: string[] }> = p ? { "wsplex-topic-epoch": { values: [p.epoch] }, "wsplex-topic-offset": { values: [p.offset.toString()] } } : {};
    this.deliver(win(id, FLAG_ACK), frame(id, sizeDelimitedEncode(OpenResponseSchema, create(OpenResponseSchema, { status: {}, metadata }))));
  }

  refuse(id: number, code: Code, message: string): void {
    const answer = sizeDelimitedEncode(OpenResponseSchema, create(OpenResponseSchema, { status: { code, message } }));
    this.deliver(win(id, FLAG_ACK), frame(id, answer), resetFrame(id, code, message), win(id, FLAG_FIN));
  }

  event(id: number, ev: MessageInitShape<typeof TopicEventSchema>): void {
    this.deliver(frame(id, sizeDelimitedEncode(TopicEventSchema, create(TopicEventSchema, ev))));
  }

  message(id: number, offset: bigint, prev: bigint, text: string): void {
    const data = toBinary(StringValueSchema, create(StringValueSchema, { value: text }));
    this.event(id, { event: { case: "message", value: { offset, prev, data } } });
  }

  end(id: number, code: Code, message: string): void {
    this.deliver(resetFrame(id, code, message), win(id, FLAG_FIN));
  }
}

function frame(id: number, body: Uint8Array, flags = 0): Uint8Array {
  return encodeFrame({ type: TYPE_DATA, flags, streamID: id, length: body.length }, body);
}
function win(id: number, flags: number, delta = 0): Uint8Array {
  return encodeFrame({ type: TYPE_WINDOW_UPDATE, flags, streamID: id, length: delta });
}
function resetFrame(id: number, code: Code, message: string): Uint8Array {
  const body = toBinary(StatusSchema, create(StatusSchema, { code, message }));
  return encodeFrame({ type: TYPE_RESET, flags: 0, streamID: id, length: body.length }, body);
}

/** brief shows an event as a short string: "gap 5@e" or "m3 3@e<2". */
function brief(ev: TopicEvent<{ value: string }>): string {
  const at = `${ev.position.offset}@${ev.position.epoch}`;
  return ev.gap ? `gap ${at}` : `${ev.message.value} ${at}<${ev.prev}`;
}

async function take(it: AsyncIterator<TopicEvent<{ value: string }>>, n: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(brief(r.value));
  }
  return out;
}

test("subscribe opens the topic with wsplex-topic: subscribe, and yields its messages with their positions", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const sub = srv.session.subscribe("/chat/room/42", StringValueSchema, { metadata: { user: "ann", "wsplex-topic-offset": "9" } });
  const { id, name, md } = await srv.opened();
  assert.equal(name, "/chat/room/42");
  assert.deepEqual(md, { user: ["ann"], "wsplex-topic": ["subscribe"] }, "no position, and reserved keys are the client's own");
  assert.equal(sub.position, undefined);
  srv.accept(id, { epoch: "e1", offset: 7n });
  assert.deepEqual(await sub.ready, { epoch: "e1", offset: 7n });
  assert.deepEqual(sub.position, { epoch: "e1", offset: 7n });
  srv.message(id, 8n, 7n, "m8");
  srv.message(id, 10n, 8n, "m10"); // offsets may skip numbers: prev links them
  assert.deepEqual(await take(sub, 2), ["m8 8@e1<7", "m10 10@e1<8"]);
  assert.deepEqual(sub.position, { epoch: "e1", offset: 10n });
  await sub.return();
});

test("since resumes: the open carries the position, and the server's gap moves it", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const sub = srv.session.subscribe("/t", StringValueSchema, { since: { epoch: "old", offset: 18446744073709551615n } });
  const { id, md } = await srv.opened();
  assert.deepEqual(md["wsplex-topic-epoch"], ["old"]);
  assert.deepEqual(md["wsplex-topic-offset"], ["18446744073709551615"]);
  srv.accept(id, { epoch: "old", offset: 18446744073709551615n });
  srv.event(id, { event: { case: "gap", value: { epoch: "new", offset: 4n } } });
  srv.message(id, 5n, 4n, "m5");
  assert.deepEqual(await take(sub, 2), ["gap 4@new", "m5 5@new<4"]);
  sub.close();
  assert.deepEqual(await sub.next(), { done: true, value: undefined });
});

test("a message whose prev differs from the position is preceded by a gap event", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const sub = srv.session.subscribe("/t", StringValueSchema);
  const { id } = await srv.opened();
  srv.accept(id, { epoch: "e", offset: 0n });
  srv.message(id, 1n, 0n, "m1");
  srv.message(id, 9n, 6n, "m9"); // 2 to 6 lost, and the server did not say
  srv.message(id, 10n, 9n, "m10");
  assert.deepEqual(await take(sub, 4), ["m1 1@e<0", "gap 6@e", "m9 9@e<6", "m10 10@e<9"]);
  await sub.return();
});

test("after resource_exhausted or unavailable the subscription resumes from its position on the same session", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const sub = srv.session.subscribe("/t", StringValueSchema);
  const first = await srv.opened();
  srv.accept(first.id, { epoch: "e", offset: 2n });
  srv.message(first.id, 3n, 2n, "m3");
  srv.message(first.id, 4n, 3n, "m4");
  srv.end(first.id, Code.RESOURCE_EXHAUSTED, "subscriber too slow");
  assert.deepEqual(await take(sub, 2), ["m3 3@e<2", "m4 4@e<3"], "what came before the end is read first");

  const reading = take(sub, 1);
  const second = await srv.opened();
  assert.deepEqual([second.md["wsplex-topic-epoch"], second.md["wsplex-topic-offset"]], [["e"], ["4"]]);
  srv.accept(second.id, { epoch: "e", offset: 4n });
  srv.message(second.id, 5n, 4n, "m5");
  assert.deepEqual(await reading, ["m5 5@e<4"]);

  srv.end(second.id, Code.UNAVAILABLE, "broker lost");
  const again = take(sub, 1);
  const third = await srv.opened();
  assert.deepEqual(third.md["wsplex-topic-offset"], ["5"]);
  srv.accept(third.id, { epoch: "e", offset: 5n });
  srv.message(third.id, 6n, 5n, "m6");
  assert.deepEqual(await again, ["m6 6@e<5"]);
  await sub.return();
});

test("refusals end the subscription with the server's status, and ready rejects", async (t) => {
  for (const code of [Code.NOT_FOUND, Code.PERMISSION_DENIED, Code.INVALID_ARGUMENT]) {
    const srv = new Server();
    t.after(() => srv.session.close());
    const sub = srv.session.subscribe("/secret", StringValueSchema);
    const { id } = await srv.opened();
    srv.refuse(id, code, "no");
    const refused = (e: unknown) => e instanceof WsplexError && e.code === code && e.remote;
    await assert.rejects(sub.ready, refused);
    await assert.rejects(sub.next(), refused);
    assert.deepEqual(await sub.next(), { done: true, value: undefined });
  }
});

test("leaving the loop resets the stream with canceled; so does close()", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const sub = srv.session.subscribe("/t", StringValueSchema);
  const { id } = await srv.opened();
  srv.accept(id, { epoch: "e", offset: 0n });
  srv.message(id, 1n, 0n, "m1");
  for await (const ev of sub) {
    assert.equal(ev.gap, false);
    break;
  }
  assert.equal((await srv.reset(id)).code, Code.CANCELED);

  const other = srv.session.subscribe("/t", StringValueSchema);
  const o = await srv.opened();
  srv.accept(o.id, { epoch: "e", offset: 1n });
  const pending = other.next();
  other.close();
  assert.deepEqual(await pending, { done: true, value: undefined }, "a pending next ends");
  assert.equal((await srv.reset(o.id)).code, Code.CANCELED);
});

test("the signal unsubscribes: a pending next rejects with its reason", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const ac = new AbortController();
  const sub = srv.session.subscribe("/t", StringValueSchema, { signal: ac.signal });
  const { id } = await srv.opened();
  srv.accept(id, { epoch: "e", offset: 0n });
  const pending = sub.next();
  const why = new Error("enough");
  ac.abort(why);
  await assert.rejects(pending, (e) => e === why);
  assert.equal((await srv.reset(id)).code, Code.CANCELED);
  assert.deepEqual(await sub.next(), { done: true, value: undefined });

  const early = srv.session.subscribe("/t", StringValueSchema, { signal: AbortSignal.abort(why) });
  await assert.rejects(early.ready, (e) => e === why);
  await assert.rejects(early.next(), (e) => e === why);
});

test("a subscription ends with its session; an answer without a position is an error", async (t) => {
  const srv = new Server();
  const sub = srv.session.subscribe("/t", StringValueSchema);
  const { id } = await srv.opened();
  srv.accept(id, { epoch: "e", offset: 0n });
  const pending = sub.next();
  srv.onclose?.({ code: 1001, reason: "going away" });
  await assert.rejects(pending, (e) => e instanceof WsplexError && e.code === Code.UNAVAILABLE);
  assert.deepEqual(await sub.next(), { done: true, value: undefined });
  await assert.rejects(srv.session.subscribe("/t", StringValueSchema).next(), (e) => e instanceof WsplexError && e.code === Code.UNAVAILABLE);

  const srv2 = new Server();
  t.after(() => srv2.session.close());
  const bad = srv2.session.subscribe("/t", StringValueSchema);
  const b = await srv2.opened();
  srv2.accept(b.id);
  await assert.rejects(bad.next(), (e) => e instanceof WsplexError && e.code === Code.INTERNAL);
  assert.equal((await srv2.reset(b.id)).code, Code.CANCELED);
});

test("a message that does not decode ends the subscription with invalid_argument", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const sub = srv.session.subscribe("/t", StringValueSchema);
  const { id } = await srv.opened();
  srv.accept(id, { epoch: "e", offset: 0n });
  srv.event(id, { event: { case: "message", value: { offset: 1n, prev: 0n, data: new Uint8Array([0xff]) } } });
  await assert.rejects(sub.next(), (e) => e instanceof WsplexError && e.code === Code.INVALID_ARGUMENT && /offset 1/.test(e.message));
  assert.deepEqual(sub.position, { epoch: "e", offset: 0n }, "the position stays before it");
});

test("publisher: wsplex-topic: publish, pipelined messages, acks in order, and close ends the stream", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const pub = srv.session.publisher("/t", StringValueSchema, { metadata: { user: "ann" } });
  const { id, md } = await srv.opened();
  assert.deepEqual(md, { user: ["ann"], "wsplex-topic": ["publish"] });
  const acks = ["a", "b", "c"].map((value) => pub.publish(create(StringValueSchema, { value })));
  const sent: string[] = [];
  for (let i = 0; i < 3; i++) {
    const f = await srv.data(id);
    sent.push(fromBinary(StringValueSchema, new BinaryReader(f.body).bytes()).value);
  }
  assert.deepEqual(sent, ["a", "b", "c"], "all three leave before any ack");
  srv.accept(id);
  for (const offset of [1n, 2n, 3n]) {
    srv.deliver(frame(id, sizeDelimitedEncode(TopicPublishedSchema, create(TopicPublishedSchema, { epoch: "e", offset }))));
  }
  assert.deepEqual(await Promise.all(acks), [1n, 2n, 3n].map((offset) => ({ epoch: "e", offset })));
  const closing = pub.close();
  await srv.frame((f) => f.type === TYPE_WINDOW_UPDATE && f.streamID === id && (f.flags & FLAG_FIN) !== 0);
  await assert.rejects(pub.publish(create(StringValueSchema)), (e) => e instanceof WsplexError && e.code === Code.CANCELED);
  srv.deliver(win(id, FLAG_FIN));
  await closing;
});

test("publisher: a refusal fails publish with the server's status", async (t) => {
  const srv = new Server();
  t.after(() => srv.session.close());
  const pub = srv.session.publisher("/t", StringValueSchema);
  const { id } = await srv.opened();
  const first = pub.publish(create(StringValueSchema, { value: "x" }));
  srv.refuse(id, Code.PERMISSION_DENIED, "clients may not publish");
  await assert.rejects(first, (e) => e instanceof WsplexError && e.code === Code.PERMISSION_DENIED);
  await assert.rejects(pub.publish(create(StringValueSchema)), (e) => e instanceof WsplexError && e.code === Code.PERMISSION_DENIED);
  await pub.close();
});
