// The browser side of examples/chat: joins a room by opening
// "/chat/room/{room}" with metadata "user", sends lines on that stream, and
// serves "/chat/feed/{room}", the stream the server opens to push the
// room's lines. Bundled into examples/chat/web/app.js by .ci/generate.
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";

import { WsplexError, connect, type Stream } from "../src/index.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const join = $<HTMLFormElement>("join");
const say = $<HTMLFormElement>("say");
const status = $<HTMLParagraphElement>("status");
const lines = $<HTMLUListElement>("lines");

function show(text: string, system = false): void {
  const li = document.createElement("li");
  li.textContent = text;
  if (system) li.className = "system";
  lines.append(li);
}

async function enter(user: string, room: string): Promise<void> {
  status.textContent = "connecting…";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const session = await connect(`${scheme}://${location.host}/wsplex`);
  let refused = false;
  session.closed.then((why) => {
    if (refused) return;
    status.textContent = `disconnected: ${why.message}`;
    say.hidden = true;
  });
  session.handle("/chat/feed/{room}", async (feed) => {
    for await (const line of feed.messages(StringValueSchema)) show(line.value);
  });
  let st: Stream;
  try {
    st = await session.open(`/chat/room/${encodeURIComponent(room)}`, { metadata: { user } });
    await st.response(); // a refusal shows here
  } catch (e) {
    status.textContent = e instanceof WsplexError ? `refused: ${e.message}` : String(e);
    refused = true;
    session.close();
    return;
  }
  const welcome = await st.receive(StringValueSchema);
  show(welcome?.value ?? "", true);
  status.textContent = `in room ${room} as ${user}`;
  join.hidden = true;
  say.hidden = false;
  say.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = say.elements.namedItem("text") as HTMLInputElement;
    const text = input.value;
    input.value = "";
    st.send(StringValueSchema, create(StringValueSchema, { value: text })).catch((e) => {
      status.textContent = `not sent: ${e instanceof Error ? e.message : e}`;
    });
  });
  (say.elements.namedItem("text") as HTMLInputElement).focus();
}

function start(user: string, room: string): void {
  enter(user, room).catch((e) => {
    status.textContent = `failed: ${e instanceof Error ? e.message : e}`;
  });
}

join.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const data = new FormData(join);
  start(String(data.get("user")), String(data.get("room")));
});

// ?user=alice&room=lobby joins at once.
const params = new URLSearchParams(location.search);
if (params.has("user")) start(params.get("user")!, params.get("room") ?? "lobby");
