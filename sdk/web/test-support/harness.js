// Test support: one server per test file, and logged-in chat instances that are logged out at
// the end whatever happens.

import { after, before } from 'node:test';
import BeckonChat from '../src/index.js';
import { record } from './events.js';
import { SDK_APP_ID, startServer, userSig } from './server.js';

/**
 * Starts a server before the file's tests and stops it (and logs out every chat) after them.
 */
export function useServer() {
  const ctx = {
    /** @type {import('./server.js').TestServer | null} */
    server: null,
    /** @type {import('../src/chat.js').Chat[]} */
    chats: [],
    /** The server, once started. */
    get srv() {
      if (!ctx.server) throw new Error('the server is not started');
      return ctx.server;
    },
    /**
     * A chat instance (not logged in) whose events are recorded from the start.
     * @param {Partial<import('../src/chat.js').ChatOptions>} [options]
     */
    chat(options = {}) {
      const chat = BeckonChat.create({ SDKAppID: SDK_APP_ID, server: ctx.srv.http, ...options });
      ctx.chats.push(chat);
      return { chat, rec: record(chat) };
    },
    /**
     * A chat instance logged in as `userID`, after SDK_READY.
     * @param {string} userID
     * @param {Partial<import('../src/chat.js').ChatOptions>} [options]
     */
    async connect(userID, options = {}) {
      const { chat, rec } = ctx.chat(options);
      await chat.login({ userID, userSig: userSig(userID) });
      await rec.next(BeckonChat.EVENT.SDK_READY);
      return { chat, rec };
    },
  };
  before(async () => {
    ctx.server = await startServer();
  });
  after(async () => {
    await Promise.all(ctx.chats.map((chat) => chat.destroy().catch(() => {})));
    await ctx.server?.stop();
  });
  return ctx;
}

let counter = 0;
/**
 * A userID not used before in this process.
 * @param {string} base
 */
export function uid(base) {
  counter += 1;
  return `${base}-${process.pid}-${counter}`;
}
