// Runs the client in headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core) against the Go server of internal/jsinterop, whose Go
// test starts it and passes its base URL. It prints one JSON object: what
// each check saw, and speeds measured in the same page: the throughput of
// 64 KiB messages through one wsplex stream and through plain WebSocket
// messages; sequential unary calls (calls/s and median latency) through the
// wsplex transport and through connect-web's fetch transport to the same Go
// service over HTTP/1.1; and bidi round trips through the wsplex transport,
// which connect-web cannot make.
import { chromium } from "playwright-core";

import type { TestAPI } from "./page.js";

const base = process.argv[2];
if (!base) throw new Error("usage: browser.js <base URL of the Go test server>");

const watchdogSeconds = 120;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/index.html");
  await page.waitForFunction(() => "wsplexTest" in globalThis);
  const wsURL = base.replace(/^http/, "ws");
  // A watchdog: a check that hangs fails by the name of its step, long
  // before the Go test's own limit kills this process without a word.
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      page
        .evaluate(() => (globalThis as unknown as { wsplexStep?: string }).wsplexStep)
        .then((step) => reject(new Error(`the page hung at step ${JSON.stringify(step)} for ${watchdogSeconds} s`)), reject);
    }, watchdogSeconds * 1000);
  });
  const checks = page.evaluate(async (wsURL) => {
    const w = (globalThis as unknown as { wsplexTest: TestAPI }).wsplexTest;
    const out: Record<string, unknown> = {};
    const g = globalThis as unknown as { wsplexStep: string };
    const step = (name: string) => (g.wsplexStep = name);
    step("connect");
    const s = await w.connect(wsURL + "/wsplex");

    // Echo.
    step("echo");
    const echo = await s.open("/echo");
    await echo.send(w.StringValueSchema, w.create(w.StringValueSchema, { value: "from the browser" }));
    out.echo = (await echo.receive(w.BytesValueSchema))?.value.length;
    echo.close();

    // Server push.
    step("server push");
    const pushed: string[] = [];
    s.handle("/notify/{id}", async (ps) => {
      const m = await ps.receive(w.StringValueSchema);
      pushed.push(m?.value ?? "");
      await ps.send(w.StringValueSchema, w.create(w.StringValueSchema, { value: `ack ${ps.params.id}` }));
    });
    const push = await s.open("/push/3");
    out.pushDone = (await push.receive(w.StringValueSchema))?.value;
    out.pushed = pushed.sort();
    push.close();

    // Refusal.
    step("refusal");
    try {
      const nowhere = await s.open("/nowhere");
      await nowhere.response();
      out.notFound = "opened";
    } catch (e) {
      out.notFound = e instanceof w.WsplexError ? w.codeName(e.code) : String(e);
    }

    // Throughput: 64 KiB messages through one stream, against plain
    // WebSocket messages to a Go endpoint that also just counts them.
    const size = 64 * 1024;
    const count = 256; // 16 MiB per run
    const payload = new Uint8Array(size).map((_, i) => i & 0xff);
    const msg = w.create(w.BytesValueSchema, { value: payload });
    const wsplexRun = async (r: number) => {
      step(`wsplex run ${r}: open`);
      const st = await s.open("/sink");
      const t0 = performance.now();
      step(`wsplex run ${r}: send`);
      for (let i = 0; i < count; i++) await st.send(w.BytesValueSchema, msg);
      st.closeWrite();
      step(`wsplex run ${r}: receive the count`);
      const total = Number((await st.receive(w.StringValueSchema))?.value);
      const ms = performance.now() - t0;
      st.close();
      if (total !== size * count) throw new Error(`sink counted ${total}`);
      return (size * count) / 1e6 / (ms / 1000);
    };
    const plain = new WebSocket(wsURL + "/ws-plain");
    plain.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
      plain.onopen = resolve;
      plain.onerror = reject;
    });
    const plainRun = async (r: number) => {
      step(`plain run ${r}`);
      const t0 = performance.now();
      const done = new Promise<string>((resolve) => (plain.onmessage = (ev) => resolve(String(ev.data))));
      for (let i = 0; i < count; i++) plain.send(payload);
      plain.send("end");
      const total = Number(await done);
      const ms = performance.now() - t0;
      if (total !== size * count) throw new Error(`plain sink counted ${total}`);
      return (size * count) / 1e6 / (ms / 1000);
    };
    const wsplexMBps: number[] = [];
    const plainMBps: number[] = [];
    for (let r = 0; r < 5; r++) {
      wsplexMBps.push(await wsplexRun(r));
      plainMBps.push(await plainRun(r));
    }
    plain.close();
    out.wsplexMBps = wsplexMBps;
    out.plainMBps = plainMBps;

    // RPCs: PingService through the wsplex transport on this session, and
    // through connect-web's fetch transport to connect-go's HTTP handler on
    // this page's origin. Rounds interleave the two, alternating which goes
    // first, so that a busy machine slows both alike.
    const overWsplex = w.createClient(w.PingService, w.createWsplexTransport(s));
    const overFetch = w.createClient(
      w.PingService,
      w.createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true }),
    );
    type Client = typeof overWsplex;
    const calls = 200; // per round
    const unary = async (name: string, client: Client, n: number) => {
      step(`unary ${name}`);
      const ms: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const res = await client.ping({ number: BigInt(i), text: "ping" });
        ms.push(performance.now() - t);
        if (res.number !== BigInt(i) || res.text !== "ping") {
          throw new Error(`${name}: ping ${i} answered ${res.number} ${res.text}`);
        }
      }
      const perSec = n / ((performance.now() - t0) / 1000);
      ms.sort((a, b) => a - b);
      return { perSec, p50: ms[Math.floor(n / 2)]! };
    };
    // One CumSum call: send 1, receive the sum, repeat.
    const bidi = async (n: number) => {
      step("bidi");
      let answered = () => {};
      const numbers = async function* () {
        for (let i = 0; i < n; i++) {
          const got = new Promise<void>((resolve) => (answered = resolve));
          yield w.create(w.CumSumRequestSchema, { number: 1n });
          await got;
        }
      };
      const t0 = performance.now();
      let k = 0n;
      for await (const r of overWsplex.cumSum(numbers())) {
        if (r.sum !== ++k) throw new Error(`bidi: sum ${r.sum} after ${k} numbers`);
        answered();
      }
      if (k !== BigInt(n)) throw new Error(`bidi: ${k} answers to ${n} numbers`);
      return n / ((performance.now() - t0) / 1000);
    };
    // Warm up both transports (connections, JIT) before the timed rounds.
    await unary("wsplex warm-up", overWsplex, 50);
    await unary("connect-web warm-up", overFetch, 50);
    await bidi(50);
    const rpc = {
      wsplexCallsPerSec: [] as number[],
      wsplexP50Ms: [] as number[],
      fetchCallsPerSec: [] as number[],
      fetchP50Ms: [] as number[],
      bidiPerSec: [] as number[],
    };
    for (let r = 0; r < 5; r++) {
      const runWsplex = async () => {
        const u = await unary(`wsplex round ${r}`, overWsplex, calls);
        rpc.wsplexCallsPerSec.push(u.perSec);
        rpc.wsplexP50Ms.push(u.p50);
      };
      const runFetch = async () => {
        const u = await unary(`connect-web round ${r}`, overFetch, calls);
        rpc.fetchCallsPerSec.push(u.perSec);
        rpc.fetchP50Ms.push(u.p50);
      };
      if (r % 2 === 0) {
        await runWsplex();
        await runFetch();
      } else {
        await runFetch();
        await runWsplex();
      }
      rpc.bidiPerSec.push(await bidi(calls));
    }
    Object.assign(out, rpc);
    // The timer's resolution: 5 µs when the page is cross-origin isolated,
    // 100 µs otherwise.
    out.crossOriginIsolated = globalThis.crossOriginIsolated;
    s.close();
    return out;
  }, wsURL);
  const result = await Promise.race([checks, hung]).finally(() => clearTimeout(timer));
  console.log(JSON.stringify({ ...result, pageErrors: errors }));
} finally {
  await browser.close();
}
