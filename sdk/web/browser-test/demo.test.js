// The demo page (served by `beckon serve` at /) in headless Chromium: two users on two pages
// call each other through the real server. Screenshots of each key state go to
// browser-test/artifacts/.
//
//   npm run test:browser          (needs target/debug/beckon, or cargo to build it, and Chromium)

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAIT,
  callFromPeople,
  checkEmbeddedFiles,
  expectCallState,
  expectLogEntry,
  expectMainView,
  expectNoCall,
  holdLoginAnswers,
  launchBrowser,
  mintUserSig,
  openPage,
  reportFailure,
  shot,
  signedIn,
  startServer,
  text,
} from './helpers.js';

/** @type {import('playwright-core').Browser} */
let browser;
/** Names of the tests that got to their end (the others leave a failure report). */
const passed = new Set();

before(async () => {
  const server = await startServer();
  try {
    await checkEmbeddedFiles(server.url);
  } finally {
    await server.stop();
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/**
 * A fresh server and the given users signed in, each on its own browser context; everything
 * is closed and the server killed when the test ends, whatever happens.
 * @param {import('node:test').TestContext} t
 * @param {string[]} users
 * @param {Record<string, (context: import('playwright-core').BrowserContext) => Promise<void>>} [prepare]
 *   per user, run on the context before its page opens
 */
async function setup(t, users, prepare = {}) {
  const server = await startServer();
  /** @type {{context: import('playwright-core').BrowserContext, problems: string[]}[]} */
  const opened = [];
  t.after(async () => {
    if (!passed.has(t.name)) await reportFailure(t.name, opened.map((o) => o.context), server.output());
    for (const { context } of opened) await context.close().catch(() => {});
    await server.stop();
  });
  /** @type {Record<string, Awaited<ReturnType<typeof signedIn>>>} */
  const pages = {};
  for (const user of users) {
    pages[user] = await signedIn(browser, server.url, user, {}, opened, prepare[user]);
  }
  const noProblems = () => {
    for (const { problems } of opened) assert.deepEqual(problems, []);
    passed.add(t.name);
  };
  return { server, pages, opened, noProblems };
}

describe('demo page', { timeout: 90_000 }, () => {
  test('sign in, see who to call; invite, ring, accept, hang up; the call log says so', async (t) => {
    const { server, pages, opened, noProblems } = await setup(t, ['alice', 'bob']);
    const alice = pages.alice.page;
    const bob = pages.bob.page;

    // A newcomer's sign-in page offers the accounts already on the server.
    const visitor = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const { page: welcome, problems } = await openPage(visitor);
    opened.push({ context: visitor, problems });
    await welcome.goto(server.url);
    await welcome.locator('[data-testid=login-suggestions] [data-user=bob]').waitFor({ timeout: WAIT });
    await shot(welcome, 'accept-0-sign-in');

    await bob.getByTestId('people-refresh').click();
    await bob.locator('[data-testid=person][data-user=alice]').waitFor({ timeout: WAIT });
    await shot(bob, 'accept-0-bob-home');

    await callFromPeople(alice, 'bob');
    await expectCallState(alice, 'outgoing');
    assert.equal(await text(alice, 'call-title'), 'bob');

    await expectCallState(bob, 'incoming');
    assert.equal(await text(bob, 'call-title'), 'alice');
    assert.match(await text(bob, 'call-status'), /calling you/);
    await bob.getByTestId('call-countdown').waitFor({ state: 'visible', timeout: WAIT });
    await shot(alice, 'accept-1-alice-calling');
    await shot(bob, 'accept-2-bob-ringing');

    await bob.getByTestId('call-accept').click();
    await expectCallState(bob, 'active');
    await expectCallState(alice, 'active');
    assert.equal(await alice.getByTestId('call-countdown').isVisible(), false);
    await shot(alice, 'accept-3-alice-in-call');
    await shot(bob, 'accept-4-bob-in-call');

    await alice.getByTestId('call-hangup').click();
    await expectNoCall(alice);
    await expectLogEntry(alice, 'You called bob', 'Answered');
    await bob.getByTestId('call-hangup').click();
    await expectNoCall(bob);
    await expectLogEntry(bob, 'Call from alice', 'Answered');
    await shot(alice, 'accept-5-alice-call-log');
    await bob.setViewportSize({ width: 390, height: 780 });
    await shot(bob, 'accept-6-bob-phone-layout');
    noProblems();
  });

  test('reject: the caller sees "declined"; both logs agree', async (t) => {
    const { pages, noProblems } = await setup(t, ['alice', 'bob']);
    const alice = pages.alice.page;
    const bob = pages.bob.page;

    await callFromPeople(alice, 'bob');
    await expectCallState(bob, 'incoming');
    await bob.getByTestId('call-reject').click();

    await expectCallState(alice, 'ended', 'declined');
    assert.equal(await text(alice, 'call-status'), 'bob declined');
    await shot(alice, 'reject-1-alice-declined');
    await expectNoCall(bob);
    await expectLogEntry(bob, 'Call from alice', 'Declined');
    await shot(bob, 'reject-2-bob-log');

    await alice.getByTestId('call-dismiss').click();
    await expectNoCall(alice);
    await expectLogEntry(alice, 'You called bob', 'Declined');
    noProblems();
  });

  test('cancel while ringing: the callee stops ringing and has a missed call', async (t) => {
    const { pages, noProblems } = await setup(t, ['alice', 'bob']);
    const alice = pages.alice.page;
    const bob = pages.bob.page;

    await callFromPeople(alice, 'bob');
    await expectCallState(bob, 'incoming');
    await expectCallState(alice, 'outgoing');
    await alice.locator('[data-testid=call-cancel]:not([disabled])').waitFor({ timeout: WAIT });
    await alice.getByTestId('call-cancel').click();

    await expectNoCall(alice);
    await expectCallState(bob, 'ended', 'cancelled');
    assert.equal(await text(bob, 'call-status'), 'alice hung up');
    await shot(bob, 'cancel-1-bob-caller-hung-up');
    await expectLogEntry(bob, 'Missed call from alice', 'Caller hung up');
    await expectLogEntry(alice, 'You called bob', 'Cancelled');
    await bob.getByTestId('call-dismiss').click();
    await expectNoCall(bob);
    await shot(bob, 'cancel-2-bob-missed-call-log');
    noProblems();
  });

  test('timeout: both sides count down to the server deadline, then time out', async (t) => {
    // Bob's login answer reaches his page late, so the clock offset it measures puts the
    // server's deadline late on his clock: the countdown must still not show more than was set.
    const { pages, noProblems } = await setup(t, ['alice', 'bob'], {
      bob: (context) => holdLoginAnswers(context, 1500),
    });
    const alice = pages.alice.page;
    const bob = pages.bob.page;

    // Record every value the countdown shows, on both pages.
    for (const page of [alice, bob]) {
      await page.evaluate(() => {
        const seen = { text: /** @type {string[]} */ ([]), ms: /** @type {number[]} */ ([]) };
        /** @type {any} */ (window).__countdown = seen;
        const box = /** @type {HTMLElement} */ (document.querySelector('[data-testid=call-countdown]'));
        const record = () => {
          if (box.hidden) return;
          const value = box.querySelector('b')?.textContent;
          if (value && seen.text[seen.text.length - 1] !== value) seen.text.push(value);
          const ms = Number(box.dataset.remainingMs);
          if (box.dataset.remainingMs && seen.ms[seen.ms.length - 1] !== ms) seen.ms.push(ms);
        };
        new MutationObserver(record).observe(box, { attributes: true, childList: true, subtree: true, characterData: true });
      });
    }

    await alice.getByTestId('ring-timeout').fill('2');
    await callFromPeople(alice, 'bob');
    await expectCallState(bob, 'incoming');
    await bob.getByTestId('call-countdown').waitFor({ state: 'visible', timeout: WAIT });
    await shot(bob, 'timeout-1-bob-countdown');
    await shot(alice, 'timeout-2-alice-countdown');

    await expectCallState(bob, 'ended', 'missed', 6000);
    await expectCallState(alice, 'ended', 'no-answer', 6000);
    assert.equal(await text(alice, 'call-status'), 'bob didn’t answer');
    await shot(bob, 'timeout-3-bob-missed');
    await shot(alice, 'timeout-4-alice-no-answer');

    for (const [name, page] of [['alice', alice], ['bob', bob]]) {
      const seen = await /** @type {import('playwright-core').Page} */ (page).evaluate(() => /** @type {any} */ (window).__countdown);
      const shown = JSON.stringify(seen.text);
      const seconds = seen.text.map((/** @type {string} */ value) => {
        const [m, s] = value.split(':').map(Number);
        return m * 60 + s;
      });
      // What it showed: whole seconds from at most 0:02, going down (normally 0:02, 0:01).
      assert.ok(seconds.length >= 1 && seconds[0] <= 2, `${name}'s countdown showed ${shown}`);
      for (let i = 1; i < seconds.length; i += 1) {
        assert.ok(seconds[i] < seconds[i - 1], `${name}'s countdown did not go down: ${shown}`);
      }
      // And it ran: the time left, sampled a few times a second, kept falling.
      assert.ok(seen.ms.length >= 3, `${name}'s countdown barely ran: ${JSON.stringify(seen.ms)} ms`);
      for (let i = 1; i < seen.ms.length; i += 1) {
        assert.ok(seen.ms[i] < seen.ms[i - 1], `${name}'s time left did not fall: ${JSON.stringify(seen.ms)}`);
      }
      if (name === 'bob') assert.ok(seconds.length >= 2 || seen.ms[0] < 1500, `bob's countdown showed only ${shown}`);
    }

    await expectLogEntry(bob, 'Missed call from alice', 'Not answered');
    await expectLogEntry(alice, 'You called bob', 'No answer');
    noProblems();
  });

  test('a second tab of the callee stops ringing: "answered on another device"', async (t) => {
    const { pages, opened, noProblems } = await setup(t, ['alice', 'bob']);
    const alice = pages.alice.page;
    const bob = pages.bob.page;
    // The same browser profile, a second tab: it signs in as bob by itself (remembered).
    const second = await openPage(pages.bob.context);
    opened.push({ context: pages.bob.context, problems: second.problems });
    const bob2 = second.page;
    await bob2.setViewportSize({ width: 390, height: 780 });
    await bob2.goto(await bob.evaluate(() => location.origin + '/'));
    await expectMainView(bob2, 'bob');

    await callFromPeople(alice, 'bob');
    await expectCallState(bob, 'incoming');
    await expectCallState(bob2, 'incoming');
    await shot(bob2, 'other-device-1-second-tab-ringing');

    await bob.getByTestId('call-accept').click();
    await expectCallState(bob, 'active');
    await expectCallState(alice, 'active');
    await expectCallState(bob2, 'ended', 'answered-elsewhere');
    assert.equal(await text(bob2, 'call-status'), 'Answered on another device');
    await shot(bob2, 'other-device-2-second-tab-answered-elsewhere');
    await expectLogEntry(bob2, 'Call from alice', 'Answered');
    noProblems();
  });

  test('a call made while the callee was away rings when they sign in, with the time left', async (t) => {
    const { pages, noProblems } = await setup(t, ['bob', 'alice']);
    const alice = pages.alice.page;
    const bob = pages.bob.page;

    await bob.getByTestId('logout').click();
    await bob.getByTestId('login-view').waitFor({ state: 'visible', timeout: WAIT });

    await alice.getByTestId('dial-input').fill('bob');
    await alice.getByTestId('dial-submit').click();
    await expectCallState(alice, 'outgoing');
    await alice.locator('[data-testid=call-cancel]:not([disabled])').waitFor({ timeout: WAIT });

    await bob.getByTestId('login-user').fill('bob');
    await bob.getByTestId('login-submit').click();
    await expectCallState(bob, 'incoming');
    assert.equal(await text(bob, 'call-title'), 'alice');
    await bob.getByTestId('call-countdown').waitFor({ state: 'visible', timeout: WAIT });
    const left = Number(await bob.getByTestId('call-countdown').getAttribute('data-seconds'));
    assert.ok(left > 20 && left <= 30, `the replayed invitation shows ${left} s left of 30`);
    await shot(bob, 'replay-1-bob-signed-in-to-a-ringing-call');

    await bob.getByTestId('call-accept').click();
    await expectCallState(alice, 'active');
    await expectCallState(bob, 'active');
    noProblems();
  });

  test('call waiting: a second caller shows on the call screen and can be taken', async (t) => {
    const { pages, noProblems } = await setup(t, ['alice', 'bob', 'carol']);
    const alice = pages.alice.page;
    const bob = pages.bob.page;
    const carol = pages.carol.page;

    await callFromPeople(bob, 'alice');
    await expectCallState(alice, 'incoming');
    await alice.getByTestId('call-accept').click();
    await expectCallState(alice, 'active');
    await expectCallState(bob, 'active');

    await callFromPeople(carol, 'alice');
    await expectCallState(carol, 'outgoing');
    const waiting = alice.getByTestId('waiting-call');
    await waiting.waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await waiting.innerText(), /carol/);
    await expectCallState(alice, 'active');
    await shot(alice, 'waiting-1-alice-second-caller');

    await waiting.locator('[data-waiting=accept]').click();
    await expectCallState(carol, 'active');
    await expectCallState(alice, 'active');
    assert.equal(await text(alice, 'call-title'), 'carol');
    await waiting.waitFor({ state: 'detached', timeout: WAIT });
    noProblems();
  });

  test('group call: make a group, ring two members; one joins, one declines', async (t) => {
    const { pages, noProblems } = await setup(t, ['carol', 'dave', 'alice']);
    const alice = pages.alice.page;
    const carol = pages.carol.page;
    const dave = pages.dave.page;

    await alice.getByTestId('people-refresh').click();
    await alice.locator('[data-testid=person][data-user=dave]').waitFor({ timeout: WAIT });
    await alice.getByTestId('new-group').click();
    await alice.getByTestId('group-name').fill('Design team');
    await alice.locator('[data-testid=group-member-option][data-user=carol] input').check();
    await alice.locator('[data-testid=group-member-option][data-user=dave] input').check();
    await shot(alice, 'group-1-new-group');
    await alice.getByTestId('group-create').click();
    const group = alice.locator('[data-testid=group-item]', { hasText: 'Design team' });
    await group.waitFor({ timeout: WAIT });

    await group.getByTestId('group-call').click();
    await alice.locator('[data-testid=group-call-member]').nth(1).waitFor({ timeout: WAIT });
    assert.equal(await alice.locator('[data-testid=group-call-member] input:checked').count(), 2);
    await shot(alice, 'group-2-pick-members');
    await alice.getByTestId('group-call-start').click();

    await expectCallState(alice, 'outgoing');
    await expectCallState(carol, 'incoming');
    await expectCallState(dave, 'incoming');
    assert.equal(await text(carol, 'call-title'), 'Design team');
    assert.match(await text(carol, 'call-status'), /alice is calling the group/);
    await shot(carol, 'group-3-carol-ringing');

    await carol.getByTestId('call-accept').click();
    await expectCallState(alice, 'active');
    await dave.getByTestId('call-reject').click();
    await alice.locator('[data-testid=call-participant][data-user=dave][data-state=rejected]').waitFor({ timeout: WAIT });
    await alice.locator('[data-testid=call-participant][data-user=carol][data-state=accepted]').waitFor({ timeout: WAIT });
    await carol.locator('[data-testid=call-participant][data-user=dave][data-state=rejected]').waitFor({ timeout: WAIT });
    await shot(alice, 'group-4-alice-in-group-call');

    await alice.getByTestId('call-hangup').click();
    await expectNoCall(alice);
    await expectLogEntry(alice, 'You called Design team', '1 of 2 answered');
    await expectLogEntry(dave, 'Group call from alice', 'Declined');
    await shot(alice, 'group-5-alice-log');
    noProblems();
  });

  test('without dev mode the page asks for SDKAppID and UserSig, and signs in with them', async (t) => {
    const server = await startServer({ dev: false });
    const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    t.after(async () => {
      await context.close().catch(() => {});
      await server.stop();
    });
    const { page, problems } = await openPage(context);
    await page.goto(server.url);
    await page.getByTestId('manual-login-form').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(await page.getByTestId('login-form').isVisible(), false);
    await shot(page, 'manual-1-sign-in-form');

    await page.getByTestId('manual-userid').fill('erin');
    await page.getByTestId('manual-sdkappid').fill(String(server.sdkAppID));
    await page.getByTestId('manual-usersig').fill('not-a-valid-sig');
    await page.getByTestId('manual-submit').click();
    await page.getByTestId('login-error').waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await text(page, 'login-error'), /Couldn’t sign in/);

    await page.getByTestId('manual-usersig').fill(mintUserSig(server.dataDir, 'erin'));
    await page.getByTestId('manual-submit').click();
    await expectMainView(page, 'erin');
    await page.getByTestId('people-empty').waitFor({ timeout: WAIT });
    await shot(page, 'manual-2-signed-in');
    assert.deepEqual(problems, []);
  });
});
