// Drives the quick game's page in headless Chromium (Debian's /usr/bin/chromium, playwright-core).
//   node tests/db/e2e_quick.mjs <page url> <artifacts dir>
// Prints one JSON line {"ok": true, "steps": [...]} or {"ok": false, "error": ..., "steps": [...]};
// exits 0 only when every step passed (tests/node/e2e_run.mjs). Used by tests/db/test_quick_page.py.
import { runScenario } from '../node/e2e_run.mjs';

const [pageUrl, artifactsDir] = process.argv.slice(2);
const WAIT_MS = 10000;

async function joinAs(run, uid, area) {
  const page = await run.context.newPage();
  page.on('pageerror', (err) => run.steps.push(`${uid}: page error: ${err.message}`));
  await page.goto(pageUrl);
  await page.fill('#uid', uid);
  await page.fill('#area', area);
  await page.click('#join');
  await page.waitForSelector('body[data-state="game"]', { timeout: WAIT_MS });
  await sees(page, uid, 0, 0);
  return page;
}

const sees = (page, uid, x, y) => page.waitForSelector(
  `#players li[data-uid="${uid}"][data-x="${x}"][data-y="${y}"]`, { timeout: WAIT_MS });

const hasItem = (page, item) => page.locator('#items li', { hasText: item }).first().waitFor({ timeout: WAIT_MS });

runScenario({ artifactsDir, viewport: { width: 1100, height: 720 }, failureShot: 'quick-e2e-failure.png' },
  async (run) => {
    const { step } = run;
    step('chromium started');
    const ann = await joinAs(run, 'ann', 'town');
    run.failurePage = ann;
    const bob = await joinAs(run, 'bob', 'town');
    await sees(ann, 'bob', 0, 0);
    await sees(bob, 'ann', 0, 0);
    step('ann and bob joined town and see each other');

    await bob.click('#board button[data-x="3"][data-y="4"]');
    await sees(bob, 'bob', 3, 4);
    await sees(ann, 'bob', 3, 4);
    await ann.locator('#board button.other[data-x="3"][data-y="4"]').waitFor({ timeout: WAIT_MS });
    step('bob moved to 3,4 and ann saw it pushed');

    await ann.fill('#pick-item', 'sword');
    await ann.click('#pick');
    await hasItem(ann, 'sword');
    await ann.selectOption('#give-to', 'bob');
    await ann.selectOption('#give-item', 'sword');
    await ann.click('#give');
    await hasItem(bob, 'sword');
    await ann.locator('#items li', { hasText: 'sword' }).waitFor({ state: 'detached', timeout: WAIT_MS });
    step('ann picked up a sword and gave it to bob');

    await bob.click('#give');     // bob's select has ann and the sword: give it back
    await hasItem(ann, 'sword');
    step('bob gave it back');
    await run.shot(ann, 'quick-e2e.png');
    step('screenshot saved');

    await ann.click('#give');     // with no item left the page says so and sends nothing
    await ann.click('#give');
    await ann.waitForFunction(() => document.getElementById('error').textContent.includes('Pick up an item first'),
      null, { timeout: WAIT_MS });
    await hasItem(bob, 'sword');
    step('ann gave it again; with nothing left to give the page says so');
  });
