// Topics (SPEC.md §14) against the real Go server of internal/jsinterop and
// its topic.Hubs: order, resume across reconnects, gaps, overflow, refusals,
// unsubscribing, publishing from the client. The server publishes on
// /topic-control. Run through `go test ./internal/jsinterop`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import WebSocket from "ws";

import { Code, Reconnector, WsplexError, connect, type Session, type WebSocketConstructor } from "../src/index.js";
import { control, events, run } from "./topic-control.js";

const url = process.env.WSPLEX_URL;
const skip = url ? false : "WSPLEX_URL is not set: run these through go test ./internal/jsinterop";
const WS = WebSocket as unknown as WebSocketConstructor;
const HOUR = 3_600_000;

type After = { after(fn: () => void | Promise<void>): void };

async function session(t: After, opts: Parameters<typeof connect>[1] = {}): Promise<Session> {
  const s = await connect(url!, { WebSocket: WS, ...opts });
  t.after(() => s.close());
  return s;
}

test("a subscription delivers what the server publishes, in order, with positions", { skip }, async (t) => {
  const ctl = await control(t, url!);
  const s = await session(t);
  const sub = s.subscribe("/topics/order", StringValueSchema);
  const start = await sub.ready;
  assert.equal(start.offset, 0n, "a new topic starts at offset 0");
  assert.equal(await ctl("publish topics /topics/order 1 300"), `${start.epoch} 300`);
  assert.deepEqual(await events(sub, 300, start.epoch), run(1, 300));
  assert.deepEqual(sub.position, { epoch: start.epoch, offset: 300n });
  await sub.return();
});

test("resuming within the history loses nothing; beyond it, a gap event comes first", { skip }, async (t) => {
  const ctl = await control(t, url!);
  const s = await session(t);
  const sub = s.subscribe("/short/gap", StringValueSchema); // a history of 3
  const { epoch } = await sub.ready;
  await ctl("publish short /short/gap 1 2");
  assert.deepEqual(await events(sub, 2), run(1, 2));
  const at2 = sub.position!;
  await sub.return();

  await ctl("publish short /short/gap 3 8"); // the history keeps 6 to 8
  const late = s.subscribe("/short/gap", StringValueSchema, { since: at2 });
  assert.deepEqual(await late.ready, at2, "the server answers with the position it resumes");
  assert.deepEqual(await events(late, 4, epoch), ["gap 5", ...run(6, 8)]);
  await late.return();

  const within = s.subscribe("/short/gap", StringValueSchema, { since: { epoch, offset: 6n } });
  assert.deepEqual(await events(within, 2, epoch), run(7, 8));
  await ctl("publish short /short/gap 9 9");
  assert.deepEqual(await events(within, 1, epoch), run(9, 9), "then live messages");
  await within.return();

  const elsewhere = s.subscribe("/short/gap", StringValueSchema, { since: { epoch: "another", offset: 6n } });
  assert.deepEqual(await events(elsewhere, 4, epoch), ["gap 6", ...run(7, 9)], "a position of another epoch: all the history holds");
  assert.equal(elsewhere.position!.epoch, epoch);
  await elsewhere.return();
});

test("a subscriber that stops reading overflows its queue, is ended with resource_exhausted, and resumes", { skip }, async (t) => {
  const ctl = await control(t, url!);
  // The smallest window: the server can send the subscriber 4 messages of
  // 64 KiB before it must wait; 4 more may queue, and a batch of at most 4
  // is being written, so 20 overflow the queue.
  const s = await session(t, { windowSize: 256 * 1024 });
  const sub = s.subscribe("/slow/overflow", StringValueSchema);
  const { epoch } = await sub.ready;
  const before = (await ctl("stats slow")).split(" ")[1];
  await ctl(`publish slow /slow/overflow 1 20 ${64 * 1024}`);
  const got: string[] = [];
  for (;;) {
    const [ev] = await events(sub, 1, epoch);
    got.push(ev!.replace(/x+/, ""));
    if (ev!.startsWith("gap")) break;
  }
  // What the window held is read first; what the overflow dropped the
  // history of 4 no longer holds all of: the resumed subscription says so.
  assert.ok(got.length <= 4, `read before the overflow: ${got}`);
  assert.deepEqual(got, [...run(1, got.length - 1), "gap 16"]);
  assert.deepEqual((await events(sub, 4, epoch)).map((e) => e.replace(/x+/, "")), run(17, 20));
  assert.equal((await ctl("stats slow")).split(" ")[1], String(Number(before) + 1), "one overflow");
  await ctl("publish slow /slow/overflow 21 22");
  assert.deepEqual(await events(sub, 2, epoch), run(21, 22), "live again");
  await sub.return();
});

test("refusals reject the subscription and the publisher with the server's status", { skip }, async (t) => {
  const s = await session(t);
  const refused = (code: Code) => (e: unknown) => e instanceof WsplexError && e.code === code && e.remote;
  const nowhere = s.subscribe("/nowhere/x", StringValueSchema);
  await assert.rejects(nowhere.ready, refused(Code.NOT_FOUND));
  await assert.rejects(nowhere.next(), refused(Code.NOT_FOUND));
  await assert.rejects(s.subscribe("/topics/secret", StringValueSchema).next(), refused(Code.PERMISSION_DENIED));
  await assert.rejects(s.publisher("/topics/secret", StringValueSchema).publish(create(StringValueSchema)), refused(Code.PERMISSION_DENIED));
  const pub = s.publisher("/topics/readonly", StringValueSchema);
  await assert.rejects(pub.publish(create(StringValueSchema, { value: "x" })), refused(Code.PERMISSION_DENIED));
  await pub.close();

  const r = new Reconnector(url!, { WebSocket: WS, onlineTarget: null });
  t.after(async () => {
    r.close();
    await r.done;
  });
  await assert.rejects(r.subscribe("/topics/secret", StringValueSchema).next(), refused(Code.PERMISSION_DENIED));
  await assert.rejects(r.subscribe("/nowhere/x", StringValueSchema).next(), refused(Code.NOT_FOUND));
  assert.equal(r.state, "connected", "a refusal ends the subscription, not the session");
});

test("the client publishes with acks, and subscribers receive it", { skip }, async (t) => {
  const s = await session(t);
  const sub = s.subscribe("/topics/pub-chat", StringValueSchema);
  const { epoch } = await sub.ready;
  const pub = s.publisher("/topics/pub-chat", StringValueSchema);
  const acks = await Promise.all(["a", "b", "c"].map((value) => pub.publish(create(StringValueSchema, { value }))));
  assert.deepEqual(acks, [1n, 2n, 3n].map((offset) => ({ epoch, offset })));
  assert.deepEqual(await events(sub, 3, epoch), ["a 1<0", "b 2<1", "c 3<2"]);
  await pub.close();
  await assert.rejects(pub.publish(create(StringValueSchema)), (e) => e instanceof WsplexError && e.code === Code.CANCELED);
  await sub.return();
});

test("unsubscribing ends the server's handler: leaving the loop, the signal, closing the Reconnector", { skip }, async (t) => {
  const ctl = await control(t, url!);
  assert.equal(await ctl("wait-subs topics 0"), "ok");
  const s = await session(t);

  const sub = s.subscribe("/topics/cancel", StringValueSchema);
  await sub.ready;
  assert.equal(await ctl("stats topics"), "1 0");
  await ctl("publish topics /topics/cancel 1 3");
  for await (const ev of sub) {
    assert.equal(ev.gap, false);
    break;
  }
  assert.equal(await ctl("wait-subs topics 0"), "ok");

  const ac = new AbortController();
  const aborted = s.subscribe("/topics/cancel", StringValueSchema, { signal: ac.signal });
  await aborted.ready;
  assert.equal(await ctl("stats topics"), "1 0");
  const pending = aborted.next();
  ac.abort(new Error("enough"));
  await assert.rejects(pending, /enough/);
  assert.equal(await ctl("wait-subs topics 0"), "ok");

  const r = new Reconnector(url!, { WebSocket: WS, onlineTarget: null });
  const viaR = r.subscribe("/topics/cancel", StringValueSchema);
  await viaR.ready;
  assert.equal(await ctl("stats topics"), "1 0");
  const waiting = viaR.next();
  r.close();
  assert.deepEqual(await waiting, { done: true, value: undefined }, "closing the Reconnector ends the iteration");
  await r.done;
  assert.equal(await ctl("wait-subs topics 0"), "ok");
});

test("across reconnects a Reconnector's subscription resumes from the last event yielded: nothing lost or repeated", { skip }, async (t) => {
  const ctl = await control(t, url!);
  const online = new EventTarget();
  let waiting: (() => void) | undefined;
  const r = new Reconnector(url!, {
    WebSocket: WS,
    onlineTarget: online,
    minDelay: HOUR, // only the online event ends a wait
    onStateChange(state) {
      if (state === "waiting") waiting?.();
    },
  });
  t.after(async () => {
    r.close();
    await r.done;
  });
  const sub = r.subscribe("/topics/resume", StringValueSchema);
  const { epoch } = await sub.ready;
  await ctl("publish topics /topics/resume 1 5");
  assert.deepEqual(await events(sub, 3, epoch), run(1, 3), "4 and 5 arrive, unread");

  const lost = new Promise<void>((resolve) => (waiting = resolve));
  await (await r.session()).open("/kill");
  await lost;
  await ctl("publish topics /topics/resume 6 10"); // while no session is up
  online.dispatchEvent(new Event("online"));
  assert.deepEqual(await events(sub, 7, epoch), run(4, 10));
  await ctl("publish topics /topics/resume 11 12");
  assert.deepEqual(await events(sub, 2, epoch), run(11, 12));
  r.close();
  assert.deepEqual(await sub.next(), { done: true, value: undefined });
});
