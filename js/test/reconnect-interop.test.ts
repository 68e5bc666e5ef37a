// The Reconnector against the real Go server of internal/jsinterop: a
// session the server ends is replaced, and onConnect opens its streams
// again. Run through `go test ./internal/jsinterop`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import WebSocket from "ws";

import { Code, Reconnector, WsplexError, type Session, type Stream, type WebSocketConstructor } from "../src/index.js";

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
