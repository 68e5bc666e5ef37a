// Reconnect keeps a session up, as the Go reconnect package does: when the
// session ends it connects again, with backoff, until it is closed.
import type { DescMessage } from "@bufbuild/protobuf";

import { Code, WsplexError } from "./errors.js";
import { connect, type ConnectOptions, type Session } from "./session.js";
import { Subscription, type SubscribeOptions } from "./topic.js";

/** Where a Reconnector is in its loop. */
export type ReconnectState = "connecting" | "connected" | "waiting" | "closed";

/** The part of EventTarget a Reconnector listens on for the "online" event. */
export interface OnlineTarget {
  addEventListener(type: "online", listener: () => void): void;
  removeEventListener(type: "online", listener: () => void): void;
}

export interface ReconnectOptions extends Omit<ConnectOptions, "signal"> {
  /** Bound of the wait before the first retry, in ms; each retry doubles it up to maxDelay. Default 100. */
  minDelay?: number;
  /**
   * Cap of the bound of a wait, in ms, and how long a session must stay
   * up for the bound to go back to minDelay. Default 30 000, or minDelay
   * if that is longer.
   */
  maxDelay?: number;
  /**
   * Runs on each new session before it is handed out: the place to open
   * streams and subscribe again. If it throws, the session is closed and
   * the attempt counts as failed.
   */
  onConnect?: (session: Session) => void | Promise<void>;
  /** Is told each change of state, with the error that caused a wait. */
  onStateChange?: (state: ReconnectState, error?: unknown) => void;
  /**
   * Where to listen for the "online" event, which ends a wait at once: a
   * page that comes back online reconnects without waiting out its
   * backoff. Default globalThis when it has addEventListener (window in a
   * page); null listens nowhere.
   */
  onlineTarget?: OnlineTarget | null;
}

/**
 * backoff returns the wait before retry n (from 0), drawn uniformly from
 * [0, min(hi, lo·2ⁿ)) ("full jitter"), so that clients that lost the same
 * server do not all come back at once.
 * @internal
 */
export function backoff(n: number, lo: number, hi: number, random: () => number = Math.random): number {
  const bound = Math.min(hi, lo * 2 ** Math.min(n, 52));
  return bound > 0 ? random() * bound : 0;
}

interface Waiter {
  resolve(s: Session): void;
  reject(e: unknown): void;
}

/**
 * Reconnector keeps a client session up: it connects, runs onConnect on
 * each new session, and when the session ends waits (backoff with full
 * jitter) and connects again, until close(). Streams are not carried over:
 * those of a lost session fail, and onConnect opens them again.
 */
export class Reconnector {
  private st: ReconnectState = "connecting";
  private current: Session | undefined;
  private lastError: unknown;
  private readonly stop = new AbortController();
  private readonly waiters = new Set<Waiter>();
  private readonly failFast = new Set<Waiter>(); // waiters that a wait rejects
  private wake: (() => void) | undefined;
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly online: OnlineTarget | null;
  private readonly onOnline = () => this.wake?.();
  /** Settles once the loop has stopped, after close(). */
  readonly done: Promise<void>;

  constructor(
    readonly url: string,
    private readonly opts: ReconnectOptions = {},
  ) {
    const min = opts.minDelay ?? 100;
    if (!(min >= 0) || !((opts.maxDelay ?? 0) >= 0)) throw new RangeError("wsplex: negative or invalid delay");
    this.minDelay = min;
    this.maxDelay = opts.maxDelay ?? Math.max(30_000, min);
    if (this.maxDelay < this.minDelay) throw new RangeError("wsplex: maxDelay below minDelay");
    const g = globalThis as Partial<OnlineTarget>;
    this.online =
      opts.onlineTarget !== undefined ? opts.onlineTarget : typeof g.addEventListener === "function" ? (globalThis as unknown as OnlineTarget) : null;
    this.online?.addEventListener("online", this.onOnline);
    this.done = this.run();
  }

  /** The state of the loop. */
  get state(): ReconnectState {
    return this.st;
  }

  /** Why the last attempt failed or the last session ended, if it did. */
  get error(): unknown {
    return this.lastError;
  }

  /**
   * session returns the live session, waiting for the next one while
   * connecting or waiting. It rejects with signal's reason, or with a
   * WsplexError (Code.CANCELED) once the Reconnector is closed.
   */
  session(signal?: AbortSignal): Promise<Session> {
    return this.next(signal, false);
  }

  /**
   * sessionFailFast is session, except that while the Reconnector waits
   * to reconnect it rejects at once with a WsplexError (Code.UNAVAILABLE)
   * carrying the last error, so that calls fail instead of hanging while
   * the server is away. While connecting it waits.
   */
  sessionFailFast(signal?: AbortSignal): Promise<Session> {
    return this.next(signal, true);
  }

  /**
   * subscribe subscribes to topic (SPEC.md §14) on the live session, and
   * again on each next one, from the position of the last event yielded,
   * so that within the server's history nothing is lost or repeated
   * across reconnects; it also resubscribes when the server ends the
   * subscription with RESOURCE_EXHAUSTED or UNAVAILABLE. The iteration
   * rejects with a refusal (a WsplexError such as NOT_FOUND or
   * PERMISSION_DENIED) or options.signal's reason, and ends when close()
   * closes the Reconnector. See Session.subscribe.
   */
  subscribe<Desc extends DescMessage>(topic: string, schema: Desc, options?: SubscribeOptions): Subscription<Desc> {
    const stop = this.stop.signal;
    return new Subscription(
      {
        next: async (signal, last) => {
          // A session that is shutting down takes no new streams: wait for the next.
          if (last && !last.error && last.draining) await ended(last, signal);
          return this.session(signal);
        },
        get closed() {
          return stop.aborted;
        },
      },
      topic,
      schema,
      options,
    );
  }

  /** close ends the session and the loop; nothing runs afterwards. */
  close(): void {
    if (this.stop.signal.aborted) return;
    this.stop.abort();
    this.wake?.();
    this.current?.close();
    this.online?.removeEventListener("online", this.onOnline);
    const e = closedError();
    for (const w of this.waiters) w.reject(e);
    this.waiters.clear();
  }

  private next(signal: AbortSignal | undefined, failFast: boolean): Promise<Session> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.stop.signal.aborted) return Promise.reject(closedError());
    if (this.st === "connected" && this.current && !this.current.error) return Promise.resolve(this.current);
    if (failFast && this.st === "waiting") return Promise.reject(unavailable(this.lastError));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(w);
        reject(signal!.reason);
      };
      const w: Waiter = {
        resolve: (s) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(w);
      if (failFast) this.failFast.add(w);
    });
  }

  private setState(st: ReconnectState, err?: unknown): void {
    this.st = st;
    if (st === "waiting") {
      this.lastError = err;
      const e = unavailable(err);
      for (const w of this.failFast) {
        this.waiters.delete(w);
        w.reject(e);
      }
      this.failFast.clear();
    }
    try {
      this.opts.onStateChange?.(st, err);
    } catch {
      // A hook that throws must not stop the loop.
    }
  }

  private async run(): Promise<void> {
    const { minDelay: _min, maxDelay: _max, onConnect, onStateChange: _sc, onlineTarget: _ot, ...connectOpts } = this.opts;
    let retry = 0;
    while (!this.stop.signal.aborted) {
      this.setState("connecting");
      let s: Session | undefined;
      let err: unknown;
      try {
        s = await connect(this.url, { ...connectOpts, signal: this.stop.signal });
        await onConnect?.(s);
      } catch (e) {
        err = e;
        s?.close();
        s = undefined;
      }
      if (this.stop.signal.aborted) {
        s?.close();
        break;
      }
      if (s) {
        const up = Date.now();
        this.current = s;
        this.setState("connected");
        for (const w of this.waiters) w.resolve(s);
        this.waiters.clear();
        this.failFast.clear();
        err = await s.closed;
        this.current = undefined;
        if (Date.now() - up >= this.maxDelay) retry = 0;
        if (this.stop.signal.aborted) break;
      }
      this.setState("waiting", err);
      await this.sleep(backoff(retry++, this.minDelay, this.maxDelay));
    }
    this.setState("closed");
  }

  /** sleep waits ms, or less if close() or an "online" event ends it. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(end, ms);
      const self = this;
      function end() {
        clearTimeout(t);
        self.wake = undefined;
        resolve();
      }
      this.wake = end;
    });
  }
}

/** reconnect starts a Reconnector for the wsplex server at url. */
export function reconnect(url: string, opts: ReconnectOptions = {}): Reconnector {
  return new Reconnector(url, opts);
}

/** ended resolves when s has ended, and rejects with signal's reason if it aborts first. */
function ended(s: Session, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    void s.closed.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

function closedError(): WsplexError {
  return new WsplexError(Code.CANCELED, "reconnector closed");
}

function unavailable(cause: unknown): WsplexError {
  const why = cause instanceof Error ? `: ${cause.message}` : "";
  return new WsplexError(Code.UNAVAILABLE, `no session${why}`);
}
