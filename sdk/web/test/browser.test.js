// The SDK in a real browser, loaded as plain ES modules with no bundler: headless Chromium
// opens a page that imports src/index.js, logs in as bob and answers alice's invitation (alice
// is the Node SDK). Skipped when no Chromium is installed (set CHROMIUM to its path).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import BeckonChat from '../src/index.js';
import { useServer, uid } from '../test-support/harness.js';
import { within } from '../test-support/events.js';
import { SDK_APP_ID, userSig } from '../test-support/server.js';

const { TSignaling } = BeckonChat;
const SDK_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function findChromium() {
  const names = process.env.CHROMIUM ? [process.env.CHROMIUM] : ['chromium', 'chromium-browser', 'google-chrome'];
  for (const name of names) {
    const found = spawnSync(name, ['--version'], { encoding: 'utf8' });
    if (found.status === 0) return name;
  }
  return null;
}

const chromium = findChromium();
const S = useServer();

/**
 * The page: imports the SDK from /src/index.js, logs in as `bob`, accepts the first invitation
 * and reports each step to the test with a POST.
 * @param {{server: string, userID: string, userSig: string}} params
 */
function page(params) {
  return `<!doctype html>
<meta charset="utf-8">
<title>beckon-web in a browser</title>
<script type="module">
import BeckonChat from '/src/index.js';
const params = ${JSON.stringify({ ...params, SDKAppID: SDK_APP_ID })};
const report = (step, body) => fetch('/report/' + step, { method: 'POST', body: JSON.stringify(body) });
try {
  const chat = BeckonChat.create({ SDKAppID: params.SDKAppID, server: params.server });
  const context = { device: 'browser' };
  chat.addSignalingListener(BeckonChat.TSignaling.NEW_INVITATION_RECEIVED, async function (event) {
    try {
      const accepted = await chat.accept({ inviteID: event.data.inviteID, data: 'from ' + this.device });
      await report('accepted', { event, accepted, hasGlobalWebSocket: typeof WebSocket === 'function' });
      await chat.logout();
      await report('done', {});
    } catch (error) {
      await report('error', { code: error.code, message: String(error.message) });
    }
  }, context);
  chat.on(BeckonChat.EVENT.SDK_READY, () => report('ready', { userID: chat.getLoginUser() }));
  await chat.login({ userID: params.userID, userSig: params.userSig });
} catch (error) {
  await report('error', { code: error.code, message: String(error.message) });
}
</script>`;
}

test('runs in Chromium as plain ES modules', async () => {
  assert.ok(chromium, 'no Chromium found: install Debian\'s chromium (.ci/run does) or set CHROMIUM');
  const [a, b] = [uid('alice'), uid('bob')];
  const alice = await S.connect(a);

  /** @type {Map<string, (body: any) => void>} */
  const waiting = new Map();
  /** @type {Map<string, any>} */
  const reported = new Map();
  /** @param {string} step @returns {Promise<any>} */
  const step = (step) => within(
    reported.has(step) ? Promise.resolve(reported.get(step)) : new Promise((resolve) => waiting.set(step, resolve)),
    20000,
    `the page's ${step} report`,
  );
  const html = page({ server: S.srv.http, userID: b, userSig: userSig(b) });
  const http = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (request.method === 'POST' && url.pathname.startsWith('/report/')) {
      let body = '';
      request.on('data', (chunk) => { body += chunk; });
      request.on('end', () => {
        const name = url.pathname.slice('/report/'.length);
        const value = JSON.parse(body || '{}');
        reported.set(name, value);
        waiting.get(name)?.(value);
        if (name === 'error') for (const resolve of waiting.values()) resolve({ error: value });
        response.end('ok');
      });
      return;
    }
    if (url.pathname === '/' || url.pathname === '/index.html') {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(html);
      return;
    }
    const file = normalize(join(SDK_ROOT, url.pathname));
    if (!file.startsWith(join(SDK_ROOT, 'src')) || !file.endsWith('.js')) {
      response.writeHead(404).end();
      return;
    }
    try {
      const text = readFileSync(file);
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(text);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const profile = mkdtempSync(join(tmpdir(), 'beckon-web-chromium-'));
  // Its own process group, so the renderer and helper processes are killed with it.
  const browser = spawn(/** @type {string} */ (chromium), [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    `--user-data-dir=${profile}`,
    `http://127.0.0.1:${port}/`,
  ], { stdio: 'ignore', detached: true });
  const browserExited = new Promise((resolve) => browser.once('exit', resolve));
  try {
    const ready = await step('ready');
    assert.deepEqual(ready, { userID: b });
    const { inviteID } = await alice.chat.invite({ userID: b, data: 'ring the browser', timeout: 30 });
    const accepted = await step('accepted');
    assert.equal(accepted.error, undefined, JSON.stringify(accepted.error));
    assert.equal(accepted.hasGlobalWebSocket, true);
    assert.equal(accepted.event.name, TSignaling.NEW_INVITATION_RECEIVED);
    assert.equal(accepted.event.data.inviteID, inviteID);
    assert.equal(accepted.event.data.data, 'ring the browser');
    assert.equal(accepted.accepted.code, 0);
    assert.equal(accepted.accepted.inviteID, inviteID);
    const toAlice = await alice.rec.next(TSignaling.INVITEE_ACCEPTED);
    assert.deepEqual(toAlice.data, { inviteID, inviter: a, groupID: '', invitee: b, data: 'from browser' });
    await step('done');
  } finally {
    try {
      process.kill(-(/** @type {number} */ (browser.pid)), 'SIGKILL');
    } catch {
      browser.kill('SIGKILL');
    }
    await browserExited;
    const closed = new Promise((resolve) => http.close(() => resolve(undefined)));
    http.closeAllConnections();
    await closed;
    // A helper process may still be finishing a write into the profile as it dies: removal
    // retries on ENOTEMPTY/EBUSY instead of failing the test on its own clean-up.
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  }
});
