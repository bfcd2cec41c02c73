// Who is here: the open channel's members with their presence (online, idle or offline, custom
// status, focus), one's own custom status and the form that sets it, and this page's activity.
//
// Presence arrives over the WebSocket: the gateway follows the users `presence.js` picks
// (`presence_subscribe`, said again on every connection) and `live.js` hands us the
// `presence_subscribed` and `presence` frames. While the socket is not up the bulk REST query
// (`POST /v1/presence/query`) fills the list, so it never waits on a reconnect. A custom status
// is set and cleared over REST (`PUT`/`DELETE /v1/users/me/status`); its `presence` frame comes
// back to us too, since we follow ourselves.
//
// This module touches `gateway` and `api` only inside functions: `channel-view.js` imports it
// while `app.js` is still being evaluated.

import { api, gateway, nameOf, state } from './app.js';
import { $, clock, h } from './dom.js';
import { activityState, describe, followList, nextChange, statusRequest } from './presence.js';

/** Bumped on every load, so a slow answer for a channel left meanwhile is dropped. */
let loads = 0;

/** Shows the members of `channelId` (null: nobody but oneself) and follows their presence. */
export async function showPeople(channelId) {
  const load = ++loads;
  let memberIds = [];
  if (channelId) {
    const members = await api.get(`/v1/channels/${channelId}/members`).catch(() => null);
    if (load !== loads || members === null) return;
    memberIds = members.map((m) => m.user_id);
  }
  const ids = followList(api.user.id, memberIds);
  state.people = { channelId, ids, total: new Set([api.user.id, ...memberIds]).size };
  gateway.follow(ids);
  drawPeople();
  if (!gateway.ready) {
    // The socket will subscribe when it is up; meanwhile, one read. Should the socket answer
    // first, its frames are newer than this answer: keep them.
    api.post('/v1/presence/query', { user_ids: ids }).then((found) => {
      applyPresences(found.presences.filter((p) => !gateway.ready || !state.presence.has(p.user_id)));
    }, () => {});
  }
}

/** The members may have changed (a reconnect, coming back to the tab): read them again. */
export function refreshPeople() {
  if (api.session) showPeople(state.people.channelId).catch(() => {});
}

/** A `presence_subscribed` or `presence` frame. */
export function onPresenceFrame(frame) {
  if (frame.type === 'presence_subscribed') return applyPresences(frame.presences);
  const { type: _type, ...presence } = frame;
  return applyPresences([presence]);
}

/** A message in the channel in view from someone not listed: a new member spoke. */
export function noticeAuthor(channelId, authorId) {
  const people = state.people;
  if (channelId !== people.channelId || people.ids.includes(authorId) || people.total > people.ids.length) return;
  refreshPeople();
}

function applyPresences(presences) {
  // A frame replaces everything known about its user (fields absent are gone, e.g. `focus`).
  for (const p of presences) state.presence.set(p.user_id, p);
  drawPeople();
}

let expiryTimer = null;

export function drawPeople() {
  const now = Date.now();
  const me = api.user;
  if (!me) return;
  const mine = describe(state.presence.get(me.id), now);
  $('me-status').textContent = mine.custom;
  const channel = state.channels.get(state.people.channelId);
  $('people-heading').textContent = channel ? `People in ${channel.kind === 'dm' ? 'this conversation' : '#' + channel.name}` : 'People';
  const others = state.people.ids.filter((id) => id !== me.id).sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  const shown = state.people.ids.includes(me.id) ? [me.id, ...others] : others;
  $('people-list').replaceChildren(...shown.map((id) => personItem(id, describe(state.presence.get(id), now), id === me.id)));
  const hidden = state.people.total - state.people.ids.length;
  $('people-more').textContent = hidden > 0 ? `and ${hidden} more` : '';

  // An expired custom status or an ended focus session disappears on time, without a frame.
  clearTimeout(expiryTimer);
  const next = nextChange([...state.presence.values()], now);
  if (next !== null) expiryTimer = setTimeout(drawPeople, Math.min(next - now + 50, 2 ** 31 - 1));
}

function personItem(userId, seen, isMe) {
  const name = nameOf(userId);
  const status = seen.status === 'offline' && seen.lastSeen ? `offline, last seen ${clock(seen.lastSeen)}` : seen.status;
  return h('li', { className: 'person', dataset: { user: name, status: seen.status } },
    h('span', { className: `dot ${seen.status}`, 'aria-hidden': 'true' }),
    h('span', { className: 'person-text' },
      h('span', { className: 'person-name' }, isMe ? `${name} (you)` : name),
      h('span', { className: 'person-status' }, ` ${status}`),
      seen.custom ? h('span', { className: 'person-custom' }, seen.custom) : null,
      seen.focus ? h('span', { className: 'person-focus' }, seen.focus.until ? `focusing until ${clock(seen.focus.until)}` : 'focusing') : null));
}

// Setting one's own status. The form opens filled with the status as it is now — on the
// summary's click (Enter and Space click it too), not on `toggle`, which fires a task later and
// could overwrite what is typed meanwhile.
$('status-tools').querySelector('summary').addEventListener('click', () => {
  if ($('status-tools').open) return; // closing
  const custom = describe(state.presence.get(api.user?.id), Date.now()).custom ? state.presence.get(api.user.id).custom_status : null;
  $('status-emoji').value = custom?.emoji ?? '';
  $('status-text').value = custom?.text ?? '';
  $('status-error').textContent = '';
});

// Escape closes the form and leaves the focus where it was opened from.
$('status-tools').addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || !$('status-tools').open) return;
  $('status-tools').open = false;
  $('status-tools').querySelector('summary').focus();
});

$('status-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const request = statusRequest({
    emoji: $('status-emoji').value,
    text: $('status-text').value,
    clearAfter: $('status-expiry').value,
  }, new Date());
  if (request.error) {
    $('status-error').textContent = request.error;
    return;
  }
  try {
    const set = await api.request('PUT', '/v1/users/me/status', request.body);
    setOwnStatus(set);
  } catch (err) {
    $('status-error').textContent = err.message;
  }
});

$('status-clear').addEventListener('click', async () => {
  try {
    await api.request('DELETE', '/v1/users/me/status');
    setOwnStatus(null);
  } catch (err) {
    $('status-error').textContent = err.message;
  }
});

/** Shows our new status at once (its `presence` frame follows) and hands focus back to the summary. */
function setOwnStatus(customStatus) {
  const id = api.user.id;
  const known = state.presence.get(id) ?? { user_id: id, status: 'online', last_seen: null };
  state.presence.set(id, { ...known, custom_status: customStatus });
  drawPeople();
  $('status-tools').open = false;
  $('status-tools').querySelector('summary').focus();
}

// Activity: idle while the tab is hidden or untouched for five minutes (`presence.js`). The
// gateway says it only when it changes, and again on each new connection.
let lastInputAt = Date.now();
function reportActivity() {
  if (!api.session) return;
  gateway.activity(activityState({ hidden: document.visibilityState === 'hidden', lastInputAt, now: Date.now() }));
}
for (const kind of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart']) {
  window.addEventListener(kind, () => {
    const wasIdle = Date.now() - lastInputAt > 1000;
    lastInputAt = Date.now();
    if (wasIdle) reportActivity();
  }, { passive: true, capture: true });
}
document.addEventListener('visibilitychange', reportActivity);
setInterval(reportActivity, 30_000);
window.addEventListener('focus', refreshPeople);
