// The frame of every headless-Chromium script (tests/chat/e2e_chat.mjs, tests/db/e2e_quick.mjs,
// tests/console/e2e_console.mjs): Debian's /usr/bin/chromium (or $CHROMIUM) through playwright-core,
// one browser context, the steps passed, and one JSON result line the Python test reads:
// {"ok": true, "steps": [...], "timings": {...}} or {"ok": false, "error": ..., "steps", "timings"};
// the exit code is 1 when a step failed.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Run `scenario(run)` in a fresh headless Chromium and print its result line.
 * `run`: `context` (the one browser context), `step(name)` (a step passed; its time since the
 * start goes to timings), `steps` (a scenario may push notes such as page errors),
 * `shot(page, file, options)` (a screenshot into artifactsDir), and `failurePage`: set it to the
 * page to screenshot as `failureShot` when a step throws.
 */
export async function runScenario({ artifactsDir, viewport, failureShot }, scenario) {
  fs.mkdirSync(artifactsDir, { recursive: true });
  const steps = [];
  const timings = {}; // step -> ms since the start, to see where a slow run spends its time
  const started = Date.now();
  // launch() gives Chromium a fresh temporary --user-data-dir of its own and removes it on close.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  // One context for every page: the pages keep no state in storage, and contexts cost time.
  const context = await browser.newContext({ viewport });
  const run = {
    context,
    steps,
    failurePage: null,
    step(name) {
      steps.push(name);
      timings[name] = Date.now() - started;
    },
    shot: (page, file, options = {}) => page.screenshot({ path: path.join(artifactsDir, file), ...options }),
  };
  try {
    await scenario(run);
    process.stdout.write(`${JSON.stringify({ ok: true, steps, timings })}\n`);
  } catch (err) {
    // the page may be gone; the whole page, whatever the viewport shows
    if (run.failurePage) await run.shot(run.failurePage, failureShot, { fullPage: true }).catch(() => {});
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(err && err.stack || err), steps, timings })}\n`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
