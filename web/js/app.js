// The client's shared state: the REST client, the WebSocket, per-channel timelines and names.
//
// Every other module reads and changes this one `state`; the DOM is redrawn from it.

import { Api } from './api.js';
import { redraw } from './channel-view.js';
import { $ } from './dom.js';
import { Gateway } from './gateway.js';
import { Timeline } from './timeline.js';

export const api = new Api();
export const gateway = new Gateway(api);
export const state = {
  workspaces: [],
  workspaceId: null,
  /** channel id → ChannelView, plus local `mentions` */
  channels: new Map(),
  /** channel id → Timeline */
  timelines: new Map(),
  /** user id → display name */
  names: new Map(),
  activeId: null,
  /** seq of the message being edited */
  editing: null,
  /** the side panel: {kind: 'thread', channelId, seq} or {kind: 'search'} or null */
  panel: null,
  /** channel id → Map(user id → timer) */
  typing: new Map(),
  lastTypingSent: 0,
  /** user id → their latest presence (`presence` frame, or the REST view of it) */
  presence: new Map(),
  /** the people in view: `ids` followed (oneself first), out of `total` members */
  people: { channelId: null, ids: [], total: 0 },
  loadingOlder: false,
};
// For the browser tests and the curious: the live objects.
window.chorus = { api, gateway, state };

export function timeline(channelId) {
  let t = state.timelines.get(channelId);
  if (!t) state.timelines.set(channelId, (t = new Timeline()));
  return t;
}

export function nameOf(userId) {
  if (userId === api.user?.id) return api.user.display_name;
  const known = state.names.get(userId);
  if (known) return known;
  state.names.set(userId, userId.slice(0, 8));
  api.get(`/v1/users/${userId}`).then((u) => {
    state.names.set(userId, u.display_name);
    redraw();
  }, () => {});
  return state.names.get(userId);
}

/** A failed action, shown where the connection state is (a polite live region). */
export function showError(err) {
  $('connection').textContent = err.message;
}
