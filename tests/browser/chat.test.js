// Browser tests of the web client: two users in two browser contexts chat through a real node.
//
// One story, in steps that build on each other (node:test runs them in order): register and set
// up a workspace, chat live with pending → acknowledged sends, typing, a reaction, an edit and a
// thread reply; a dropped socket resumes and shows what was missed once, in order; a message sent
// while the node is down, and one whose ack was lost, are retried with their nonce and appear
// exactly once; badges, mentions, search, topic, direct messages; presence (online, idle,
// offline after logout or a closed browser, a custom status set by keyboard only, focus); leaving
// and archiving a channel; token refresh; history scroll-back loads older pages; a phone-sized
// layout; axe-core's WCAG checks; logout.
// Screenshots of the main views go to docs/screenshots/ (linked from the README) when
// CHORUS_UPDATE_SCREENSHOTS=1, to a scratch directory otherwise.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { ChorusNode, launchBrowser, screenshotPath, userPage } from './harness.js';

const WAIT = { timeout: 15_000 };
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
let node;
let browser;
let alice;
let bob;

before(async () => {
  node = await ChorusNode.start();
  browser = await launchBrowser();
  alice = await userPage(browser, node.url);
  bob = await userPage(browser, node.url);
});

after(async () => {
  await browser?.close();
  await node?.close();
});

/** The items of the open channel whose text is exactly `text`: sequenced ones (with a seq), or also pending ones. */
const messages = (page, text, selector = 'li.message[data-seq]') =>
  page.locator(`#message-list > ${selector}`).filter({ has: page.locator('.text', { hasText: new RegExp(`^${escape(text)}$`) }) });
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const shown = (page, text) => messages(page, text, 'li.message');

async function register(page, email, name) {
  await page.fill('#login-email', email);
  await page.fill('#login-password', 'correct horse battery');
  await page.fill('#login-name', name);
  await page.click('#register-button');
  await page.locator('#me-name', { hasText: name }).waitFor(WAIT);
}

async function send(page, text) {
  await page.fill('#composer-text', text);
  await page.press('#composer-text', 'Enter');
}

/** Waits until `text` is shown acknowledged (with a seq) exactly once. */
async function seenOnce(page, text) {
  await messages(page, text).first().waitFor(WAIT);
  assert.equal(await shown(page, text).count(), 1, `${text} shown once`);
  return Number(await messages(page, text).getAttribute('data-seq'));
}

test('two users register, share a workspace and a channel', async () => {
  await register(bob, 'bob@example.com', 'Bob');
  await register(alice, 'alice@example.com', 'Alice');

  await alice.locator('#channel-title', { hasText: 'Create a workspace' }).waitFor(WAIT);
  assert.equal(await alice.locator('#workspace-tools').evaluate((d) => d.open), true, 'tools open when there is no workspace');
  await alice.fill('#workspace-name', 'Acme');
  await alice.click('#workspace-form button');
  await alice.locator('#workspace-select option', { hasText: 'Acme' }).waitFor({ state: 'attached', ...WAIT });
  await alice.fill('#channel-name', 'general');
  await alice.click('#channel-form button');
  await alice.locator('#channel-title', { hasText: 'general' }).waitFor(WAIT);
  await alice.fill('#invite-email', 'bob@example.com');
  await alice.click('#invite-form button');
  await alice.locator('#sidebar-error', { hasText: 'Added bob@example.com' }).waitFor(WAIT);

  await bob.reload();
  await bob.locator('[data-join="general"]').click(WAIT);
  await bob.locator('#channel-title', { hasText: 'general' }).waitFor(WAIT);
  await bob.locator('#connection[data-state="online"]').waitFor(WAIT);
  await alice.locator('#connection[data-state="online"]').waitFor(WAIT);
});

test('messages, typing, reactions, edits and threads show up live in the other browser', async () => {
  await send(alice, 'hello Bob');
  const seq = await seenOnce(bob, 'hello Bob');
  assert.equal(await seenOnce(alice, 'hello Bob'), seq, 'same seq in both');
  assert.equal(await alice.locator('#message-list [data-state="pending"]').count(), 0, 'acknowledged, no longer pending');

  await bob.fill('#composer-text', 'typing something');
  await bob.type('#composer-text', '…');
  await alice.locator('#typing', { hasText: 'Bob is typing' }).waitFor(WAIT);
  await bob.press('#composer-text', 'Enter');
  await seenOnce(alice, 'typing something…');
  await alice.waitForFunction(() => document.getElementById('typing').textContent === '', null, WAIT);

  await messages(bob, 'hello Bob').getByRole('button', { name: /React 👍/ }).click();
  await messages(alice, 'hello Bob').locator('.reaction[data-emoji="👍"]', { hasText: '👍 1' }).waitFor(WAIT);

  await messages(alice, 'hello Bob').locator('button.edit').click();
  await alice.fill(`#edit-${seq}`, 'hello Bob, edited');
  await alice.click(`[data-seq="${seq}"] .edit-form button[type="submit"]`);
  await messages(bob, 'hello Bob, edited').locator('.meta', { hasText: '(edited)' }).waitFor(WAIT);

  await messages(bob, 'hello Bob, edited').locator('button.reply').click();
  await bob.locator('#side-panel').waitFor(WAIT);
  await bob.fill('#thread-text', 'a reply in the thread');
  await bob.press('#thread-text', 'Enter');
  await messages(alice, 'hello Bob, edited').locator('button.reply', { hasText: '1 reply' }).waitFor(WAIT);
  await bob.locator('#side-list .text', { hasText: 'a reply in the thread' }).waitFor(WAIT);
  assert.equal(await shown(alice, 'a reply in the thread').count(), 0, 'replies stay in the thread');

  await bob.screenshot({ path: screenshotPath('chat-thread.png') });
  await bob.click('#side-close');
  await alice.screenshot({ path: screenshotPath('chat.png') });
});

test('a dropped socket reconnects, resumes and shows every missed message once, in order', async () => {
  // Cut Bob's socket and keep him away: reconnect attempts go to a closed port until we let him back.
  await bob.evaluate(() => {
    const gw = window.chorus.gateway;
    window.realUrl = gw.url;
    gw.url = 'ws://127.0.0.1:9/ws';
    gw.drop();
  });
  await bob.locator('#connection[data-state="reconnecting"]').waitFor(WAIT);
  for (const text of ['missed one', 'missed two', 'missed three']) {
    await send(alice, text);
    await seenOnce(alice, text);
  }
  await bob.screenshot({ path: screenshotPath('reconnecting.png') });
  await bob.evaluate(() => {
    window.chorus.gateway.url = window.realUrl;
  });
  await bob.locator('#connection[data-state="online"]').waitFor({ timeout: 30_000 });
  const seqs = [];
  for (const text of ['missed one', 'missed two', 'missed three']) seqs.push(await seenOnce(bob, text));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
  const order = await bob.locator('#message-list > li.message .text').allTextContents();
  assert.deepEqual(order.slice(-3), ['missed one', 'missed two', 'missed three']);
});

test('a message sent while the node is down is retried with its nonce and appears exactly once', async () => {
  await node.stop();
  await alice.locator('#connection[data-state="reconnecting"]').waitFor(WAIT);
  await send(alice, 'sent while offline');
  await alice.locator('#message-list [data-state="pending"]', { hasText: 'sent while offline' }).waitFor(WAIT);
  await node.launch();
  await messages(alice, 'sent while offline').waitFor({ timeout: 30_000 });
  const seq = await seenOnce(alice, 'sent while offline');
  assert.equal(await seenOnce(bob, 'sent while offline'), seq);
  // A later message proves the stream moved on without a second copy arriving.
  await send(bob, 'after the restart');
  await seenOnce(alice, 'after the restart');
  await seenOnce(bob, 'after the restart');
  assert.equal(await shown(alice, 'sent while offline').count(), 1);
  assert.equal(await shown(bob, 'sent while offline').count(), 1);
  const bobTexts = await bob.locator('#message-list > li.message .text').allTextContents();
  const aliceTexts = await alice.locator('#message-list > li.message .text').allTextContents();
  assert.deepEqual(bobTexts, aliceTexts, 'both see the same messages in the same order');
});

test('a send whose ack was lost is sent again with its nonce and appears once', async () => {
  // The socket closes right after the send frame leaves: the node gets the message, the ack is lost.
  await alice.evaluate(() => {
    const gw = window.chorus.gateway;
    window.realUrl = gw.url;
    const ws = gw.ws;
    const sendFrame = ws.send.bind(ws);
    ws.send = (data) => {
      sendFrame(data);
      if (JSON.parse(data).type === 'send') {
        gw.url = 'ws://127.0.0.1:9/ws';
        ws.close(4000);
      }
    };
  });
  await send(alice, 'ack lost');
  const token = await alice.evaluate(() => window.chorus.api.token);
  const channel = await alice.evaluate(() => window.chorus.state.activeId);
  const stored = async () => (await node.call('GET', `/v1/channels/${channel}/messages?limit=20`, token)).messages.filter((m) => m.text === 'ack lost');
  for (let i = 0; i < 100 && (await stored()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await stored()).length, 1, 'the node has the message');
  await shown(alice, 'ack lost').and(alice.locator('[data-state="pending"]')).waitFor(WAIT);

  await alice.evaluate(() => {
    window.chorus.gateway.url = window.realUrl;
  });
  const seq = await seenOnce(alice, 'ack lost');
  assert.equal(await seenOnce(bob, 'ack lost'), seq);
  await send(bob, 'and then');
  await seenOnce(alice, 'and then');
  assert.equal(await shown(alice, 'ack lost').count(), 1);
  assert.equal((await stored()).length, 1, 'still one message on the node');
});

test('unread and mention badges, @mentions, search and the topic', async () => {
  await bob.fill('#channel-name', 'random');
  await bob.click('#channel-form button');
  await bob.locator('#channel-title', { hasText: 'random' }).waitFor(WAIT);

  await send(alice, 'are you there @Bob');
  await seenOnce(alice, 'are you there @Bob');
  const general = bob.locator('[data-channel="general"]');
  await bob.locator('[data-channel="general"][aria-label="general, 1 unread, 1 mention"]').waitFor(WAIT);
  await bob.screenshot({ path: screenshotPath('badges.png') });
  await general.click();
  await seenOnce(bob, 'are you there @Bob');
  assert.equal(await messages(bob, 'are you there @Bob').locator('.mention').textContent(), '@Bob');
  await bob.locator('[data-channel="general"][aria-label="general"]').waitFor(WAIT);

  await bob.fill('#search-input', 'missed');
  await bob.press('#search-input', 'Enter');
  await bob.locator('#side-title', { hasText: 'Search: missed' }).waitFor(WAIT);
  assert.equal(await bob.locator('#side-list .message').count(), 3);
  await bob.click('#side-close');

  await alice.click('#channel-tools summary');
  await alice.fill('#topic-input', 'Launch week');
  await alice.click('#topic-form button');
  await alice.locator('#channel-topic', { hasText: 'Launch week' }).waitFor(WAIT);
});

test('a direct message opened by one user reaches the other, then live', async () => {
  await bob.click('#workspace-tools summary');
  await bob.selectOption('#dm-select', { label: 'Alice' });
  await bob.click('#dm-form button');
  await bob.locator('#channel-title', { hasText: '@ Alice' }).waitFor(WAIT);
  await send(bob, 'psst');
  await seenOnce(bob, 'psst');
  await bob.click('#workspace-tools summary');

  // Alice's client learns of the new conversation when it refreshes its channel list (on focus).
  await alice.evaluate(() => window.dispatchEvent(new Event('focus')));
  await alice.locator('#channel-list button[aria-label="Bob, 1 unread"]').click(WAIT);
  await seenOnce(alice, 'psst');
  await send(bob, 'still there?');
  await seenOnce(alice, 'still there?');
  await alice.locator('[data-channel="general"]').click();
  await alice.locator('#channel-title', { hasText: 'general' }).waitFor(WAIT);
});

/** The people list's entry for `name`, optionally in one presence state. */
const person = (page, name, status) =>
  page.locator(`#people-list .person[data-user="${name}"]${status ? `[data-status="${status}"]` : ''}`);

/** What has the keyboard focus: an id, or a summary as "summary in #<its details>". */
const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return el.id || `${el.tagName.toLowerCase()} in #${el.parentElement?.id ?? ''}`;
});

test('who is here: online, idle and offline, a custom status set by keyboard, and focus', async () => {
  await bob.locator('[data-channel="general"]').click();
  await bob.locator('#channel-title', { hasText: 'general' }).waitFor(WAIT);
  await alice.locator('#people-heading', { hasText: 'People in #general' }).waitFor(WAIT);
  await person(alice, 'Bob', 'online').waitFor(WAIT);
  await person(bob, 'Alice', 'online').waitFor(WAIT);
  await bob.locator('#people-list .person', { hasText: 'Bob (you)' }).waitFor(WAIT);

  // Following belongs to the connection: after a dropped socket Alice's client follows again.
  await alice.evaluate(() => {
    window.droppedWs = window.chorus.gateway.ws;
    window.chorus.gateway.drop();
  });
  await alice.waitForFunction(() => window.chorus.gateway.ready && window.chorus.gateway.ws !== window.droppedWs, null, WAIT);

  // A hidden tab says `activity: idle`; the other browser sees it, then sees it come back.
  await bob.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await person(alice, 'Bob', 'idle').waitFor(WAIT);
  await bob.evaluate(() => {
    delete document.visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await person(alice, 'Bob', 'online').waitFor(WAIT);

  // Keyboard only: from "Log out", Tab reaches the status form and walks it in reading order.
  await bob.focus('#logout-button');
  await bob.keyboard.press('Tab');
  assert.equal(await focused(bob), 'summary in #status-tools');
  await bob.keyboard.press('Enter');
  assert.equal(await bob.locator('#status-tools').evaluate((d) => d.open), true, 'Enter opens the form');
  const order = [];
  for (let i = 0; i < 5; i++) {
    await bob.keyboard.press('Tab');
    order.push(await focused(bob));
  }
  assert.deepEqual(order, ['status-emoji', 'status-text', 'status-expiry', 'status-save', 'status-clear']);
  for (const [label, id] of [['Emoji', 'status-emoji'], ['Status', 'status-text'], ['Clear after', 'status-expiry']]) {
    assert.equal(await bob.getByLabel(label, { exact: true }).getAttribute('id'), id, `"${label}" labels #${id}`);
  }
  for (let i = 0; i < 4; i++) await bob.keyboard.press('Shift+Tab'); // back through Save, expiry, text
  assert.equal(await focused(bob), 'status-emoji');
  await bob.keyboard.type('📅');
  await bob.keyboard.press('Tab');
  await bob.keyboard.type('in a meeting');
  await bob.keyboard.press('Tab');
  await bob.keyboard.press('ArrowDown');
  await bob.keyboard.press('ArrowDown');
  assert.equal(await bob.locator('#status-expiry').inputValue(), '1h');
  await bob.keyboard.press('Tab');
  await bob.keyboard.press('Enter');
  await bob.locator('#me-status', { hasText: '📅 in a meeting' }).waitFor(WAIT);
  assert.equal(await focused(bob), 'summary in #status-tools', 'focus returns to the summary');
  assert.equal(await bob.locator('#status-tools').evaluate((d) => d.open), false);
  await person(alice, 'Bob').locator('.person-custom', { hasText: '📅 in a meeting' }).waitFor(WAIT);

  // The form opens with the status as it is; an empty one is refused, the reason read out.
  await bob.keyboard.press('Enter');
  assert.equal(await bob.inputValue('#status-emoji'), '📅');
  assert.equal(await bob.inputValue('#status-text'), 'in a meeting');
  await bob.fill('#status-emoji', '');
  await bob.fill('#status-text', ' ');
  await bob.press('#status-text', 'Enter');
  await bob.locator('#status-error', { hasText: 'Write a status or pick an emoji' }).waitFor(WAIT);
  await bob.keyboard.press('Escape');
  assert.equal(await bob.locator('#status-tools').evaluate((d) => d.open), false, 'Escape closes the form');
  assert.equal(await focused(bob), 'summary in #status-tools');

  // A focus session started elsewhere (another device, over REST) shows, and goes when it ends.
  const bobToken = await bob.evaluate(() => window.chorus.api.token);
  await node.call('POST', '/v1/users/me/focus', bobToken, { duration_minutes: 30 });
  await person(alice, 'Bob').locator('.person-focus', { hasText: /^focusing until / }).waitFor(WAIT);
  if (await alice.locator('#workspace-tools').evaluate((d) => d.open)) await alice.click('#workspace-tools summary');
  await alice.screenshot({ path: screenshotPath('presence.png') });
  await node.call('DELETE', '/v1/users/me/focus', bobToken);
  await person(alice, 'Bob').locator('.person-focus').waitFor({ state: 'detached', ...WAIT });

  // Logging out takes Bob offline for Alice; logging in brings him back, his status kept.
  await bob.click('#logout-button');
  await bob.locator('#login-form').waitFor(WAIT);
  await person(alice, 'Bob', 'offline').locator('.person-status', { hasText: /offline, last seen/ }).waitFor(WAIT);
  await bob.fill('#login-email', 'bob@example.com');
  await bob.fill('#login-password', 'correct horse battery');
  await bob.click('#login-button');
  await bob.locator('#me-status', { hasText: '📅 in a meeting' }).waitFor(WAIT);
  await person(alice, 'Bob', 'online').locator('.person-custom', { hasText: '📅 in a meeting' }).waitFor(WAIT);
  await bob.click('#status-tools summary');
  await bob.click('#status-clear');
  await person(alice, 'Bob').locator('.person-custom').waitFor({ state: 'detached', ...WAIT });
  assert.equal(await bob.locator('#me-status').textContent(), '');

  // A newcomer who speaks joins the list; closing their browser takes them offline.
  const dana = await userPage(browser, node.url);
  await register(dana, 'dana@example.com', 'Dana');
  const aliceToken = await alice.evaluate(() => window.chorus.api.token);
  const workspace = await alice.evaluate(() => window.chorus.state.workspaceId);
  await node.call('POST', `/v1/workspaces/${workspace}/members`, aliceToken, { email: 'dana@example.com' });
  await dana.reload();
  await dana.locator('[data-join="general"]').click(WAIT);
  await dana.locator('#connection[data-state="online"]').waitFor(WAIT);
  await send(dana, 'hello from Dana');
  await seenOnce(alice, 'hello from Dana');
  await person(alice, 'Dana', 'online').waitFor(WAIT);
  await dana.context().close();
  await person(alice, 'Dana', 'offline').waitFor(WAIT);
  await bob.locator('[data-channel="general"]').click(WAIT);
  await bob.locator('#channel-title', { hasText: 'general' }).waitFor(WAIT);
});

test('a member leaves a channel, and its creator archives it', async () => {
  await alice.fill('#channel-name', 'retired');
  await alice.click('#channel-form button');
  await alice.locator('#channel-title', { hasText: 'retired' }).waitFor(WAIT);
  const channel = await alice.evaluate(() => window.chorus.state.activeId);
  const token = await alice.evaluate(() => window.chorus.api.token);
  await bob.evaluate(() => window.dispatchEvent(new Event('focus')));
  await bob.locator('[data-join="retired"]').click(WAIT);
  await bob.locator('#channel-title', { hasText: 'retired' }).waitFor(WAIT);
  await send(bob, 'leaving soon');
  await seenOnce(alice, 'leaving soon');

  await bob.click('#channel-tools summary');
  await bob.click('#leave-button');
  await bob.locator('#browse-list [data-join="retired"]').waitFor(WAIT);
  assert.equal(await bob.locator('#channel-list [data-channel="retired"]').count(), 0, 'no longer among his channels');
  assert.doesNotMatch(await bob.locator('#channel-title').textContent(), /retired/);
  const bobId = await bob.evaluate(() => window.chorus.api.user.id);
  const members = await node.call('GET', `/v1/channels/${channel}/members`, token);
  assert.equal(members.some((m) => m.user_id === bobId), false, 'the node agrees he left');

  await alice.click('#channel-tools summary');
  await alice.click('#archive-button');
  await alice.locator('#channel-list [data-channel="retired"]').waitFor({ state: 'detached', ...WAIT });
  assert.doesNotMatch(await alice.locator('#channel-title').textContent(), /retired/);
  assert.equal(await alice.locator('#browse-list [data-join="retired"]').count(), 0, 'not offered to join either');
  await assert.rejects(node.call('POST', `/v1/channels/${channel}/messages`, token, { text: 'too late' }), /403/);
  // Bob's list catches up on its next refresh: nothing left to join.
  await bob.evaluate(() => window.dispatchEvent(new Event('focus')));
  await bob.locator('#browse-list [data-join="retired"]').waitFor({ state: 'detached', ...WAIT });
  await alice.locator('[data-channel="general"]').click();
  await alice.locator('#channel-title', { hasText: 'general' }).waitFor(WAIT);
});

test('the access token is refreshed before it expires, and the new one is used', async () => {
  const before = await alice.evaluate(() => window.chorus.api.token);
  // Pretend the token expires in just over the one-minute margin: the refresh is due in a moment.
  await alice.evaluate(() => {
    const api = window.chorus.api;
    api.session.expires_at = Date.now() + 60_500;
    api.schedule();
  });
  await alice.waitForFunction((old) => window.chorus.api.token !== old, before, WAIT);
  const after = await alice.evaluate(() => window.chorus.api.token);
  const me = await node.call('GET', '/v1/users/me', after);
  assert.equal(me.display_name, 'Alice');
  const stored = await alice.evaluate(() => JSON.parse(localStorage.getItem('chorus.session')).access_token);
  assert.equal(stored, after, 'kept for the next page load');
});

test('scrolling up loads older pages of history until the beginning', async () => {
  const token = await alice.evaluate(() => window.chorus.api.token);
  const workspace = await alice.evaluate(() => window.chorus.state.workspaceId);
  const channel = await node.call('POST', `/v1/workspaces/${workspace}/channels`, token, { name: 'history' });
  for (let i = 1; i <= 120; i++) {
    await node.call('POST', `/v1/channels/${channel.id}/messages`, token, { text: `old ${i}` });
  }
  await alice.reload();
  await alice.locator('[data-channel="history"]').click(WAIT);
  await seenOnce(alice, 'old 120');
  assert.equal(await messages(alice, 'old 1').count(), 0, 'only the newest page at first');
  for (let pages = 0; pages < 5 && (await messages(alice, 'old 1').count()) === 0; pages++) {
    const before = await alice.locator('#message-list > li.message').count();
    await alice.locator('#messages').evaluate((el) => {
      el.scrollTop = 0;
      el.dispatchEvent(new Event('scroll'));
    });
    await alice.waitForFunction((n) => document.querySelectorAll('#message-list > li.message').length > n, before, WAIT);
  }
  await seenOnce(alice, 'old 1');
  await alice.locator('#history-status', { hasText: 'beginning of #history' }).waitFor(WAIT);
  const texts = await alice.locator('#message-list > li.message .text').allTextContents();
  assert.deepEqual(texts, Array.from({ length: 120 }, (_, i) => `old ${i + 1}`), 'every message once, in order');
});

test('on a phone-sized screen the channel list is a drawer', async () => {
  const phone = await userPage(browser, node.url, { width: 390, height: 844 });
  await phone.fill('#login-email', 'bob@example.com');
  await phone.fill('#login-password', 'correct horse battery');
  await phone.click('#login-button');
  await phone.locator('#message-list > li.message').first().waitFor(WAIT);
  assert.equal(await phone.locator('#sidebar').isVisible(), false);
  await phone.click('#menu-button');
  await phone.click('[data-channel="general"]');
  await phone.locator('#channel-title', { hasText: 'general' }).waitFor(WAIT);
  assert.equal(await phone.locator('#sidebar').isVisible(), false, 'picking a channel closes the drawer');
  await seenOnce(phone, 'after the restart');
  await phone.screenshot({ path: screenshotPath('phone.png') });
  await phone.click('#menu-button');
  await phone.screenshot({ path: screenshotPath('phone-channels.png') });
  await phone.context().close();
});

/** axe-core's accessibility rules (WCAG 2 A and AA: labels, names, contrast…) on the page as it is now. */
async function accessibilityViolations(page) {
  // Evaluated over the DevTools protocol: the page's CSP rightly refuses injected script tags.
  await page.evaluate(readFileSync(AXE, 'utf8'));
  const results = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
  return results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

test('the login form and the chat view pass the WCAG 2 A/AA checks of axe-core', async () => {
  assert.deepEqual(await accessibilityViolations(bob), []);
  await bob.click('#status-tools summary');
  assert.deepEqual(await accessibilityViolations(bob), [], 'with the status form open');
  await bob.click('#status-tools summary');
  const visitor = await userPage(browser, node.url);
  await visitor.locator('#login-email').waitFor(WAIT);
  assert.deepEqual(await accessibilityViolations(visitor), []);
  await visitor.context().close();
});

test('someone without an account is invited by e-mail and joins through the link', async () => {
  if (!(await alice.locator('#workspace-tools').evaluate((d) => d.open))) await alice.click('#workspace-tools summary');
  await alice.fill('#invite-email', 'carol@example.com');
  await alice.click('#invite-form button');
  await alice.locator('#invite-result').waitFor(WAIT);
  const link = await alice.locator('#invite-link').inputValue();
  assert.match(link, /#invite=/);

  const carol = await userPage(browser, link);
  await register(carol, 'carol@example.com', 'Carol');
  await carol.locator('#workspace-select option', { hasText: 'Acme' }).waitFor({ state: 'attached', ...WAIT });
  await carol.locator('[data-join="general"]').click(WAIT);
  await seenOnce(carol, 'after the restart');
  await carol.context().close();
});

test('logging out revokes the session and shows the login form', async () => {
  const token = await alice.evaluate(() => window.chorus.api.token);
  await alice.click('#logout-button');
  await alice.locator('#login-form').waitFor(WAIT);
  assert.equal(await alice.evaluate(() => localStorage.getItem('chorus.session')), null);
  await assert.rejects(node.call('GET', '/v1/users/me', token), /401/);
  await alice.reload();
  await alice.locator('#login-form').waitFor(WAIT);
});

test('no script errors in either page', () => {
  assert.deepEqual([...alice.errors, ...bob.errors].map(String), []);
});
