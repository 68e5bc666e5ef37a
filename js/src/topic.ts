// Topics (SPEC.md §14): subscriptions that deliver a topic's messages with
// their positions and resume from the last one, and publishing from the
// client, as the Go package topic does.
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

import { Code, WsplexError } from "./errors.js";
import { TopicEventSchema, TopicPublishedSchema } from "./gen/wsplex/v1/topic_pb.js";
import { toMetadata, type Metadata, type MetadataInit } from "./metadata.js";
import type { Session } from "./session.js";
import type { Stream } from "./stream.js";

// The reserved metadata of SPEC.md §14.2.
const KEY_TOPIC = "wsplex-topic";
const KEY_EPOCH = "wsplex-topic-epoch";
const KEY_OFFSET = "wsplex-topic-offset";

/**
 * Position is a place in a topic: just after the message at offset, in
 * the topic's history of epoch; offset 0 is the place before the first
 * message (SPEC.md §14.1). Offsets grow with each message but may skip
 * numbers, and offsets of different epochs are not comparable.
 */
export interface Position {
  epoch: string;
  offset: bigint;
}

/**
 * TopicEvent is what a subscription yields: a message of the topic, with
 * its position and the offset of the message before it (prev), or a gap:
 * messages after the last position were lost (the server's history no
 * longer held them), and delivery goes on from the gap's position.
 */
export type TopicEvent<T> = { gap: false; position: Position; prev: bigint; message: T } | { gap: true; position: Position };

export interface SubscribeOptions {
  /**
   * Resume after this position: the messages the topic's history holds
   * after it come first. Default: from the next message published.
   */
  since?: Position;
  /** Metadata for each subscription's open request, for the server to authorize. */
  metadata?: MetadataInit;
  /** Unsubscribes; the iteration then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface PublisherOptions {
  /** Metadata for the publish stream's open request. */
  metadata?: MetadataInit;
  /** Cancels the publish stream: publishes not acknowledged yet fail. */
  signal?: AbortSignal;
}

/**
 * @internal Sessions gives a subscription the session to subscribe on,
 * and the next one after it ended: one Session alone, or a Reconnector's.
 */
export interface Sessions {
  /**
   * next returns the session to subscribe on; last is the one the
   * previous attempt used, if any. It rejects when there is none to come.
   */
  next(signal: AbortSignal, last: Session | undefined): Promise<Session>;
  /** Whether the source was closed: the subscription then ends without error. */
  readonly closed: boolean;
}

/** @internal oneSession is the Sessions of s alone: a subscription on it ends with s. */
export function oneSession(s: Session): Sessions {
  return {
    closed: false,
    async next() {
      if (s.error) throw s.error;
      if (s.draining) throw new WsplexError(Code.UNAVAILABLE, "peer accepts no new streams");
      return s;
    },
  };
}

/** CLOSED is the abort reason of close(): the iteration ends without error. */
const CLOSED = Symbol("closed");

/** Retries that made no progress wait up to this long, doubling from RETRY_MIN ms. */
const RETRY_MIN = 100;
const RETRY_MAX = 30_000;

/**
 * Subscription is a subscription to a topic, an async iterator of its
 * events (SPEC.md §14.3), made by session.subscribe or
 * reconnector.subscribe. It subscribes at once; the events are read from
 * the server as the iteration asks for them, so a consumer that stops
 * reading makes the server wait and, past its queue, end the
 * subscription with RESOURCE_EXHAUSTED, from which it resumes. Leaving a
 * for await loop, close(), or the signal of SubscribeOptions unsubscribes:
 * the stream is reset, which cancels the server's handler. One next() at
 * a time makes sense; concurrent calls queue.
 */
export class Subscription<Desc extends DescMessage> implements AsyncIterableIterator<TopicEvent<MessageShape<Desc>>> {
  /**
   * Resolves with the position delivery starts from once the server
   * accepted the first subscription: messages published from then on are
   * delivered. Rejects if the subscription ends before, with the refusal
   * (a WsplexError, such as NOT_FOUND or PERMISSION_DENIED) or why.
   */
  readonly ready: Promise<Position>;
  private resolveReady!: (p: Position) => void;
  private rejectReady!: (e: unknown) => void;
  private held: Position | undefined;
  private readonly metadata: Metadata;
  private readonly stop = new AbortController();
  private readonly userSignal: AbortSignal | undefined;
  private readonly onUserAbort = () => this.stop.abort(this.userSignal!.reason);
  private first: Promise<Stream> | undefined;
  private current: Stream | undefined;
  private session: Session | undefined;
  private noSession = false; // the source of sessions failed
  private readonly iter: AsyncGenerator<TopicEvent<MessageShape<Desc>>, void, undefined>;

  /** @internal Use session.subscribe or reconnector.subscribe. */
  constructor(
    private readonly sessions: Sessions,
    /** The topic's name, such as "/chat/room/42". */
    readonly topic: string,
    private readonly schema: Desc,
    opts: SubscribeOptions = {},
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {}); // the iteration reports it too
    this.metadata = toMetadata(opts.metadata);
    for (const k of [KEY_TOPIC, KEY_EPOCH, KEY_OFFSET]) this.metadata.delete(k);
    this.metadata.set(KEY_TOPIC, ["subscribe"]);
    if (opts.since) this.held = { epoch: opts.since.epoch, offset: opts.since.offset };
    this.userSignal = opts.signal;
    if (this.userSignal?.aborted) this.stop.abort(this.userSignal.reason);
    else this.userSignal?.addEventListener("abort", this.onUserAbort, { once: true });
    this.stop.signal.addEventListener("abort", () => this.current?.cancel(), { once: true });
    this.first = this.attempt();
    this.first.catch((e) => {
      if (this.stop.signal.aborted) this.rejectReady(this.stopError());
      else if (!this.retryable(e)) this.rejectReady(e);
    });
    this.iter = this.run();
  }

  /**
   * The position the subscription holds: that of the last event yielded,
   * or the one delivery starts from. Pass it as SubscribeOptions.since to
   * resume later. Undefined until the server answered, without since.
   */
  get position(): Position | undefined {
    return this.held && { ...this.held };
  }

  next(): Promise<IteratorResult<TopicEvent<MessageShape<Desc>>, void>> {
    return this.iter.next();
  }

  /** return unsubscribes and ends the iteration; a for await loop calls it when left early. */
  async return(): Promise<IteratorResult<TopicEvent<MessageShape<Desc>>, void>> {
    this.finish();
    return this.iter.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** close unsubscribes: the iteration ends, a pending next() with done. */
  close(): void {
    if (!this.stop.signal.aborted) this.stop.abort(CLOSED);
  }

  /** finish unsubscribes and lets go of the caller's signal. */
  private finish(): void {
    this.close();
    this.userSignal?.removeEventListener("abort", this.onUserAbort);
    this.rejectReady(this.stopError());
  }

  /** stopError is why the subscription was stopped: the signal's reason, or CANCELED after close. */
  private stopError(): unknown {
    const why = this.stop.signal.reason;
    return why === CLOSED ? new WsplexError(Code.CANCELED, "unsubscribed") : why;
  }

  /** attempt subscribes once, from the position held, and returns the accepted stream. */
  private async attempt(): Promise<Stream> {
    const signal = this.stop.signal;
    let session: Session;
    try {
      session = await this.sessions.next(signal, this.session);
    } catch (e) {
      this.noSession = true; // none to come: the subscription ends with e
      throw e;
    }
    this.session = session;
    const md = new Map(this.metadata);
    if (this.held) {
      md.set(KEY_EPOCH, [this.held.epoch]);
      md.set(KEY_OFFSET, [this.held.offset.toString()]);
    }
    const st = await session.open(this.topic, { metadata: md, signal });
    this.current = st;
    const start = readPosition(await st.response());
    if (!start) throw new WsplexError(Code.INTERNAL, `subscription to "${this.topic}" answered without a position`);
    this.held = start;
    this.resolveReady(start);
    return st;
  }

  /**
   * retryable says whether a subscription that failed with e subscribes
   * again: after its session ended, or when the server ended it with
   * RESOURCE_EXHAUSTED or UNAVAILABLE (SPEC.md §14.3).
   */
  private retryable(e: unknown): boolean {
    if (this.noSession) return false;
    if (this.session && (this.session.error || this.session.draining)) return true;
    return e instanceof WsplexError && e.remote && (e.code === Code.RESOURCE_EXHAUSTED || e.code === Code.UNAVAILABLE);
  }

  private async *run(): AsyncGenerator<TopicEvent<MessageShape<Desc>>, void, undefined> {
    let idle = 0; // attempts in a row that yielded nothing
    try {
      while (!this.stop.signal.aborted) {
        let progressed = false;
        try {
          const pending = this.first ?? this.attempt();
          this.first = undefined;
          const st = await pending;
          for (;;) {
            const ev = await st.receive(TopicEventSchema);
            if (!ev) throw new WsplexError(Code.UNAVAILABLE, `server ended subscription to "${this.topic}"`, { remote: true });
            const e = ev.event;
            if (e.case === "gap") {
              this.held = { epoch: e.value.epoch, offset: e.value.offset };
              progressed = true;
              yield { gap: true, position: { ...this.held } };
            } else if (e.case === "message") {
              const { offset, prev, data } = e.value;
              let message: MessageShape<Desc>;
              try {
                message = fromBinary(this.schema, data);
              } catch (err) {
                throw new WsplexError(Code.INVALID_ARGUMENT, `malformed message at offset ${offset} of "${this.topic}": ${err instanceof Error ? err.message : err}`);
              }
              const epoch = this.held!.epoch;
              progressed = true;
              if (prev !== this.held!.offset) {
                // A server that did not announce the gap: say it ourselves (SPEC.md §14.1).
                this.held = { epoch, offset: prev };
                yield { gap: true, position: { epoch, offset: prev } };
              }
              this.held = { epoch, offset };
              yield { gap: false, position: { epoch, offset }, prev, message };
            } // else an event of a later version of SPEC.md §14.3
          }
        } catch (e) {
          if (this.stop.signal.aborted || this.sessions.closed) break;
          if (!this.retryable(e)) throw e;
        } finally {
          this.current?.cancel();
          this.current = undefined;
        }
        idle = progressed ? 0 : idle + 1;
        if (idle > 1) await sleep(Math.random() * Math.min(RETRY_MAX, RETRY_MIN * 2 ** Math.min(idle - 2, 20)), this.stop.signal);
      }
      if (this.stop.signal.aborted && this.stop.signal.reason !== CLOSED) throw this.stop.signal.reason;
    } catch (e) {
      this.rejectReady(e);
      throw e;
    } finally {
      this.finish();
    }
  }
}

/** readPosition reads the position of an answer's metadata (SPEC.md §14.2). */
function readPosition(md: Metadata): Position | undefined {
  const epochs = md.get(KEY_EPOCH);
  const offsets = md.get(KEY_OFFSET);
  if (epochs?.length !== 1 || offsets?.length !== 1 || !/^\d{1,20}$/.test(offsets[0]!)) return undefined;
  const offset = BigInt(offsets[0]!);
  return offset < 1n << 64n ? { epoch: epochs[0]!, offset } : undefined;
}

/** sleep waits ms, or less if signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Publisher publishes from the client on one publish stream (SPEC.md
 * §14.4), where the server allows it; make one with session.publisher.
 * Publishes may overlap: they are sent in the order of the calls and
 * acknowledged in that order.
 */
export class Publisher<Desc extends DescMessage> {
  private readonly stream: Promise<Stream>;
  private sending: Promise<unknown> = Promise.resolve();
  private acking: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  /** @internal Use session.publisher. */
  constructor(
    session: Session,
    /** The topic's name. */
    readonly topic: string,
    private readonly schema: Desc,
    opts: PublisherOptions = {},
  ) {
    const md = toMetadata(opts.metadata);
    for (const k of [KEY_TOPIC, KEY_EPOCH, KEY_OFFSET]) md.delete(k);
    md.set(KEY_TOPIC, ["publish"]);
    this.stream = session.open(topic, { metadata: md, signal: opts.signal });
    this.stream.catch(() => {}); // publish reports it
  }

  /**
   * publish publishes message and resolves with its position once the
   * server acknowledged it. It rejects with a WsplexError: the refusal of
   * a server that does not let this client publish (PERMISSION_DENIED),
   * the status of a server that failed to publish, or CANCELED after
   * close(). A message that failed may or may not have been published;
   * those acknowledged before it were.
   */
  async publish(message: MessageShape<Desc>): Promise<Position> {
    if (this.closing) throw new WsplexError(Code.CANCELED, "publisher closed");
    const body = toBinary(this.schema, message);
    const sent = this.sending.then(async () => (await this.stream).sendBytes(body));
    this.sending = sent.catch(() => {});
    const acked = this.acking.then(async () => {
      await sent;
      const ack = await (await this.stream).receive(TopicPublishedSchema);
      if (!ack) throw new WsplexError(Code.UNAVAILABLE, `server ended publishing to "${this.topic}" before acknowledging`, { remote: true });
      return { epoch: ack.epoch, offset: ack.offset };
    });
    this.acking = acked.catch(() => {});
    return acked;
  }

  /**
   * close ends publishing: the messages passed to publish before are
   * still sent and acknowledged. It resolves once the server has answered
   * them all and ended the stream, or the stream failed (publish reports
   * how); later publishes fail.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      let st: Stream | undefined;
      try {
        st = await this.stream;
        await this.sending;
        st.closeWrite();
        await this.acking;
        await st.receive(TopicPublishedSchema); // the server's end
      } catch {
        // publish reported it
      } finally {
        st?.close();
      }
    })();
    return this.closing;
  }
}
