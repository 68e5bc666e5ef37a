// Drives examples/chat's web page in headless Chromium: alice joins the
// lobby and speaks, bob joins and sees the room's history before his own
// join (bidi), both see each other's lines and the room list (unary);
// alice says "/clear", which the server confirms by calling her page's
// PageService; then the Go test drops every session while keeping the
// rooms (as a cluster does when one server dies), and both pages resume
// their Join where they were, showing nothing twice; then it restarts the
// chat server with nothing kept, and both pages come back, say what they
// missed, and chat again. The Go test in examples/chat starts the server and passes its
// URL; this prints what the pages showed, as JSON.
import { chromium, type Page } from "playwright-core";

const base = process.argv[2];
if (!base) throw new Error("usage: chat.js <base URL of the chat server>");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const errors: string[] = [];
const line = (page: Page, text: string) => page.locator("#lines li", { hasText: text }).waitFor();
async function say(page: Page, text: string): Promise<void> {
  await page.fill("#say input[name=text]", text);
  await page.click("#say button");
}
async function open(user: string): Promise<Page> {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(`${user}: ${e}`));
  await page.goto(`${base}/?user=${user}&room=lobby`);
  await line(page, `${user} joined`);
  return page;
}
try {
  const alice = await open("alice");
  await say(alice, "hello from alice");
  await line(alice, "alice: hello from alice");
  const bob = await open("bob");
  await say(bob, "hello from bob");
  for (const page of [alice, bob]) await line(page, "bob: hello from bob");
  await alice.locator("#rooms", { hasText: "lobby (2)" }).waitFor();
  const rooms = await alice.locator("#rooms").textContent();
  const seen = { alice: await alice.locator("#lines li").allTextContents(), bob: await bob.locator("#lines li").allTextContents() };

  // The server asks alice's page before it clears the room.
  await say(alice, "/clear");
  await alice.locator("#confirm").waitFor();
  const question = await alice.locator("#confirm span").textContent();
  await alice.click("#confirm button.yes");
  for (const page of [alice, bob]) await line(page, "alice cleared the history");

  // The sessions drop, the rooms stay: both pages resume their Join.
  await say(bob, "before the drop");
  for (const page of [alice, bob]) await line(page, "bob: before the drop");
  let res = await fetch(`${base}/restart?keep=1`, { method: "POST" });
  if (!res.ok) throw new Error(`restart: ${res.status}`);
  for (const [user, page] of [["alice", alice], ["bob", bob]] as const) await line(page, `${user} joined`);
  await say(alice, "after the drop");
  for (const page of [alice, bob]) await line(page, "alice: after the drop");
  const resumed = { alice: await alice.locator("#lines li").allTextContents(), bob: await bob.locator("#lines li").allTextContents() };

  // The server restarts with nothing kept; both pages reconnect and join again.
  res = await fetch(`${base}/restart`, { method: "POST" });
  if (!res.ok) throw new Error(`restart: ${res.status}`);
  for (const page of [alice, bob]) await line(page, "some events were missed");
  await say(alice, "back again");
  for (const page of [alice, bob]) await line(page, "alice: back again");
  const after = { alice: await alice.locator("#lines li").allTextContents(), bob: await bob.locator("#lines li").allTextContents() };
  console.log(JSON.stringify({ seen, rooms, question, resumed, after, errors }));
} finally {
  await browser.close();
}
