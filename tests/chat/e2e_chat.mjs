// Drives the chat page in headless Chromium (Debian's /usr/bin/chromium through playwright-core).
//   node tests/chat/e2e_chat.mjs <page url> <artifacts dir>
// Prints one JSON line {"ok": true, "steps": [...]} or {"ok": false, "error": ..., "steps": [...]};
// exits 0 only when every step passed (tests/node/e2e_run.mjs). Used by tests/chat/test_chat_e2e.py.
import { runScenario } from '../node/e2e_run.mjs';

const [pageUrl, artifactsDir] = process.argv.slice(2);
const WAIT_MS = 10000;
async function openAs(run, username, room) {
  const page = await run.context.newPage();
  page.on('pageerror', (err) => run.steps.push(`${username}: page error: ${err.message}`));
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

runScenario({ artifactsDir, viewport: { width: 1100, height: 720 }, failureShot: 'chat-e2e-failure.png' },
  async (run) => {
    const { step } = run;
    step('chromium started');
    const alice = await openAs(run, 'alice', 'lobby');
    run.failurePage = alice;
    await entered(alice, 'alice');
    step('alice entered lobby');

    const bob = await openAs(run, 'bob', 'lobby');
    await entered(bob, 'bob');
    await online(bob, 'alice');
    await online(alice, 'bob');
    step('alice and bob see each other online');

    const carol = await openAs(run, 'carol', 'lobby');
    await entered(carol, 'carol');
    await online(alice, 'carol');
    await online(bob, 'carol');
    step('carol entered; everyone sees her');

    const impostor = await openAs(run, 'alice', 'lobby');
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

    await run.shot(bob, 'chat-e2e.png');
    step('screenshot saved');

    await carol.close();
    await offline(alice, 'carol');
    await offline(bob, 'carol');
    await alice.locator('#messages li.notice', { hasText: 'carol left' }).waitFor({ timeout: WAIT_MS });
    if (await alice.locator('#target option[value="carol"]').count() !== 0) throw new Error('carol is still a target');
    step('closing carol\'s page shows her leaving');
  });
