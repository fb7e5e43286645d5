// Test support: a real Beckon server as a child process, UserSigs minted in JS (TLSSigAPIv2),
// and the admin account import.

import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

export const SDK_APP_ID = 1400000001;
export const SECRET_KEY = 'beckon-web-sdk-test-secret-0123456789abcdef';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: sdk/web/test-support → ../../.. */
export const REPO_ROOT = resolve(here, '..', '..', '..');

/** Path of the server binary, building it when missing (BECKON_BIN overrides). */
export function serverBinary() {
  if (process.env.BECKON_BIN) return process.env.BECKON_BIN;
  const bin = join(REPO_ROOT, 'target', 'debug', process.platform === 'win32' ? 'beckon.exe' : 'beckon');
  if (!existsSync(bin)) {
    const built = spawnSync('cargo', ['build', '-p', 'beckon'], { cwd: REPO_ROOT, stdio: 'inherit' });
    if (built.status !== 0 || !existsSync(bin)) {
      throw new Error(`cannot build the server: cargo build -p beckon exited with ${built.status}`);
    }
  }
  return bin;
}

/** Every server started here, killed when the process exits whatever happens. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * @typedef {object} TestServer
 * @property {string} http base URL, `http://127.0.0.1:PORT`
 * @property {string} ws WebSocket URL
 * @property {string} dataDir
 * @property {(how?: {signal?: NodeJS.Signals, keepData?: boolean}) => Promise<void>} stop stops
 *   the server (SIGKILL unless told) and removes its data directory unless `keepData`
 * @property {() => string} output what the server printed so far (for failure messages)
 */

/**
 * Starts `beckon serve` on a loopback port (a free one unless `listen` says which) with a
 * fresh data directory (or `dataDir`, to restart a server on its data).
 * @param {{listen?: string, dataDir?: string, args?: string[]}} [options]
 * @returns {Promise<TestServer>}
 */
export async function startServer(options = {}) {
  const bin = serverBinary();
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'beckon-web-test-'));
  const child = spawn(
    bin,
    [
      'serve',
      '--listen', options.listen ?? '127.0.0.1:0',
      '--data-dir', dataDir,
      '--sdkappid', String(SDK_APP_ID),
      '--secret-key', SECRET_KEY,
      '--log-format', 'text',
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', NO_COLOR: '1' } },
  );
  children.add(child);
  let output = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { output += chunk; });
  child.stdout.setEncoding('utf8');
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  /** @param {{signal?: NodeJS.Signals, keepData?: boolean}} [how] */
  const stop = async (how = {}) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(how.signal ?? 'SIGKILL');
      // A graceful stop gets a few seconds, then it is killed.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    children.delete(child);
    if (!how.keepData) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const http = await new Promise((resolveAddr, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start within 20 s:\n${output}`)), 20000);
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const match = /beckon is serving on (http:\/\/\S+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolveAddr(match[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited with ${code} before serving:\n${output}`));
      });
    });
    return { http, ws: `${http.replace(/^http/, 'ws')}/ws`, dataDir, stop, output: () => output };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A TLSSigAPIv2 UserSig, as Tencent's server-side libraries mint it.
 * @param {string} userID
 * @param {{expire?: number, time?: number, key?: string, sdkAppID?: number}} [options]
 */
export function userSig(userID, options = {}) {
  const { expire = 86400, time = Math.floor(Date.now() / 1000), key = SECRET_KEY, sdkAppID = SDK_APP_ID } = options;
  const content = `TLS.identifier:${userID}\nTLS.sdkappid:${sdkAppID}\nTLS.time:${time}\nTLS.expire:${expire}\n`;
  const sig = createHmac('sha256', key).update(content).digest('base64');
  const doc = {
    'TLS.ver': '2.0',
    'TLS.identifier': userID,
    'TLS.sdkappid': sdkAppID,
    'TLS.expire': expire,
    'TLS.time': time,
    'TLS.sig': sig,
  };
  return deflateSync(Buffer.from(JSON.stringify(doc)))
    .toString('base64')
    .replace(/\+/g, '*')
    .replace(/\//g, '-')
    .replace(/=/g, '_');
}

/**
 * Creates accounts through the admin API (so that they can be invited before their first login).
 * @param {TestServer} server
 * @param {string[]} userIDs
 */
export async function importAccounts(server, userIDs) {
  const query = new URLSearchParams({
    sdkappid: String(SDK_APP_ID),
    identifier: 'administrator',
    usersig: userSig('administrator'),
    random: '1',
    contenttype: 'json',
  });
  const response = await fetch(`${server.http}/v4/im_open_login_svc/multiaccount_import?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ Accounts: userIDs }),
  });
  const body = await response.json();
  if (body.ErrorCode !== 0 || (body.FailAccounts ?? []).length > 0) {
    throw new Error(`account import failed: ${JSON.stringify(body)}`);
  }
}
