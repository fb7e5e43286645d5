// Test support: recording what a chat instance emits and waiting for it with bounded timeouts.

import BeckonChat from '../src/index.js';

const { TSignaling, EVENT } = BeckonChat;

/** @type {import('../index.js').SignalingEventName[]} */
export const SIGNALING_NAMES = [
  TSignaling.NEW_INVITATION_RECEIVED,
  TSignaling.INVITEE_ACCEPTED,
  TSignaling.INVITEE_REJECTED,
  TSignaling.INVITATION_CANCELLED,
  TSignaling.INVITATION_TIMEOUT,
  TSignaling.INVITATION_MODIFIED,
];

/** @type {import('../index.js').SdkEventName[]} */
export const SDK_NAMES = Object.values(EVENT);

/**
 * @typedef {{name: string, data: any}} Event
 */

/**
 * Records every signaling and SDK event of `chat`, in order.
 * @param {import('../src/chat.js').Chat} chat
 */
export function record(chat) {
  /** @type {Event[]} */
  const events = [];
  /** @type {{match: (e: Event) => boolean, resolve: (e: Event) => void}[]} */
  let waiters = [];
  let consumed = 0;
  /** @param {Event} event */
  const push = (event) => {
    events.push(event);
    for (const waiter of [...waiters]) {
      if (waiter.match(event)) {
        waiters = waiters.filter((w) => w !== waiter);
        waiter.resolve(event);
        return;
      }
    }
  };
  for (const name of SIGNALING_NAMES) chat.addSignalingListener(name, push);
  for (const name of SDK_NAMES) chat.on(name, push);
  return {
    events,
    /**
     * The first event from the cursor on with this name (and matching `where`), waiting up
     * to `ms` for it; events before it are skipped, the cursor moves past it.
     * @param {string} name
     * @param {(data: any) => boolean} [where]
     * @param {number} [ms]
     * @returns {Promise<Event>}
     */
    next(name, where = () => true, ms = 5000) {
      /** @param {Event} e */
      const match = (e) => e.name === name && where(e.data);
      for (let i = consumed; i < events.length; i += 1) {
        if (match(events[i])) {
          consumed = i + 1;
          return Promise.resolve(events[i]);
        }
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter);
          reject(new Error(`no ${name} event within ${ms} ms; got ${JSON.stringify(events.slice(consumed).map((e) => e.name))}`));
        }, ms);
        const waiter = {
          match,
          /** @param {Event} e */
          resolve: (e) => {
            clearTimeout(timer);
            consumed = events.indexOf(e) + 1;
            resolve(e);
          },
        };
        waiters.push(waiter);
      });
    },
    /** Events with these names, from the start. @param {string[]} names */
    named(...names) {
      return events.filter((e) => names.includes(e.name));
    },
    /** Signaling events about one invitation. @param {string} inviteID */
    about(inviteID) {
      return events.filter((e) => /** @type {string[]} */ (SIGNALING_NAMES).includes(e.name) && e.data && e.data.inviteID === inviteID);
    },
  };
}

/**
 * Waits for `promise` up to `ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
export function within(promise, ms, what) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
