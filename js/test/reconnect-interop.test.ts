// The Reconnector against the real Go server of internal/jsinterop: a
// session the server ends is replaced, onConnect opens its streams again,
// connect-es calls through it fail fast while it waits, and a topic
// subscription outlives a server restart. Run through `go test ./internal/jsinterop`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { Code as ConnectCode, ConnectError, createClient } from "@connectrpc/connect";
import WebSocket from "ws";

import { Code, Reconnector, WsplexError, type Session, type Stream, type WebSocketConstructor } from "../src/index.js";
import { createWsplexTransport } from "../src/connect.js";
import { PingService } from "./gen/wsplex/ping/v1/ping_pb.js";
import { control, events, run } from "./topic-control.js";

const url = process.env.WSPLEX_URL;
const skip = url ? false : "WSPLEX_URL is not set: run these through go test ./internal/jsinterop";

test("a session the server ends is replaced, and onConnect reopens its stream", { skip }, async (t) => {
  const echoes: Stream[] = [];
  const connected: Session[] = [];
  let waiting: ((err: unknown) => void) | undefined;
  let reconnected: (() => void) | undefined;
  const r = new Reconnector(url!, {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    onlineTarget: null,
    minDelay: 1,
    maxDelay: 10,
    async onConnect(s) {
      connected.push(s);
      echoes.push(await s.open("/echo"));
    },
    onStateChange(state, err) {
      if (state === "waiting") waiting?.(err);
      if (state === "connected" && connected.length === 2) reconnected?.();
    },
  });
  t.after(async () => {
    r.close();
    await r.done;
  });

  const s1 = await r.session();
  await echoes[0]!.send(StringValueSchema, create(StringValueSchema, { value: "first" }));
  assert.equal((await echoes[0]!.receive(StringValueSchema))?.value, "first");

  const lost = new Promise<unknown>((resolve) => (waiting = resolve));
  const back = new Promise<void>((resolve) => (reconnected = resolve));
  await s1.open("/kill");
  const err = await lost;
  assert.ok(err instanceof WsplexError && err.code === Code.UNAVAILABLE, `lost with ${err}`);
  await assert.rejects(echoes[0]!.receive(StringValueSchema), WsplexError, "the old stream fails");

  await back;
  const s2 = await r.session();
  assert.notEqual(s2, s1);
  await echoes[1]!.send(StringValueSchema, create(StringValueSchema, { value: "second" }));
  assert.equal((await echoes[1]!.receive(StringValueSchema))?.value, "second");
});

test("connect-es calls through a Reconnector fail with unavailable while it waits, and resume", { skip }, async (t) => {
  const online = new EventTarget();
  let waiting: (() => void) | undefined;
  const r = new Reconnector(url!, {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    onlineTarget: online,
    minDelay: 3_600_000, // only the online event ends a wait
    onStateChange(state) {
      if (state === "waiting") waiting?.();
    },
  });
  t.after(async () => {
    r.close();
    await r.done;
  });
  const client = createClient(PingService, createWsplexTransport(r));
  assert.equal((await client.ping({ number: 1n })).number, 1n);

  const lost = new Promise<void>((resolve) => (waiting = resolve));
  await (await r.session()).open("/kill");
  await lost;
  await assert.rejects(client.ping({ number: 2n }), (e: unknown) => e instanceof ConnectError && e.code === ConnectCode.Unavailable);

  online.dispatchEvent(new Event("online"));
  await r.session();
  assert.equal((await client.ping({ number: 3n })).number, 3n);
});

const restartableURL = process.env.WSPLEX_RESTARTABLE_URL;
const restartURL = process.env.WSPLEX_RESTART_URL;

test("a server killed and started again: the hook opens its stream again, and calls resume", { skip: restartURL ? false : skip || "no restartable server" }, async (t) => {
  const echoes: Stream[] = [];
  let second: (() => void) | undefined;
  const r = new Reconnector(restartableURL!, {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    onlineTarget: null,
    minDelay: 1,
    maxDelay: 50,
    async onConnect(s) {
      echoes.push(await s.open("/echo"));
      if (echoes.length === 2) second?.();
    },
  });
  t.after(async () => {
    r.close();
    await r.done;
  });
  const client = createClient(PingService, createWsplexTransport(r));
  const s1 = await r.session();
  assert.equal((await client.ping({ number: 1n })).number, 1n);

  const back = new Promise<void>((resolve) => (second = resolve));
  const res = await fetch(restartURL!, { method: "POST" });
  assert.equal(res.status, 200, await res.text());
  await back;
  assert.ok(s1.error, "the first session ended with its server");
  const s2 = await r.session();
  assert.notEqual(s2, s1);
  await echoes[1]!.send(StringValueSchema, create(StringValueSchema, { value: "after the restart" }));
  assert.equal((await echoes[1]!.receive(StringValueSchema))?.value, "after the restart");
  assert.equal((await client.ping({ number: 2n })).number, 2n);
});

test("a subscription across a server restart: the new server lost the history, so a gap of the new epoch comes first", { skip: restartURL ? false : skip || "no restartable server" }, async (t) => {
  const r = new Reconnector(restartableURL!, { WebSocket: WebSocket as unknown as WebSocketConstructor, onlineTarget: null, minDelay: 1, maxDelay: 50 });
  t.after(async () => {
    r.close();
    await r.done;
  });
  const sub = r.subscribe("/topics/restart", StringValueSchema);
  const { epoch } = await sub.ready;
  await (await control(t, restartableURL!))("publish topics /topics/restart 1 3");
  assert.deepEqual(await events(sub, 3, epoch), run(1, 3));

  const res = await fetch(restartURL!, { method: "POST" });
  assert.equal(res.status, 200, await res.text());
  const answer = await (await control(t, restartableURL!))("publish topics /topics/restart 1 2");
  const [next] = answer.split(" ");
  assert.notEqual(next, epoch, "a new server, a new epoch");
  assert.deepEqual(await events(sub, 3, next), ["gap 0", ...run(1, 2)]);
  assert.deepEqual(sub.position, { epoch: next, offset: 2n });
});
