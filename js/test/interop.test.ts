// Interop tests: the client in Node, with the ws package, against the real
// Go server of internal/jsinterop, whose Go test starts it and sets
// WSPLEX_URL. Run through `go test ./internal/jsinterop`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { BytesValueSchema, StringValueSchema, anyUnpack } from "@bufbuild/protobuf/wkt";
import WebSocket from "ws";

import { Code, WsplexError, connect, type Session, type WebSocketConstructor } from "../src/index.js";

const url = process.env.WSPLEX_URL;
const skip = url ? false : "WSPLEX_URL is not set: run these through go test ./internal/jsinterop";
const MiB = 1 << 20;

async function session(t: { after(fn: () => void): void }, opts: Parameters<typeof connect>[1] = {}): Promise<Session> {
  const s = await connect(url!, { WebSocket: WebSocket as unknown as WebSocketConstructor, ...opts });
  t.after(() => s.close());
  return s;
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test("open and echo messages", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/echo");
  for (const n of [0, 1, 1000, 70_000]) {
    await st.send(BytesValueSchema, create(BytesValueSchema, { value: bytes(n, n) }));
    const got = await st.receive(BytesValueSchema);
    assert.deepEqual(got?.value, bytes(n, n));
  }
  st.closeWrite();
  assert.equal(await st.receive(BytesValueSchema), null, "the handler's clean end reads as null");
  st.close();
});

test("raw bytes through ReadableStream and WritableStream", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/raw");
  const data = bytes(300_000, 7);
  const writer = st.writable.getWriter();
  const sent = (async () => {
    for (let off = 0; off < data.length; off += 10_000) await writer.write(data.subarray(off, off + 10_000));
    await writer.close();
  })();
  const chunks: Uint8Array[] = [];
  const reader = st.readable.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  await sent;
  assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));
});

test("server push: streams the server opens reach handlers", { skip }, async (t) => {
  const s = await session(t);
  const seen: string[] = [];
  s.handle("/notify/{id}", async (ps) => {
    const m = await ps.receive(StringValueSchema);
    seen.push(`${ps.params.id}:${m?.value}`);
    await ps.send(StringValueSchema, create(StringValueSchema, { value: `ack ${ps.params.id}` }));
  });
  const st = await s.open("/push/5");
  const done = await st.receive(StringValueSchema);
  assert.equal(done?.value, "pushed 5");
  assert.deepEqual(seen.sort(), ["0:notify 0", "1:notify 1", "2:notify 2", "3:notify 3", "4:notify 4"]);
  st.close();
});

test("100 concurrent streams", { skip }, async (t) => {
  const s = await session(t);
  await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      const st = await s.open("/echo");
      for (let k = 0; k < 3; k++) {
        const value = bytes(2000 + i, i * 3 + k);
        await st.send(BytesValueSchema, create(BytesValueSchema, { value }));
        assert.deepEqual((await st.receive(BytesValueSchema))?.value, value);
      }
      st.closeWrite();
      assert.equal(await st.receive(BytesValueSchema), null);
      st.close();
    }),
  );
});

test("large messages of several MiB", { skip }, async (t) => {
  const s = await session(t, { maxMessageSize: 16 * MiB });
  const st = await s.open("/echo");
  const value = bytes(6 * MiB, 3);
  await st.send(BytesValueSchema, create(BytesValueSchema, { value }));
  const got = await st.receive(BytesValueSchema);
  assert.equal(got?.value.length, value.length);
  assert.deepEqual(got?.value, value);
  st.close();
});

test("a message over the limit is refused with RESOURCE_EXHAUSTED", { skip }, async (t) => {
  const s = await session(t); // 4 MiB limit here, 16 MiB on the server
  const st = await s.open("/echo");
  await st.send(BytesValueSchema, create(BytesValueSchema, { value: bytes(1, 1) }));
  await st.receive(BytesValueSchema);
  await assert.rejects(st.send(BytesValueSchema, create(BytesValueSchema, { value: new Uint8Array(5 * MiB) })), (e: unknown) => e instanceof WsplexError && e.code === Code.RESOURCE_EXHAUSTED);
  // The stream stays usable after a local refusal.
  await st.send(BytesValueSchema, create(BytesValueSchema, { value: bytes(10, 2) }));
  assert.deepEqual((await st.receive(BytesValueSchema))?.value, bytes(10, 2));
  st.close();
});

test("flow control: a consumer that does not read stops the Go sender", { skip }, async (t) => {
  const windowSize = MiB;
  const s = await session(t, { windowSize });
  const flood = await s.open("/flood/8");
  const progress = await s.open("/progress");
  const sent = async () => {
    await progress.send(StringValueSchema, create(StringValueSchema, { value: "?" }));
    return Number((await progress.receive(StringValueSchema))?.value);
  };
  // Wait until the sender is well into the window, asking over another
  // stream.
  let n = await sent();
  while (n < windowSize / 2) n = await sent();
  // Give an unbounded sender ample time to send all 8 MiB; a bounded one
  // stays stuck at the window. (This observes that nothing happens, so it
  // must wait; it does not synchronise anything.)
  await new Promise((r) => setTimeout(r, 300));
  n = await sent();
  assert.ok(n <= windowSize + 64 * 1024, `the server sent ${n} bytes to a stream nobody read (window ${windowSize})`);
  // Reading lets it finish.
  let total = 0;
  for await (const m of flood.messages(BytesValueSchema)) total += m.value.length;
  assert.equal(total, 8 * MiB);
  assert.equal(await sent(), 8 * MiB);
  flood.close();
  progress.close();
});

test("half-close: the server reads the end, then answers", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/count");
  for (let i = 0; i < 7; i++) await st.send(BytesValueSchema, create(BytesValueSchema, { value: bytes(i, i) }));
  st.closeWrite();
  assert.equal((await st.receive(StringValueSchema))?.value, "7");
  assert.equal(await st.receive(StringValueSchema), null);
  st.close();
});

test("a handler's error resets the stream with its status", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/fail");
  assert.equal((await st.receive(StringValueSchema))?.value, "about to fail");
  await assert.rejects(st.receive(StringValueSchema), (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.equal(e.code, Code.PERMISSION_DENIED);
    assert.equal(e.rawMessage, "no entry");
    assert.equal(e.remote, true);
    return true;
  });
  assert.ok(st.signal.aborted, "the stream's signal fires on reset");
  st.close();
});

test("cancel reaches the Go handler's context", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/hang");
  await st.response(); // the handler runs once the stream is answered
  st.cancel();
  const last = await s.open("/last-cancel");
  const why = (await last.receive(StringValueSchema))?.value ?? "";
  assert.match(why, /^wsplex: canceled: canceled$/, "the handler's context ends with the client's status");
  last.close();
});

test("a Go handler's status reaches the client with its details and trailers", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/status");
  assert.equal((await st.receive(StringValueSchema))?.value, "partial", "data sent before the reset comes first");
  await assert.rejects(st.receive(StringValueSchema), (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.deepEqual([e.code, e.rawMessage, e.remote], [Code.ABORTED, "conflict", true]);
    assert.equal(e.details.length, 1);
    assert.equal(e.details[0]!.typeUrl, "type.googleapis.com/google.protobuf.StringValue");
    assert.equal(anyUnpack(e.details[0]!, StringValueSchema)?.value, "retry later");
    assert.deepEqual(e.trailers.get("x-revision"), ["7", "8"]);
    return true;
  });
  assert.deepEqual(st.trailers.get("x-revision"), ["7", "8"]);
  st.close();
});

test("closing a stream (a CODE_OK reset) leaves the Go handler running: it reads what was sent", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/closed");
  await st.send(StringValueSchema, create(StringValueSchema, { value: "request" }));
  st.closeWrite();
  st.close(); // not read to the end: a CODE_OK reset, then nothing more
  const last = await s.open("/last-closed");
  assert.equal(
    (await last.receive(StringValueSchema))?.value,
    'got "request", then EOF; Send: wsplex: peer closed the stream; context: <nil>',
  );
  last.close();
});

test("a stream over the server's MaxStreams is refused at the SYN with its status", { skip }, async (t) => {
  const s = await session(t);
  const limit = 4096; // the Go default
  // In batches: more than 256 SYNs at once would meet the server's other
  // refusal, of streams waiting to be accepted (SPEC.md §4.3).
  const held = [];
  while (held.length < limit) {
    held.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(200, limit - held.length) }, async () => {
          const st = await s.open("/echo");
          await st.response();
          return st;
        }),
      )),
    );
  }
  const over = await s.open("/echo");
  await assert.rejects(over.response(), (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.deepEqual([e.code, e.rawMessage, e.remote], [Code.RESOURCE_EXHAUSTED, `too many concurrent streams (limit ${limit})`, true]);
    return true;
  });
  // Once a stream is finished on both sides, there is room again.
  const first = held[0]!;
  first.closeWrite();
  assert.equal(await first.receive(BytesValueSchema), null);
  first.close();
  const again = await s.open("/echo");
  await again.response();
  again.close();
  for (const st of held) st.close();
});

test("an unknown name is refused with NOT_FOUND", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/no/such/stream");
  await assert.rejects(st.receive(StringValueSchema), (e: unknown) => {
    assert.ok(e instanceof WsplexError);
    assert.equal(e.code, Code.NOT_FOUND);
    assert.equal(e.rawMessage, 'no handler for stream "/no/such/stream"');
    return true;
  });
  // The session is fine.
  const echo = await s.open("/echo");
  await echo.response();
  echo.close();
});

test("an aborted signal cancels the open before it runs, and the stream before its answer", { skip }, async (t) => {
  const s = await session(t);
  const before = new AbortController();
  before.abort(new Error("changed my mind"));
  await assert.rejects(s.open("/echo", { signal: before.signal }), /changed my mind/);
  const during = new AbortController();
  const opening = await s.open("/hang", { signal: during.signal });
  during.abort(new Error("too slow"));
  await assert.rejects(opening.response(), /too slow/);
  // (Whether the server's handler ever ran depends on whether the reset
  // overtook the open request; "cancel reaches the Go handler's context"
  // covers a cancel the handler sees.)
  const st = await s.open("/echo"); // the session is fine
  await st.response();
  st.close();
});

test("closing the session fails its streams and later opens", { skip }, async (t) => {
  const s = await session(t);
  const st = await s.open("/hang");
  s.close();
  await assert.rejects(st.read(), (e: unknown) => e instanceof WsplexError);
  await assert.rejects(s.open("/echo"), (e: unknown) => e instanceof WsplexError);
});
