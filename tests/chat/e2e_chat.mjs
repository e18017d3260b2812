// Drives the chat page in headless Chromium (Debian's /usr/bin/chromium through playwright-core).
//   node tests/chat/e2e_chat.mjs <page url> <artifacts dir>
// Prints one JSON line {"ok": true, "steps": [...]} or {"ok": false, "error": ..., "steps": [...]};
// exits 0 only when every step passed. Used by tests/chat/test_chat_e2e.py.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'node', 'package.json'));
const { chromium } = require('playwright-core');

const [pageUrl, artifactsDir] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 10000;
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const steps = [];
const timings = {}; // step -> ms since the start, to see where a slow run spends its time
const started = Date.now();
const step = (name) => {
  steps.push(name);
  timings[name] = Date.now() - started;
};

async function openAs(context, username, room) {
  const page = await context.newPage();
  page.on('pageerror', (err) => steps.push(`${username}: page error: ${err.message}`));
  await page.goto(pageUrl);
  await page.fill('#username', username);
  await page.fill('#room', room);
  await page.click('#login');
  return page;
}

async function entered(page, username) {
  await page.waitForSelector('body[data-state="chat"]', { timeout: WAIT_MS });
  await page.waitForSelector(`#users li[data-user="${username}"]`, { timeout: WAIT_MS });
}

const online = (page, user) => page.waitForSelector(`#users li[data-user="${user}"]`, { timeout: WAIT_MS });
const offline = (page, user) => page.waitForSelector(`#users li[data-user="${user}"]`, { state: 'detached', timeout: WAIT_MS });

function chatLine(page, from, text) {
  return page.locator('#messages li.chat').filter({ hasText: text }).and(page.locator(`[data-from="${from}"]`));
}

async function seesChat(page, from, text) {
  await chatLine(page, from, text).first().waitFor({ timeout: WAIT_MS });
}

async function say(page, target, text) {
  await page.selectOption('#target', target);
  await page.fill('#message', text);
  await page.click('#send');
}

async function main() {
  fs.mkdirSync(artifactsDir, { recursive: true });
  // launch() gives Chromium a fresh temporary --user-data-dir of its own and removes it on close.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  // One context for every page: the page keeps no state in storage, and contexts cost time.
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  step('chromium started');
  let alice = null;
  try {
    alice = await openAs(context, 'alice', 'lobby');
    await entered(alice, 'alice');
    step('alice entered lobby');

    const bob = await openAs(context, 'bob', 'lobby');
    await entered(bob, 'bob');
    await online(bob, 'alice');
    await online(alice, 'bob');
    step('alice and bob see each other online');

    const carol = await openAs(context, 'carol', 'lobby');
    await entered(carol, 'carol');
    await online(alice, 'carol');
    await online(bob, 'carol');
    step('carol entered; everyone sees her');

    const impostor = await openAs(context, 'alice', 'lobby');
    await impostor.waitForFunction(() => document.getElementById('error').textContent.includes('already in this room'),
      null, { timeout: WAIT_MS });
    if (await impostor.evaluate(() => document.body.dataset.state) !== 'login') throw new Error('a taken name entered the room');
    await impostor.close();
    step('a second alice is refused with a message');

    await say(alice, '*', 'hello everyone');
    await seesChat(bob, 'alice', 'hello everyone');
    await seesChat(carol, 'alice', 'hello everyone');
    await seesChat(alice, 'alice', 'hello everyone');
    step('a message to everyone reaches bob and carol');

    await say(alice, 'bob', 'just for bob');
    await seesChat(bob, 'alice', 'just for bob');
    await seesChat(alice, 'alice', 'just for bob');
    // Pushes of one room come in order: once carol sees the marker, "just for bob" would be there.
    await say(bob, '*', 'marker after the private one');
    await seesChat(carol, 'bob', 'marker after the private one');
    if (await chatLine(carol, 'alice', 'just for bob').count() !== 0) throw new Error('carol saw the private message');
    if (await chatLine(bob, 'alice', 'just for bob').count() !== 1) throw new Error('bob did not see the private message once');
    step('a private message reaches bob only');

    await bob.screenshot({ path: path.join(artifactsDir, 'chat-e2e.png') });
    step('screenshot saved');

    await carol.close();
    await offline(alice, 'carol');
    await offline(bob, 'carol');
    await alice.locator('#messages li.notice', { hasText: 'carol left' }).waitFor({ timeout: WAIT_MS });
    if (await alice.locator('#target option[value="carol"]').count() !== 0) throw new Error('carol is still a target');
    step('closing carol\'s page shows her leaving');

    process.stdout.write(`${JSON.stringify({ ok: true, steps, timings })}\n`);
  } catch (err) {
    if (alice) await alice.screenshot({ path: path.join(artifactsDir, 'chat-e2e-failure.png') }).catch(() => {});
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(err && err.stack || err), steps, timings })}\n`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main();
