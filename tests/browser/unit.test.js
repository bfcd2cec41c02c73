// Unit tests of the web client's pure modules (no browser needed): the reconnect schedule, the
// timeline's exactly-once merging of history, live events, replays and our own sends, and the
// presence decisions (whom to follow, how a presence reads at a given time, idle, status bodies).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, closeAction } from '../../web/js/backoff.js';
import { activityState, describe, expiryFor, followList, nextChange, statusRequest } from '../../web/js/presence.js';
import { Timeline } from '../../web/js/timeline.js';

test('backoff grows, is capped, and is jittered within its window', () => {
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(3, () => 1), 4000);
  assert.equal(backoffDelay(30, () => 1), 10000);
  assert.equal(backoffDelay(3, () => 0), 400);
  // The cap holds at every attempt, however long the outage, and never falls below a tenth.
  for (let attempt = 0; attempt < 100; attempt++) {
    const ceiling = Math.min(10000, 500 * 2 ** attempt);
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      const delay = backoffDelay(attempt, () => r);
      assert.ok(delay <= 10000, `attempt ${attempt}: ${delay} ms is over the cap`);
      assert.ok(delay >= Math.round(ceiling * 0.1), `attempt ${attempt}: ${delay} ms is under the floor`);
    }
  }
  // Jitter: the same attempt spreads over its window with the random draw, capped or not.
  for (const attempt of [2, 40]) {
    const spread = [0, 0.2, 0.4, 0.6, 0.8, 1].map((r) => backoffDelay(attempt, () => r));
    assert.deepEqual(spread, [...spread].sort((a, b) => a - b));
    assert.equal(new Set(spread).size, spread.length, `attempt ${attempt} is jittered`);
  }
  assert.deepEqual([0, 1].map((r) => backoffDelay(40, () => r)), [1000, 10000]);
});

test('close codes map to what the protocol asks', () => {
  assert.equal(closeAction(1006), 'resume');
  assert.equal(closeAction(4003), 'resume');
  assert.equal(closeAction(4005), 'identify');
  assert.equal(closeAction(4100), 'refresh');
  assert.equal(closeAction(4101), 'stop');
});

const event = (seq, extra = {}) => ({
  channel_id: 'c', seq, id: `id${seq}`, author_id: 'u1', text: `m${seq}`, created_at: '2026-01-01T00:00:00.000Z', nonce: `n${seq}`, ...extra,
});

test('a replayed event shows once, and changes apply in seq order only', () => {
  const t = new Timeline();
  assert.equal(t.applyEvent(event(1)), true);
  assert.equal(t.applyEvent(event(1)), false);
  t.applyEvent(event(2, { kind: 'edit', target_seq: 1, text: 'edited' }));
  t.applyEvent(event(3, { kind: 'reaction_add', target_seq: 1, emoji: '👍', author_id: 'u2' }));
  t.applyEvent(event(3, { kind: 'reaction_add', target_seq: 1, emoji: '👍', author_id: 'u2' }));
  assert.deepEqual(t.topLevel().map((m) => [m.seq, m.text, m.edited]), [[1, 'edited', true]]);
  assert.deepEqual(t.messages.get(1).reactions.get('👍'), ['u2']);
  // An older history view does not undo what live events did.
  t.addHistory([{ seq: 1, id: 'id1', author_id: 'u1', text: 'm1', created_at: '', nonce: 'n1', mentions: [], edit_count: 0,
    deleted: false, reactions: [], reply_count: 0, updated_seq: 1 }]);
  assert.equal(t.messages.get(1).text, 'edited');
});

test('a pending send becomes the message once, whether ack or echo comes first', () => {
  const t = new Timeline();
  t.addPending('n5', 'hi');
  t.acknowledge({ nonce: 'n5', seq: 5, message_id: 'id5', created_at: '' }, 'u1');
  assert.equal(t.pending.size, 0);
  t.applyEvent(event(5, { text: 'hi' }));
  assert.equal(t.topLevel().length, 1);

  t.addPending('n6', 'again');
  t.applyEvent(event(6, { text: 'again' }));
  t.acknowledge({ nonce: 'n6', seq: 6, message_id: 'id6', created_at: '', duplicate: true }, 'u1');
  assert.equal(t.pending.size, 0);
  assert.deepEqual(t.topLevel().map((m) => m.seq), [5, 6]);
});

test('thread replies stay out of the channel list and count on their parent', () => {
  const t = new Timeline();
  t.applyEvent(event(1));
  t.applyEvent(event(2, { parent_seq: 1 }));
  assert.deepEqual(t.topLevel().map((m) => m.seq), [1]);
  assert.deepEqual(t.replies(1).map((m) => m.seq), [2]);
  assert.equal(t.messages.get(1).replyCount, 1);
});

test('a change to a message not loaded yet applies when its page arrives', () => {
  const t = new Timeline();
  t.applyEvent(event(9, { kind: 'delete', target_seq: 3, text: '' }));
  t.addHistory([{ seq: 3, id: 'id3', author_id: 'u1', text: 'm3', created_at: '', nonce: 'n3', mentions: [], edit_count: 0,
    deleted: false, reactions: [], reply_count: 0, updated_seq: 3 }]);
  assert.equal(t.messages.get(3).deleted, true);
  assert.equal(t.oldestSeq(), 3);
});

test('positions apply each seq once and resume from the first gap', async () => {
  const { Positions } = await import('../../web/js/positions.js');
  const p = new Positions();
  p.start('c', 4);
  p.start('c', 9); // a later `subscribed` does not move a known position
  assert.equal(p.accept('c', 4), false);
  assert.equal(p.accept('c', 7), true); // live, above the gap 5..6
  assert.equal(p.get('c'), 4);
  assert.equal(p.accept('c', 5), true);
  assert.equal(p.accept('c', 7), false);
  assert.equal(p.accept('c', 6), true); // the gap closes over 7
  assert.equal(p.get('c'), 7);
  assert.deepEqual(p.list(), [{ channel_id: 'c', last_seq: 7 }]);
  // Live events before the `subscribed` that says where the channel starts.
  assert.equal(p.accept('new', 11), true);
  assert.equal(p.accept('new', 11), false);
  p.start('new', 10);
  assert.equal(p.get('new'), 11);
  assert.equal(p.accept('new', 12), true);
  assert.equal(p.get('new'), 12);
});

test('presence follows oneself and the members in view, each once, at most 100', () => {
  assert.deepEqual(followList('me', ['b', 'me', 'a', 'b']), ['me', 'b', 'a']);
  const crowd = Array.from({ length: 250 }, (_, i) => `u${i}`);
  const followed = followList('me', crowd);
  assert.equal(followed.length, 100);
  assert.equal(followed[0], 'me');
  assert.equal(followed[99], 'u98');
});

test('a presence reads as it is at a given moment: expired statuses and ended focus are hidden', () => {
  const at = (iso) => Date.parse(iso);
  const bob = {
    user_id: 'b', status: 'idle', last_seen: '2026-12-04T07:00:00.000Z',
    custom_status: { text: ' in a meeting ', emoji: '📅', expires_at: '2026-12-04T08:00:00.000Z' },
    focus: { since: '2026-12-04T07:00:00.000Z', until: '2026-12-04T09:00:00.000Z' },
  };
  assert.deepEqual(describe(bob, at('2026-12-04T07:30:00Z')), {
    status: 'idle', custom: '📅 in a meeting', focus: { until: '2026-12-04T09:00:00.000Z' }, lastSeen: '2026-12-04T07:00:00.000Z',
  });
  assert.equal(describe(bob, at('2026-12-04T08:00:00Z')).custom, '', 'hidden at expires_at');
  assert.deepEqual(describe(bob, at('2026-12-04T08:30:00Z')).focus, { until: '2026-12-04T09:00:00.000Z' });
  assert.equal(describe(bob, at('2026-12-04T09:00:00Z')).focus, null, 'hidden at until');
  assert.equal(nextChange([bob], at('2026-12-04T07:30:00Z')), at('2026-12-04T08:00:00Z'));
  assert.equal(nextChange([bob], at('2026-12-04T08:10:00Z')), at('2026-12-04T09:00:00Z'));
  assert.equal(nextChange([bob], at('2026-12-04T09:10:00Z')), null);

  const open = { user_id: 'c', status: 'online', last_seen: null, custom_status: { text: '', emoji: 'palm_tree', expires_at: null },
    focus: { since: '2026-12-04T07:00:00.000Z', until: null } };
  assert.deepEqual(describe(open, 0), { status: 'online', custom: ':palm_tree:', focus: { until: null }, lastSeen: null });
  assert.equal(nextChange([open], 0), null);
  assert.deepEqual(describe(undefined, 0), { status: 'offline', custom: '', focus: null, lastSeen: null }, 'unknown reads offline');
});

test('the page is idle when hidden or untouched for five minutes', () => {
  assert.equal(activityState({ hidden: false, lastInputAt: 0, now: 299_999 }), 'active');
  assert.equal(activityState({ hidden: false, lastInputAt: 0, now: 300_000 }), 'idle');
  assert.equal(activityState({ hidden: true, lastInputAt: 0, now: 1 }), 'idle');
});

test('a custom status request: trimmed, with its expiry, and refused before the round trip when empty', () => {
  const now = new Date('2026-12-04T07:00:00.000Z');
  assert.deepEqual(statusRequest({ emoji: ' 📅 ', text: ' in a meeting ', clearAfter: '1h' }, now), {
    body: { emoji: '📅', text: 'in a meeting', expires_at: '2026-12-04T08:00:00.000Z' },
  });
  assert.deepEqual(statusRequest({ emoji: '', text: 'lunch', clearAfter: 'never' }, now), {
    body: { emoji: null, text: 'lunch', expires_at: null },
  });
  assert.match(statusRequest({ emoji: ' ', text: '  ', clearAfter: 'never' }, now).error, /status or pick an emoji/);
  assert.match(statusRequest({ emoji: 'palm tree', text: '', clearAfter: 'never' }, now).error, /without spaces/);
  assert.match(statusRequest({ emoji: '', text: 'x'.repeat(101), clearAfter: 'never' }, now).error, /100 characters/);
  assert.equal(expiryFor('30m', now), '2026-12-04T07:30:00.000Z');
  const endOfDay = new Date(expiryFor('today', now));
  assert.ok(endOfDay > now && endOfDay - now <= 24 * 3600_000);
  assert.equal(endOfDay.getHours() + endOfDay.getMinutes() + endOfDay.getSeconds(), 0, 'local midnight');
});
