// Helpers of the topic interop tests: commands to the Go server's
// /topic-control (internal/jsinterop/topics.go), and events shown as
// strings.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import WebSocket from "ws";

import { connect, type Subscription, type WebSocketConstructor } from "../src/index.js";

type After = { after(fn: () => void | Promise<void>): void };

/**
 * control opens /topic-control on its own session and returns a function
 * that sends one command and returns the server's answer.
 */
export async function control(t: After, url: string): Promise<(cmd: string) => Promise<string>> {
  const s = await connect(url, { WebSocket: WebSocket as unknown as WebSocketConstructor });
  t.after(() => s.close());
  const st = await s.open("/topic-control");
  return async (cmd) => {
    await st.send(StringValueSchema, create(StringValueSchema, { value: cmd }));
    return (await st.receive(StringValueSchema))!.value;
  };
}

/** events reads n events and shows each as "m3 3<2" or "gap 5", checking their epochs. */
export async function events(sub: Subscription<typeof StringValueSchema>, n: number, epoch?: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await sub.next();
    assert.ok(!r.done, `ended after ${out.join(", ")}`);
    const ev = r.value;
    if (epoch !== undefined && !ev.gap) assert.equal(ev.position.epoch, epoch);
    out.push(ev.gap ? `gap ${ev.position.offset}` : `${ev.message.value} ${ev.position.offset}<${ev.prev}`);
  }
  return out;
}

/** run shows messages "m<from>" to "m<to>", published one after the other, as events shows them. */
export function run(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `m${from + i} ${from + i}<${from + i - 1}`);
}
