// Browser-test support: the real `beckon serve` (dev mode) as a child process, headless
// Chromium through playwright-core, signed-in pages, bounded waits and screenshots.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..', '..');
export const ARTIFACTS = join(here, 'artifacts');

/** Bounded wait for any UI state (ms). */
export const WAIT = 8000;

/** The server binary: BECKON_BIN, else target/debug/beckon, built when missing. */
export function serverBinary() {
  if (process.env.BECKON_BIN) return process.env.BECKON_BIN;
  const bin = join(REPO_ROOT, 'target', 'debug', 'beckon');
  if (!existsSync(bin)) {
    const built = spawnSync('cargo', ['build', '-p', 'beckon'], { cwd: REPO_ROOT, stdio: 'inherit' });
    if (built.status !== 0 || !existsSync(bin)) throw new Error(`cargo build -p beckon failed (${built.status})`);
  }
  return bin;
}

/** Chromium: CHROMIUM, else Debian's /usr/bin/chromium. */
export function chromiumPath() {
  const path = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`no Chromium at ${path}: install Debian's package (apt-get install -y chromium) or set CHROMIUM`);
  }
  return path;
}

/** The environment for the server, without BECKON_* settings that would change its identity. */
function serverEnv() {
  /** @type {Record<string, string>} */
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('BECKON_') && value !== undefined) env[key] = value;
  }
  return { ...env, RUST_LOG: process.env.RUST_LOG ?? 'warn', NO_COLOR: '1' };
}

/**
 * Checks that the server serves the demo and SDK files as they are on disk: the binary embeds
 * them when it is compiled, so an old binary would test an old page.
 * @param {string} url
 */
export async function checkEmbeddedFiles(url) {
  const sets = [
    { dir: join(here, '..', 'demo'), prefix: '/demo/', only: /\.(html|js|css|svg)$/ },
    { dir: join(here, '..', 'src'), prefix: '/sdk/', only: /\.js$/ },
  ];
  const stale = [];
  for (const { dir, prefix, only } of sets) {
    for (const name of readdirSync(dir).filter((file) => only.test(file))) {
      const response = await fetch(`${url}${prefix}${name}`);
      const served = response.ok ? await response.text() : null;
      if (served !== readFileSync(join(dir, name), 'utf8')) stale.push(`${prefix}${name}${served === null ? ' (missing)' : ''}`);
    }
  }
  if (stale.length > 0) {
    throw new Error(
      `the server binary serves old copies of ${stale.join(', ')}: rebuild it (cargo build -p beckon; a newly added file ` +
        'may need the server crate recompiled, e.g. touch crates/server/src/assets.rs)',
    );
  }
}

/** @type {WeakMap<import('playwright-core').Page, string[]>} */
const pageLogs = new WeakMap();

/**
 * After a failure: a screenshot of every open page and what it logged, under artifacts/.
 * @param {string} name
 * @param {import('playwright-core').BrowserContext[]} contexts
 * @param {string} [serverOutput]
 */
export async function reportFailure(name, contexts, serverOutput) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
  const lines = [`# ${name}`];
  let n = 0;
  for (const context of contexts) {
    for (const page of context.pages()) {
      n += 1;
      const file = `FAILED-${slug}-${n}.png`;
      await page.screenshot({ path: join(ARTIFACTS, file), timeout: 3000 }).catch(() => {});
      const state = await page
        .evaluate(() => ({
          url: location.href,
          boot: document.getElementById('boot-text')?.textContent,
          login: !document.getElementById('login')?.hidden,
          main: !document.getElementById('shell')?.hidden,
          call: document.getElementById('call')?.dataset.state,
          me: document.getElementById('me-name')?.textContent,
        }))
        .catch((error) => ({ error: String(error) }));
      lines.push(`## page ${n} (${file}): ${JSON.stringify(state)}`, ...(pageLogs.get(page) ?? []));
    }
  }
  if (serverOutput) lines.push('## server output', serverOutput);
  writeFileSync(join(ARTIFACTS, `FAILED-${slug}.txt`), `${lines.join('\n')}\n`);
}

/** Every server started here, killed when the process exits whatever happens. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Starts `beckon serve` on a free loopback port with a fresh data directory.
 * @param {{dev?: boolean}} [options]
 * @returns {Promise<{url: string, sdkAppID: number, dataDir: string, output: () => string, stop: () => Promise<void>}>}
 */
export async function startServer(options = {}) {
  const bin = serverBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'beckon-demo-test-'));
  const child = spawn(
    bin,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--dev', String(options.dev ?? true), '--log-format', 'text'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv() },
  );
  children.add(child);
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise((done) => child.once('exit', done));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    children.delete(child);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const found = await new Promise((resolveFound, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start within 20 s:\n${output}`)), 20000);
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const url = /beckon is serving on (http:\/\/\S+)/.exec(output);
        const app = /SDKAppID (\d+)/.exec(output);
        if (url && app) {
          clearTimeout(timer);
          resolveFound({ url: url[1], sdkAppID: Number(app[1]) });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited with ${code} before serving:\n${output}`));
      });
    });
    return { ...found, dataDir, output: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A UserSig from the binary (`beckon usersig`) for the server's dev credentials.
 * @param {string} dataDir
 * @param {string} userID
 */
export function mintUserSig(dataDir, userID) {
  const run = spawnSync(serverBinary(), ['usersig', '--data-dir', dataDir, userID], { encoding: 'utf8', env: serverEnv() });
  if (run.status !== 0) throw new Error(`beckon usersig failed: ${run.stderr}`);
  return run.stdout.trim();
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/**
 * A page with its problems recorded: uncaught errors and console errors fail the test.
 * @param {import('playwright-core').BrowserContext} context
 */
export async function openPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  /** @type {string[]} */
  const problems = [];
  /** Everything the page logged, for failure reports. @type {string[]} */
  const log = [];
  pageLogs.set(page, log);
  page.on('console', (message) => log.push(`${message.type()}: ${message.text()}`));
  page.on('requestfailed', (request) => log.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));
  page.on('pageerror', (error) => log.push(`page error: ${error.message}`));
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // Without dev mode, the page's probe of /dev/users answers 404 by design.
    if (message.text().startsWith('Failed to load resource') && message.location().url.includes('/dev/')) return;
    problems.push(`console error: ${message.text()} (${message.location().url})`);
  });
  return { page, problems };
}

/**
 * A new browser context (one "device"), signed in as `userID` through the sign-in form.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {string} userID
 * @param {{width?: number, height?: number}} [viewport]
 * @param {{context: import('playwright-core').BrowserContext, problems: string[]}[]} [opened]
 *   where the new context is registered (at once, so that it is closed even if sign-in fails)
 * @param {(context: import('playwright-core').BrowserContext) => Promise<void>} [prepare]
 *   run on the context before the page opens (to route its WebSocket, for example)
 */
export async function signedIn(browser, url, userID, viewport = {}, opened = [], prepare = async () => {}) {
  const context = await browser.newContext({
    viewport: { width: viewport.width ?? 1200, height: viewport.height ?? 760 },
    deviceScaleFactor: 1,
  });
  await prepare(context);
  const { page, problems } = await openPage(context);
  opened.push({ context, problems });
  await page.goto(url);
  await page.getByTestId('login-user').fill(userID);
  await page.getByTestId('login-submit').click();
  await expectMainView(page, userID);
  return { context, page, problems };
}

/**
 * Waits until the page shows the signed-in app for `userID`.
 * @param {import('playwright-core').Page} page
 * @param {string} userID
 */
export async function expectMainView(page, userID) {
  await page.getByTestId('main-view').waitFor({ state: 'visible', timeout: WAIT });
  await page.waitForFunction(
    (user) => document.querySelector('[data-testid=me-name]')?.textContent === user
      && document.querySelector('[data-testid=net-status]')?.getAttribute('data-state') === 'connected',
    userID,
    { timeout: WAIT },
  );
}

/**
 * Waits for the call screen to be in `state` (and, if given, `endReason`).
 * @param {import('playwright-core').Page} page
 * @param {'incoming' | 'outgoing' | 'active' | 'ended'} state
 * @param {string} [endReason]
 * @param {number} [timeout]
 */
export async function expectCallState(page, state, endReason, timeout = WAIT) {
  const selector = endReason
    ? `[data-testid=call-screen][data-state=${state}][data-end-reason=${endReason}]`
    : `[data-testid=call-screen][data-state=${state}]`;
  await page.locator(selector).waitFor({ state: 'visible', timeout });
}

/**
 * Waits until no call screen shows.
 * @param {import('playwright-core').Page} page
 */
export async function expectNoCall(page) {
  await page.getByTestId('call-screen').waitFor({ state: 'hidden', timeout: WAIT });
}

/**
 * Calls `userID` from the People list (refreshing it first so that a newcomer shows).
 * @param {import('playwright-core').Page} page
 * @param {string} userID
 */
export async function callFromPeople(page, userID) {
  const person = page.locator(`[data-testid=person][data-user="${userID}"]`);
  if (!(await person.isVisible())) {
    await page.getByTestId('people-refresh').click();
  }
  await person.waitFor({ state: 'visible', timeout: WAIT });
  await person.getByTestId('person-call').click();
}

/**
 * Waits for a call-log entry whose title and detail contain the given texts.
 * @param {import('playwright-core').Page} page
 * @param {string} title
 * @param {string} detail
 */
export async function expectLogEntry(page, title, detail) {
  await page.waitForFunction(
    ([t, d]) => [...document.querySelectorAll('[data-testid=call-log-item]')].some(
      (item) => item.querySelector('[data-testid=call-log-title]')?.textContent?.includes(t)
        && item.querySelector('[data-testid=call-log-detail]')?.textContent?.includes(d),
    ),
    [title, detail],
    { timeout: WAIT },
  ).catch(async (error) => {
    const entries = await page.locator('[data-testid=call-log-item]').allInnerTexts();
    throw new Error(`no call-log entry "${title}" / "${detail}"; entries: ${JSON.stringify(entries)}\n${error.message}`);
  });
}

/**
 * Saves a screenshot to artifacts/NAME.png.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  // Animations are settled (entrances finished, loops stopped) so each picture is the state.
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), animations: 'disabled' });
}

/** @param {import('playwright-core').Page} page */
export async function text(page, testID) {
  return (await page.getByTestId(testID).textContent())?.trim() ?? '';
}

/**
 * Routes the context's WebSocket through Playwright and holds each login answer (the result
 * that carries `serverTime` and `eventRetentionSeconds`) for `ms` before the page gets it, as a
 * slow network or a busy device would; every other frame keeps its order behind it.
 * @param {import('playwright-core').BrowserContext} context
 * @param {number} ms
 */
export async function holdLoginAnswers(context, ms) {
  await context.routeWebSocket(/\/ws$/, (page) => {
    const server = page.connectToServer();
    let delivered = Promise.resolve();
    server.onMessage((message) => {
      const hold = typeof message === 'string' && message.includes('"eventRetentionSeconds"');
      delivered = delivered.then(async () => {
        if (hold) await new Promise((done) => setTimeout(done, ms));
        page.send(message);
      });
    });
  });
}
