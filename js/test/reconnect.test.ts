// Unit tests of the Reconnector against fake WebSockets that the test
// opens, refuses and closes.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Code, Reconnector, WsplexError, type ReconnectOptions, type ReconnectState, type WebSocketConstructor } from "../src/index.js";
import { backoff } from "../src/reconnect.js";

const HOUR = 3_600_000;

/** FakeWS is a WebSocket that opens or fails as the test says. */
class FakeWS {
  static accept = true;
  static all: FakeWS[] = [];
  binaryType = "";
  protocol = "";
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private ended = false;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWS.all.push(this);
    const accept = FakeWS.accept;
    queueMicrotask(() => {
      if (accept) {
        this.protocol = "wsplex.v1";
        this.readyState = 1;
        this.onopen?.({});
      } else {
        this.onerror?.({});
        this.end(1006, "");
      }
    });
  }
  send(): void {}
  close(code = 1000, reason = ""): void {
    queueMicrotask(() => this.end(code, reason));
  }
  /** end closes the socket from the server's side. */
  end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  static last(): FakeWS {
    return FakeWS.all[FakeWS.all.length - 1]!;
  }
}

/**
 * start runs a Reconnector on FakeWS, whose first socket opens if accept,
 * and records its states; next(state) waits for it.
 */
function start(t: { after(fn: () => void | Promise<void>): void }, opts: ReconnectOptions = {}, accept = true) {
  FakeWS.all = [];
  FakeWS.accept = accept;
  const seen: ReconnectState[] = [];
  let waiting: { state: ReconnectState; resolve(err: unknown): void } | undefined;
  const r = new Reconnector("ws://test/wsplex", {
    WebSocket: FakeWS as unknown as WebSocketConstructor,
    onlineTarget: null,
    ...opts,
    onStateChange(state, err) {
      seen.push(state);
      opts.onStateChange?.(state, err);
      if (waiting?.state === state) {
        const w = waiting;
        waiting = undefined;
        w.resolve(err);
      }
    },
  });
  t.after(async () => {
    r.close();
    await r.done;
  });
  const next = (state: ReconnectState) => new Promise<unknown>((resolve) => (waiting = { state, resolve }));
  return { r, seen, next };
}

test("a lost session is replaced, and onConnect runs on each", async (t) => {
  const hooked: unknown[] = [];
  const { r, seen, next } = start(t, { minDelay: 1, maxDelay: 1, onConnect: (s) => void hooked.push(s) });
  const s1 = await r.session();
  assert.equal(r.state, "connected");
  const lost = next("waiting");
  FakeWS.last().end(1001, "going away");
  const err = await lost;
  assert.ok(err instanceof WsplexError && err.code === Code.UNAVAILABLE, `waiting because of ${err}`);
  await next("connected");
  const s2 = await r.session();
  assert.notEqual(s2, s1);
  assert.deepEqual(hooked, [s1, s2]);
  assert.deepEqual(seen, ["connecting", "connected", "waiting", "connecting", "connected"]);
  assert.ok(s1.error, "the lost session ended");
});

test("while waiting, sessionFailFast fails with unavailable and session waits", async (t) => {
  const { r, next } = start(t, { minDelay: HOUR }, false);
  await next("waiting");
  await assert.rejects(r.sessionFailFast(), (e: unknown) => e instanceof WsplexError && e.code === Code.UNAVAILABLE);
  const pending = r.session();
  r.close();
  await assert.rejects(pending, (e: unknown) => e instanceof WsplexError && e.code === Code.CANCELED);
  await r.done; // the hour-long wait ended with close
  assert.equal(r.state, "closed");
});

test("sessionFailFast waits while connecting, and fails if that attempt fails", async (t) => {
  const { r } = start(t, { minDelay: HOUR }, false);
  assert.equal(r.state, "connecting");
  await assert.rejects(r.sessionFailFast(), (e: unknown) => e instanceof WsplexError && e.code === Code.UNAVAILABLE);
  assert.equal(r.state, "waiting");
});

test("an online event ends the wait at once", async (t) => {
  const online = new EventTarget();
  const { r, next } = start(t, { minDelay: HOUR, onlineTarget: online }, false);
  await next("waiting");
  FakeWS.accept = true;
  online.dispatchEvent(new Event("online"));
  await r.session();
  assert.equal(FakeWS.all.length, 2);
});

test("an onConnect that throws fails the attempt and closes its session", async (t) => {
  let calls = 0;
  const { r, next } = start(t, {
    minDelay: 1,
    maxDelay: 1,
    onConnect() {
      if (++calls === 1) throw new Error("subscribe failed");
    },
  });
  const err = await next("waiting");
  assert.equal((err as Error).message, "subscribe failed");
  assert.equal(FakeWS.all[0]!.readyState, 3, "the first session is closed");
  await r.session();
  assert.equal(calls, 2);
});

test("an aborted signal ends a wait for a session", async (t) => {
  const { r, next } = start(t, { minDelay: HOUR }, false);
  await next("waiting");
  const ac = new AbortController();
  const pending = r.session(ac.signal);
  ac.abort(new Error("gave up"));
  await assert.rejects(pending, /gave up/);
});

test("close during a session closes it", async (t) => {
  const { r } = start(t);
  const s = await r.session();
  r.close();
  await r.done;
  assert.ok(s.error instanceof WsplexError);
  assert.equal(r.state, "closed");
  await assert.rejects(r.session(), (e: unknown) => e instanceof WsplexError && e.code === Code.CANCELED);
});

test("backoff draws from [0, min(max, min·2ⁿ))", () => {
  assert.equal(backoff(0, 100, 30_000, () => 0.5), 50);
  assert.equal(backoff(3, 100, 30_000, () => 0.5), 400);
  assert.equal(backoff(20, 100, 30_000, () => 0.5), 15_000);
  assert.equal(backoff(5000, 100, 30_000, () => 0.5), 15_000);
  assert.equal(backoff(3, 0, 0, () => 0.5), 0);
  for (let n = 0; n < 30; n++) {
    const d = backoff(n, 100, 30_000);
    assert.ok(d >= 0 && d < Math.min(30_000, 100 * 2 ** n), `retry ${n}: ${d}`);
  }
});

test("invalid delays are refused", () => {
  assert.throws(() => new Reconnector("ws://x", { minDelay: -1, onlineTarget: null }), RangeError);
  assert.throws(() => new Reconnector("ws://x", { minDelay: 10, maxDelay: 5, onlineTarget: null }), RangeError);
});
