// Drives the master's web console in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core), against a real cluster started by tests/console/test_console_e2e.py.
//   node tests/console/e2e_console.mjs <console url> <artifacts dir> <config json>
// config: {"operator": [user, password], "watcher": [user, password]}
// Prints one JSON line {"ok": true, "steps": [...]} or {"ok": false, "error", "steps"}
// (tests/node/e2e_run.mjs).
import { runScenario } from '../node/e2e_run.mjs';

const [baseUrl, artifactsDir, configJson] = process.argv.slice(2);
const config = JSON.parse(configJson);
const WAIT_MS = 40000;   // per step   // a server added or restarted registers within seconds; the box is shared

const FULL = { fullPage: true };
const url = (p) => new URL(p, baseUrl).toString();

async function login(page, [username, password]) {
  await page.goto(url('/'));
  await page.waitForURL(/\/login$/, { timeout: WAIT_MS });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login');
}

// a server row's state, as the live table shows it
const rowState = (page, id, state) => page.waitForSelector(
  `#servers tr[data-server="${id}"][data-state="${state}"]`, { timeout: WAIT_MS });

runScenario({ artifactsDir, viewport: { width: 1280, height: 760 }, failureShot: 'console-failure.png' },
  async (run) => {
    const { step } = run;
    const page = await run.context.newPage();
    run.failurePage = page;
    page.on('pageerror', (err) => run.steps.push(`page error: ${err.message}`));
    page.on('dialog', (dialog) => dialog.accept());
    // 1. without a session: the page sends the browser to the login form; the API refuses
    await page.goto(url('/'));
    await page.waitForURL(/\/login$/, { timeout: WAIT_MS });
    const anon = await page.evaluate(async () => (await fetch('/api/cluster')).status);
    if (anon !== 401) throw new Error(`/api/cluster without login answered ${anon}`);
    step('not logged in: redirected to /login, /api/cluster answers 401');

    // 2. a wrong password stays on the login form with the reason
    await login(page, [config.operator[0], 'wrong-password']);
    await page.waitForSelector('#login-error:has-text("wrong username or password")', { timeout: WAIT_MS });
    if (!page.url().endsWith('/login')) throw new Error(`a wrong password reached ${page.url()}`);
    await run.shot(page, 'console-login-refused.png', FULL);
    step('a wrong password is refused');

    // 3. a watch-only user sees the cluster, has no buttons, and the server refuses its action
    await login(page, config.watcher);
    await page.waitForSelector('#servers tr[data-server="chat-server-1"][data-state="running"]', { timeout: WAIT_MS });
    if (await page.locator('#servers button[data-action]').count() !== 0) throw new Error('a watcher sees action buttons');
    const refused = await page.evaluate(async () => {
      const me = await (await fetch('/api/session')).json();
      const res = await fetch('/api/action', {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf },
        body: JSON.stringify({ action: 'kill', server: 'chat-server-1' }) });
      return { status: res.status, body: await res.json() };
    });
    if (refused.status !== 403) throw new Error(`a watcher's kill answered ${refused.status}`);
    await rowState(page, 'chat-server-1', 'running');
    step('a watch-only user is refused an action server-side (403)');
    await page.click('#logout');
    await page.waitForURL(/\/login$/, { timeout: WAIT_MS });
    const afterLogout = await page.evaluate(async () => (await fetch('/api/cluster')).status);
    if (afterLogout !== 401) throw new Error(`after logout /api/cluster answered ${afterLogout}`);
    step('logout ends the session');

    // 4. an operator: the table lists every server, live
    await login(page, config.operator);
    for (const id of config.servers) await rowState(page, id, 'running');
    step('the operator sees every server running');

    // 5. add a server with the form: its row appears and turns running
    await page.fill('#add-type', 'chat');
    await page.fill('#add-id', 'chat-server-3');
    await page.fill('#add-port', '0');
    await page.click('#add');
    await rowState(page, 'chat-server-3', 'running');
    await page.waitForSelector('#message:has-text("add chat-server-3: done")', { timeout: WAIT_MS });
    await run.shot(page, 'console-cluster.png', FULL);
    step('a server added from the form appears running');

    // 6. kill it with its button: the row shows it gone
    await page.click('#servers tr[data-server="chat-server-3"] button[data-action="kill"]');
    await rowState(page, 'chat-server-3', 'stopped');
    step('a killed server is shown stopped');

    // 7. stop another one: its process goes, its row says so
    await page.click('#servers tr[data-server="chat-server-2"] button[data-action="stop"]');
    await rowState(page, 'chat-server-2', 'stopped');
    await page.waitForSelector('#message:has-text("stop chat-server-2: done")', { timeout: WAIT_MS });
    step('a server stopped from its button is shown stopped');

    // 8. a server killed from outside (kill -9 by the test): the table shows it down
    await page.click('button.tab[data-tab="cluster"]');
    process.stdout.write(`${JSON.stringify({ waiting: 'kill -9 chat-server-1' })}\n`);
    await rowState(page, 'chat-server-1', 'down');
    step('a server killed outside the console is shown down');

    // 9. the other pages: routes, rpc, users, logs (filled by the traffic the test sent)
    await page.click('button.tab[data-tab="routes"]');
    await page.waitForSelector('#routes tbody tr td:has-text("connector.entryHandler.enter")', { timeout: WAIT_MS });
    await run.shot(page, 'console-routes.png', FULL);
    await page.click('button.tab[data-tab="rpc"]');
    await page.waitForSelector('#rpc tbody tr td:has-text("chatRemote.add")', { timeout: WAIT_MS });
    await page.click('button.tab[data-tab="users"]');
    for (const uid of config.uids) await page.waitForSelector(`#users tr[data-uid="${uid}"]`, { timeout: WAIT_MS });
    await run.shot(page, 'console-users.png', FULL);
    await page.click('button.tab[data-tab="logs"]');
    await page.waitForSelector('#logs pre[data-server="master-server-1"]', { timeout: WAIT_MS });
    await run.shot(page, 'console-logs.png', FULL);
    step('routes, rpc calls, online users and logs are shown');
  });
