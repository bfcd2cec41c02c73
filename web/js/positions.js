// How far we have read each channel: the resume position, and the exactly-once filter.
//
// Pure (unit-tested in tests/browser/unit.test.js). Every event of a channel has a seq with no
// gaps (docs/PROTOCOL.md), so `last` is the highest seq up to which *every* event was applied —
// what `resume` and `subscribe.since_seq` must send. Events can arrive above a gap: after a new
// `identify` the gateway pushes live events while the replay we asked for (`since_seq`) is still
// coming. Those are applied and remembered in `ahead`, and `last` jumps over them once the gap is
// filled, so neither a replayed nor a live event is applied twice, and none is skipped.

export class Positions {
  constructor() {
    /** channel id → highest seq with everything at or below it applied */
    this.last = new Map();
    /** channel id → Set of seqs above `last` already applied */
    this.ahead = new Map();
  }

  has(channelId) {
    return this.last.has(channelId);
  }

  get(channelId) {
    return this.last.get(channelId);
  }

  /** Starts following a channel at `seq` (its newest when we first see it; history comes over REST). */
  start(channelId, seq) {
    if (this.last.has(channelId)) return;
    // Live events may have come before the `subscribed` that tells us where we start.
    const ahead = this.ahead.get(channelId) ?? new Set();
    for (const applied of ahead) if (applied <= seq) ahead.delete(applied);
    let next = seq;
    while (ahead.delete(next + 1)) next += 1;
    this.last.set(channelId, next);
  }

  /** True if `seq` of `channelId` is new (apply it); records it as applied. */
  accept(channelId, seq) {
    if (!this.last.has(channelId)) {
      // Not started yet (its `subscribed` is on the way): apply, and sort it out in `start`.
      const ahead = this.ahead.get(channelId) ?? new Set();
      this.ahead.set(channelId, ahead);
      if (ahead.has(seq)) return false;
      ahead.add(seq);
      return true;
    }
    const last = this.last.get(channelId);
    const ahead = this.ahead.get(channelId) ?? new Set();
    if (seq <= last || ahead.has(seq)) return false;
    if (seq !== last + 1) {
      ahead.add(seq);
      this.ahead.set(channelId, ahead);
      return true;
    }
    let next = seq;
    while (ahead.delete(next + 1)) next += 1;
    this.last.set(channelId, next);
    return true;
  }

  /** `[{channel_id, last_seq}]` for a `resume` frame. */
  list() {
    return [...this.last].map(([channel_id, last_seq]) => ({ channel_id, last_seq }));
  }

  clear() {
    this.last.clear();
    this.ahead.clear();
  }
}
