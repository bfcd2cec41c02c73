// Unit tests of the web client's pure modules (no browser needed): the reconnect schedule and the
// timeline's exactly-once merging of history, live events, replays and our own sends.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, closeAction } from '../../web/js/backoff.js';
import { Timeline } from '../../web/js/timeline.js';

test('backoff grows, is capped, and is jittered within its window', () => {
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(3, () => 1), 4000);
  assert.equal(backoffDelay(30, () => 1), 10000);
  assert.equal(backoffDelay(3, () => 0), 400);
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(4)));
  assert.ok(spread.size > 10, 'jitter spreads retries');
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
