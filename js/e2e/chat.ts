// Drives examples/chat's web page in headless Chromium: alice and bob join
// the lobby in two pages, each says a line, and both must see both lines,
// pushed by the server. The Go test in examples/chat starts the server and
// passes its URL; this prints what each page showed, as JSON.
import { chromium, type Page } from "playwright-core";

const base = process.argv[2];
if (!base) throw new Error("usage: chat.js <base URL of the chat server>");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const errors: string[] = [];
try {
  const pages: Record<string, Page> = {};
  for (const user of ["alice", "bob"]) {
    const page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(`${user}: ${e}`));
    await page.goto(`${base}/?user=${user}&room=lobby`);
    await page.locator("#lines li", { hasText: `welcome, ${user}` }).waitFor();
    pages[user] = page;
  }
  for (const user of ["alice", "bob"]) {
    const page = pages[user]!;
    await page.fill("#say input[name=text]", `hello from ${user}`);
    await page.click("#say button");
  }
  const seen: Record<string, string[]> = {};
  for (const user of ["alice", "bob"]) {
    const page = pages[user]!;
    for (const who of ["alice", "bob"]) await page.locator("#lines li", { hasText: `${who}: hello from ${who}` }).waitFor();
    seen[user] = await page.locator("#lines li").allTextContents();
  }
  // A page without a name is refused by the server's OnOpen check.
  const anon = await browser.newPage();
  await anon.goto(`${base}/?user=`);
  await anon.locator("#status", { hasText: "refused" }).waitFor();
  const refused = await anon.locator("#status").textContent();
  console.log(JSON.stringify({ seen, refused, errors }));
} finally {
  await browser.close();
}
