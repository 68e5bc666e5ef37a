// The browser side of examples/chat: calls chat.v1.ChatService with
// connect-es over wsplex, through a Reconnector so that the page comes
// back by itself after the server restarts, and serves chat.v1.PageService
// for the server to call (to confirm a "/clear"). Bundled into
// examples/chat/chatserver/web/app.js by .ci/generate.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";

import { Reconnector, type Session } from "../src/index.js";
import { createWsplexTransport, serveConnect } from "../src/connect.js";
import { ChatService, PageService, type ChatEvent, type JoinRequestSchema, type Position } from "./gen/chat/v1/chat_pb.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const join = $<HTMLFormElement>("join");
const say = $<HTMLFormElement>("say");
const status = $<HTMLParagraphElement>("status");
const rooms = $<HTMLParagraphElement>("rooms");
const lines = $<HTMLUListElement>("lines");
const ask = $<HTMLDivElement>("confirm");

function show(text: string, system = false): void {
  const li = document.createElement("li");
  li.textContent = text;
  if (system) li.className = "system";
  lines.append(li);
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

// confirm shows question with Yes and No buttons and resolves with the
// answer: PageService.Confirm, which the server calls on this page.
function confirm(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    ask.querySelector("span")!.textContent = question;
    ask.hidden = false;
    const answer = (yes: boolean) => () => {
      ask.hidden = true;
      resolve(yes);
    };
    ask.querySelector<HTMLButtonElement>("button.yes")!.onclick = answer(true);
    ask.querySelector<HTMLButtonElement>("button.no")!.onclick = answer(false);
  });
}

const scheme = location.protocol === "https:" ? "wss" : "ws";
const reconnector = new Reconnector(`${scheme}://${location.host}/wsplex`, {
  maxDelay: 2000,
  // Each new session serves PageService again: handlers do not carry over.
  onConnect: (session: Session) =>
    serveConnect(session, PageService, {
      async confirm(req) {
        return { yes: await confirm(req.question) };
      },
    }),
  onStateChange: (state, error) => {
    if (state === "waiting") status.textContent = `disconnected (${message(error)}); reconnecting…`;
    if (state === "connecting") status.textContent = "connecting…";
  },
});
const chat = createClient(ChatService, createWsplexTransport(reconnector));

// Outbox is the request stream of a Join call: the lines typed in, after
// the first request that names the room and the user.
type JoinInit = MessageInitShape<typeof JoinRequestSchema>;
class Outbox implements AsyncIterable<JoinInit> {
  private items: JoinInit[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  push(req: JoinInit): void {
    this.items.push(req);
    this.wake?.();
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<JoinInit> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
let outbox: Outbox | undefined;

async function listRooms(): Promise<void> {
  const res = await chat.listRooms({});
  rooms.textContent = "rooms: " + res.rooms.map((r) => `${r.name} (${r.members})`).join(", ");
}

function render(ev: ChatEvent, user: string, room: string): void {
  switch (ev.event.case) {
    case "line":
      show(`${ev.event.value.user}: ${ev.event.value.text}`);
      break;
    case "joined":
      show(`${ev.event.value} joined`, true);
      if (ev.event.value === user) status.textContent = `in room ${room} as ${user}`;
      listRooms().catch(() => {});
      break;
    case "left":
      show(`${ev.event.value} left`, true);
      listRooms().catch(() => {});
      break;
    case "cleared":
      lines.replaceChildren();
      show(`${ev.event.value} cleared the history`, true);
      break;
    case "missed":
      show("(some events were missed while disconnected)", true);
      break;
  }
}

// stay keeps user in room. The first Join (bidi) starts with the room's
// history; when the session is lost, the next Join, on the next session,
// resumes after the last event shown, so nothing is shown twice or lost.
async function stay(user: string, room: string): Promise<void> {
  let since: Position | undefined;
  lines.replaceChildren();
  for (;;) {
    const session = await reconnector.session();
    const box = new Outbox();
    box.push({ room, user, since });
    try {
      outbox = box;
      for await (const ev of chat.join(box)) {
        render(ev, user, room);
        since = ev.position;
      }
      status.textContent = "the server ended the chat";
      return;
    } catch (e) {
      const code = ConnectError.from(e).code;
      if (code !== Code.Unavailable && code !== Code.ResourceExhausted) throw e;
      show(`disconnected: ${message(e)}`, true);
      // After a lost session wait for the next (or a second, if the
      // session lives on); a page too slow to keep up
      // (resource_exhausted) joins again at once.
      if (code === Code.Unavailable) await Promise.race([session.closed, new Promise((r) => setTimeout(r, 1000))]);
    } finally {
      box.end();
      if (outbox === box) outbox = undefined;
    }
  }
}

say.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = say.elements.namedItem("text") as HTMLInputElement;
  if (!outbox) {
    status.textContent = "not sent: not in a room";
    return;
  }
  outbox.push({ text: input.value });
  input.value = "";
});

function start(user: string, room: string): void {
  join.hidden = true;
  say.hidden = false;
  (say.elements.namedItem("text") as HTMLInputElement).focus();
  stay(user, room).catch((e) => {
    status.textContent = `failed: ${message(e)}`;
    say.hidden = true;
    join.hidden = false;
  });
}

join.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const data = new FormData(join);
  start(String(data.get("user")), String(data.get("room")));
});

listRooms().catch(() => {});

// ?user=alice&room=lobby joins at once.
const params = new URLSearchParams(location.search);
if (params.has("user")) start(params.get("user")!, params.get("room") ?? "lobby");
