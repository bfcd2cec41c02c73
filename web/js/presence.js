// Presence decisions, pure (unit-tested in tests/browser/unit.test.js; `people.js` does the I/O):
// whom to follow, how one user's presence reads at a given moment, when that reading next
// changes by itself, when the page counts as idle, and the body of a custom status to set.
//
// The protocol (docs/PROTOCOL.md, `presence_subscribe` / `presence`) lets a connection follow at
// most 100 users — the members in view — and leaves hiding an expired custom status (`expires_at`)
// or an ended focus session (`focus.until`) to the client, so every reading takes `now`.

/** MAX_PRESENCE_SUBSCRIPTIONS in docs/PROTOCOL.md: more is refused with `presence_limit`. */
export const MAX_FOLLOWED = 100;

/** Without a key, pointer or scroll for this long the page says it is idle. */
export const IDLE_AFTER_MS = 5 * 60_000;

/**
 * The users to follow: oneself first (one's own custom status shows in the sidebar), then the
 * members in view, each once, at most `limit` in all.
 */
export function followList(me, memberIds, limit = MAX_FOLLOWED) {
  const ids = [];
  const seen = new Set();
  for (const id of [me, ...memberIds]) {
    if (id == null || seen.has(id)) continue;
    seen.add(id);
    ids.push(id);
    if (ids.length === limit) break;
  }
  return ids;
}

/**
 * How a user's presence reads at `now` (ms since the epoch): `status` (`online`, `idle` or
 * `offline`; unknown counts as offline), `custom` (emoji and text, '' when none or expired),
 * `focus` (null, or `{until}` with `until` null for an open-ended session) and `lastSeen`.
 */
export function describe(presence, now) {
  const status = ['online', 'idle', 'offline'].includes(presence?.status) ? presence.status : 'offline';
  const custom = presence?.custom_status;
  const customLive = custom && !passed(custom.expires_at, now);
  const focus = presence?.focus;
  const focusLive = focus && !passed(focus.until, now);
  return {
    status,
    custom: customLive ? [emojiText(custom.emoji), (custom.text ?? '').trim()].filter(Boolean).join(' ') : '',
    focus: focusLive ? { until: focus.until ?? null } : null,
    lastSeen: presence?.last_seen ?? null,
  };
}

/** The earliest moment after `now` at which one of these presences reads differently, or null. */
export function nextChange(presences, now) {
  let next = null;
  for (const p of presences) {
    for (const at of [p?.custom_status?.expires_at, p?.focus?.until]) {
      const t = at ? Date.parse(at) : NaN;
      if (t > now && (next === null || t < next)) next = t;
    }
  }
  return next;
}

/** Whether the page counts as idle: hidden, or no input for `IDLE_AFTER_MS`. */
export function activityState({ hidden, lastInputAt, now }) {
  return hidden || now - lastInputAt >= IDLE_AFTER_MS ? 'idle' : 'active';
}

/** `expires_at` for a "clear after" choice made at `now` (a Date); 'today' is local midnight. */
export function expiryFor(choice, now) {
  const minutes = { '30m': 30, '1h': 60, '4h': 240 }[choice];
  if (minutes) return new Date(now.getTime() + minutes * 60_000).toISOString();
  if (choice === 'today') {
    const midnight = new Date(now);
    midnight.setHours(24, 0, 0, 0);
    return midnight.toISOString();
  }
  return null;
}

/**
 * The body of `PUT /v1/users/me/status` from the form's fields, or `{error}` for what the server
 * would refuse anyway (`empty_status`, `invalid_emoji`), said before the round trip.
 */
export function statusRequest({ emoji, text, clearAfter }, now) {
  const e = (emoji ?? '').trim();
  const t = (text ?? '').trim();
  if (!e && !t) return { error: 'Write a status or pick an emoji (or clear it).' };
  if (/\s/.test(e)) return { error: 'The emoji is one symbol or a name without spaces.' };
  if (new TextEncoder().encode(e).length > 64) return { error: 'The emoji is too long.' };
  if ([...t].length > 100) return { error: 'A status is at most 100 characters.' };
  return { body: { emoji: e || null, text: t, expires_at: expiryFor(clearAfter, now) } };
}

/** An emoji as set: a character shows as itself, a short name such as `palm_tree` as `:palm_tree:`. */
export function emojiText(emoji) {
  if (!emoji) return '';
  return /^[a-z0-9_+-]+$/i.test(emoji) ? `:${emoji}:` : emoji;
}

function passed(at, now) {
  if (!at) return false;
  const t = Date.parse(at);
  return !Number.isNaN(t) && t <= now;
}
