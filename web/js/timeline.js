// One channel's messages as the client shows them: history pages and live events merged by `seq`.
//
// Pure data, no DOM and no network (unit-tested in tests/browser/unit.test.js). Every input is
// idempotent, so the same event reaching us twice — a replay after resume overlapping what we saw,
// a history page overlapping live events — shows once:
// - a message is keyed by its `seq`;
// - a change (edit, delete, reaction) applies only if its `seq` is newer than what the message
//   already reflects (`updatedSeq`; a REST view carries `updated_seq`);
// - sends we made wait as `pending` under their nonce until the server's echo or `ack` names a seq.

export class Timeline {
  constructor() {
    /** seq → message */
    this.messages = new Map();
    /** nonce → {nonce, text, parentSeq, state: 'pending'|'failed', error} in the order they were sent */
    this.pending = new Map();
    /** Events for messages not loaded yet (older than the oldest page): kept so a later page applies them. */
    this.orphans = new Map();
    /** Whether older history exists before the oldest loaded message (null: not asked yet). */
    this.hasOlder = null;
  }

  /** The oldest loaded seq (the `before` cursor of the next older page), or null. */
  oldestSeq() {
    let oldest = null;
    for (const seq of this.messages.keys()) if (oldest === null || seq < oldest) oldest = seq;
    return oldest;
  }

  /** Adds a page of REST `MessageView`s. */
  addHistory(views) {
    for (const view of views) {
      const known = this.messages.get(view.seq);
      if (known && known.updatedSeq >= view.updated_seq) continue;
      this.messages.set(view.seq, fromView(view));
      this.pending.delete(view.nonce);
    }
    for (const [target, events] of this.orphans) {
      if (!this.messages.has(target)) continue;
      this.orphans.delete(target);
      for (const event of events) this.applyEvent(event);
    }
  }

  /** Applies a `message` frame (any `kind`). Returns true if anything visible changed. */
  applyEvent(event) {
    const kind = event.kind ?? 'message';
    if (kind === 'message') {
      this.pending.delete(event.nonce);
      if (this.messages.has(event.seq)) return false;
      this.messages.set(event.seq, fromEvent(event));
      if (event.parent_seq != null) {
        const parent = this.messages.get(event.parent_seq);
        if (parent && parent.updatedSeq < event.seq) {
          parent.replyCount += 1;
          parent.updatedSeq = event.seq;
        }
      }
      return true;
    }
    const target = this.messages.get(event.target_seq);
    if (!target) {
      const waiting = this.orphans.get(event.target_seq) ?? [];
      waiting.push(event);
      this.orphans.set(event.target_seq, waiting);
      return false;
    }
    if (target.updatedSeq >= event.seq) return false;
    target.updatedSeq = event.seq;
    if (kind === 'edit') {
      target.text = event.text;
      target.edited = true;
    } else if (kind === 'delete') {
      target.text = '';
      target.deleted = true;
    } else if (kind === 'reaction_add') {
      const users = target.reactions.get(event.emoji) ?? [];
      if (!users.includes(event.author_id)) users.push(event.author_id);
      target.reactions.set(event.emoji, users);
    } else if (kind === 'reaction_remove') {
      const users = (target.reactions.get(event.emoji) ?? []).filter((u) => u !== event.author_id);
      if (users.length) target.reactions.set(event.emoji, users);
      else target.reactions.delete(event.emoji);
    }
    return true;
  }

  /** Records a send we are making. */
  addPending(nonce, text, parentSeq = null) {
    this.pending.set(nonce, { nonce, text, parentSeq, state: 'pending', error: null });
  }

  /**
   * The server acknowledged a send (`ack` frame): the message is durable as `ack.seq`. The `ack`
   * and our own `message` echo may come in either order; if the ack is first, the message is
   * shown from the ack and the send's text, and the echo then changes nothing.
   */
  acknowledge(ack, authorId) {
    const pending = this.pending.get(ack.nonce);
    this.pending.delete(ack.nonce);
    if (!this.messages.has(ack.seq) && pending) {
      this.applyEvent({
        seq: ack.seq,
        id: ack.message_id,
        author_id: authorId,
        text: pending.text,
        created_at: ack.created_at,
        nonce: ack.nonce,
        parent_seq: pending.parentSeq,
      });
    }
    return pending;
  }

  failPending(nonce, error) {
    const pending = this.pending.get(nonce);
    if (pending) Object.assign(pending, { state: 'failed', error });
  }

  /** Top-level messages in seq order (thread replies live in their thread). */
  topLevel() {
    return [...this.messages.values()].filter((m) => m.parentSeq == null).sort((a, b) => a.seq - b.seq);
  }

  /** The replies of thread `parentSeq`, oldest first. */
  replies(parentSeq) {
    return [...this.messages.values()].filter((m) => m.parentSeq === parentSeq).sort((a, b) => a.seq - b.seq);
  }
}

function fromEvent(event) {
  return {
    seq: event.seq,
    id: event.id,
    authorId: event.author_id,
    text: event.text,
    createdAt: event.created_at,
    nonce: event.nonce,
    parentSeq: event.parent_seq ?? null,
    mentions: event.mentions ?? [],
    edited: false,
    deleted: false,
    reactions: new Map(),
    replyCount: 0,
    updatedSeq: event.seq,
    acked: true,
  };
}

function fromView(view) {
  return {
    seq: view.seq,
    id: view.id,
    authorId: view.author_id,
    text: view.text,
    createdAt: view.created_at,
    nonce: view.nonce,
    parentSeq: view.parent_seq ?? null,
    mentions: view.mentions ?? [],
    edited: view.edit_count > 0,
    deleted: view.deleted,
    reactions: new Map(view.reactions.map((r) => [r.emoji, [...r.users]])),
    replyCount: view.reply_count,
    updatedSeq: view.updated_seq,
    acked: true,
  };
}
