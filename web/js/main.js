// The web client's entry point: wires the REST client (`api.js`), the WebSocket (`gateway.js`),
// per-channel timelines (`timeline.js`) and rendering (`render.js`) to the page (`index.html`).
//
// State lives here; the DOM is redrawn from it. Live events go to the channel's timeline whether
// or not it is on screen, and advance the gateway's per-channel positions — where to resume.

import { Api } from './api.js';
import { $, h, newNonce } from './dom.js';
import { Gateway } from './gateway.js';
import { encodeMentions, renderChannels, renderMessages } from './render.js';
import { Timeline } from './timeline.js';

const PAGE = 50;
const TYPING_EVERY_MS = 3000;

const api = new Api();
const gateway = new Gateway(api);
const state = {
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
  loadingOlder: false,
};
// For the browser tests and the curious: the live objects.
window.chorus = { api, gateway, state };

function timeline(channelId) {
  let t = state.timelines.get(channelId);
  if (!t) state.timelines.set(channelId, (t = new Timeline()));
  return t;
}

function nameOf(userId) {
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

// ---- session ----

async function boot() {
  api.addEventListener('session', () => {
    if (!api.session) showLogin();
  });
  if (api.session) enterApp();
  else showLogin();
}

function showLogin() {
  gateway.stop();
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-email').focus();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const action = event.submitter?.value ?? 'login';
  $('login-error').textContent = '';
  try {
    if (action === 'register') await api.register($('login-email').value, $('login-password').value, $('login-name').value);
    else await api.login($('login-email').value, $('login-password').value);
    enterApp();
  } catch (err) {
    $('login-error').textContent = err.message;
  }
});

$('logout-button').addEventListener('click', async () => {
  gateway.stop();
  await api.logout().catch(() => {});
  state.timelines.clear();
  state.channels.clear();
  state.activeId = null;
});

async function enterApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('me-name').textContent = api.user.display_name;
  gateway.start();
  await loadWorkspaces();
}

// ---- workspaces and channels ----

async function loadWorkspaces(pick) {
  state.workspaces = await api.get('/v1/workspaces');
  const saved = pick ?? state.workspaceId ?? localStorage.getItem('chorus.workspace');
  const chosen = state.workspaces.find((w) => w.id === saved) ?? state.workspaces[0];
  $('workspace-select').replaceChildren(
    ...state.workspaces.map((w) => h('option', { value: w.id, selected: w.id === chosen?.id }, w.name)),
  );
  if (!chosen) {
    $('workspace-tools').open = true;
    $('channel-title').textContent = 'Create a workspace to start';
    return;
  }
  await selectWorkspace(chosen.id);
}

async function selectWorkspace(id) {
  if (state.workspaceId !== id) state.activeId = null;
  state.workspaceId = id;
  localStorage.setItem('chorus.workspace', id);
  const members = await api.get(`/v1/workspaces/${id}/members`).catch(() => []);
  for (const m of members) state.names.set(m.user_id, m.display_name);
  $('dm-select').replaceChildren(
    ...members.filter((m) => m.user_id !== api.user.id).map((m) => h('option', { value: m.user_id }, m.display_name)),
  );
  await loadChannels();
}

async function loadChannels() {
  const list = await api.get(`/v1/workspaces/${state.workspaceId}/channels`);
  const old = state.channels;
  state.channels = new Map(list.map((c) => [c.id, { ...c, mentions: old.get(c.id)?.mentions ?? 0, label: old.get(c.id)?.label }]));
  for (const c of state.channels.values()) {
    // Someone added us (a DM they opened, a private channel): follow it live from now on.
    if (c.is_member && !c.is_archived && !gateway.positions.has(c.id)) gateway.subscribe(c.id);
    if (c.kind === 'dm' && !c.label) labelDm(c);
  }
  const active = state.channels.get(state.activeId);
  if (active) active.unread_count = 0;
  drawChannels();
  if (!active || !active.is_member || active.is_archived) {
    const first = [...state.channels.values()].find((c) => c.is_member && !c.is_archived);
    if (first) await openChannel(first.id);
    else closeChannel();
  }
}

/** A DM is named after the other people in it. */
async function labelDm(channel) {
  const members = await api.get(`/v1/channels/${channel.id}/members`).catch(() => []);
  const others = members.filter((m) => m.user_id !== api.user.id).map((m) => nameOf(m.user_id));
  channel.label = others.join(', ') || 'just you';
  drawChannels();
  if (channel.id === state.activeId) $('channel-title').textContent = `@ ${channel.label}`;
}

// New channels, DMs and unread counts from elsewhere: refresh now and then, and on coming back.
setInterval(() => {
  if (api.session && state.workspaceId && document.visibilityState === 'visible') loadChannels().catch(() => {});
}, 30_000);
window.addEventListener('focus', () => {
  if (api.session && state.workspaceId) loadChannels().catch(() => {});
});

function drawChannels() {
  renderChannels($('channel-list'), $('browse-list'), state.channels, state.activeId, { open: openChannel, join: joinChannel });
}

$('workspace-select').addEventListener('change', (e) => selectWorkspace(e.target.value).catch(showSidebarError));

$('workspace-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const ws = await api.post('/v1/workspaces', { name: $('workspace-name').value });
    $('workspace-name').value = '';
    await loadWorkspaces(ws.id);
  } catch (err) {
    showSidebarError(err);
  }
});

$('dm-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const dm = await api.post(`/v1/workspaces/${state.workspaceId}/dms`, { user_ids: [$('dm-select').value] });
    gateway.subscribe(dm.id);
    await loadChannels();
    await openChannel(dm.id);
  } catch (err) {
    showSidebarError(err);
  }
});

$('invite-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await api.post(`/v1/workspaces/${state.workspaceId}/members`, { email: $('invite-email').value });
    $('sidebar-error').textContent = `Added ${$('invite-email').value}`;
    $('invite-email').value = '';
    await selectWorkspace(state.workspaceId);
  } catch (err) {
    showSidebarError(err);
  }
});

$('channel-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const channel = await api.post(`/v1/workspaces/${state.workspaceId}/channels`, {
      name: $('channel-name').value,
      private: $('channel-private').checked,
    });
    $('channel-name').value = '';
    gateway.subscribe(channel.id);
    await loadChannels();
    await openChannel(channel.id);
  } catch (err) {
    showSidebarError(err);
  }
});

async function joinChannel(id) {
  try {
    await api.post(`/v1/channels/${id}/join`);
    gateway.subscribe(id);
    await loadChannels();
    await openChannel(id);
  } catch (err) {
    showSidebarError(err);
  }
}

function showSidebarError(err) {
  $('sidebar-error').textContent = err.message;
}

$('topic-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const id = state.activeId;
  try {
    const updated = await api.request('PATCH', `/v1/channels/${id}`, { topic: $('topic-input').value });
    Object.assign(state.channels.get(id), { topic: updated.topic });
    $('channel-topic').textContent = updated.topic;
    $('channel-tools').open = false;
  } catch (err) {
    alertError(err);
  }
});

for (const [button, action] of [[$('leave-button'), 'leave'], [$('archive-button'), 'archive']]) {
  button.addEventListener('click', async () => {
    const id = state.activeId;
    if (!id || !confirm(`${action === 'leave' ? 'Leave' : 'Archive'} this channel?`)) return;
    try {
      await api.post(`/v1/channels/${id}/${action}`);
      $('channel-tools').open = false;
      state.activeId = null;
      await loadChannels();
    } catch (err) {
      alertError(err);
    }
  });
}

// ---- the open channel ----

async function openChannel(id) {
  const channel = state.channels.get(id);
  if (!channel) return;
  state.activeId = id;
  state.editing = null;
  $('sidebar').classList.remove('open');
  $('menu-button').setAttribute('aria-expanded', 'false');
  $('channel-title').textContent = channel.kind === 'dm' ? `@ ${channel.label ?? ''}` : `${channel.kind === 'private' ? '🔒 ' : '# '}${channel.name}`;
  $('channel-topic').textContent = channel.topic;
  $('channel-tools').hidden = channel.kind === 'dm';
  $('topic-input').value = channel.topic;
  $('composer-text').disabled = $('send-button').disabled = false;
  const t = timeline(id);
  if (t.hasOlder === null) {
    $('history-status').textContent = 'Loading…';
    const page = await api.get(`/v1/channels/${id}/messages?limit=${PAGE}`);
    t.addHistory(page.messages);
    t.hasOlder = page.has_more;
  }
  if (state.activeId !== id) return;
  channel.unread_count = 0;
  channel.mentions = 0;
  drawChannels();
  drawMessages();
  scrollToBottom();
  markRead();
}

/** No channel to show (none joined yet, or the last one was left). */
function closeChannel() {
  state.activeId = null;
  $('channel-title').textContent = 'Pick or create a channel';
  $('channel-topic').textContent = '';
  $('channel-tools').hidden = true;
  $('message-list').replaceChildren();
  $('history-status').textContent = '';
  $('composer-text').disabled = $('send-button').disabled = true;
  drawChannels();
}

function drawMessages() {
  const id = state.activeId;
  if (!id) return;
  const t = timeline(id);
  const pending = [...t.pending.values()].filter((p) => p.parentSeq == null);
  renderMessages($('message-list'), t.topLevel(), pending, context(id, true));
  const channel = state.channels.get(id);
  $('history-status').textContent = t.hasOlder ? 'Scroll up for older messages' : `This is the beginning of ${channel?.kind === 'dm' ? 'your conversation with ' + (channel.label ?? '') : '#' + (channel?.name ?? '')}`;
  drawTyping();
  drawPanel();
}

function context(channelId, withThreads) {
  return {
    me: api.user,
    name: nameOf,
    editing: state.editing,
    thread: withThreads ? (m) => openThread(channelId, m.seq) : null,
    startEdit: (m) => {
      state.editing = m?.seq ?? null;
      redraw();
      if (m) document.getElementById(`edit-${m.seq}`)?.focus();
    },
    saveEdit: async (m, text) => {
      state.editing = null;
      await api.request('PATCH', `/v1/channels/${channelId}/messages/${m.seq}`, { text }).catch(alertError);
      redraw();
    },
    remove: async (m) => {
      if (!confirm('Delete this message?')) return;
      await api.request('DELETE', `/v1/channels/${channelId}/messages/${m.seq}`).catch(alertError);
    },
    react: (m, emoji, mine) => {
      const path = `/v1/channels/${channelId}/messages/${m.seq}/reactions/${encodeURIComponent(emoji)}`;
      api.request(mine ? 'DELETE' : 'PUT', path).catch(alertError);
    },
    retry: (p) => {
      p.state = 'pending';
      gateway.send(channelId, p.nonce, p.text, p.parentSeq);
      redraw();
    },
  };
}

function alertError(err) {
  $('connection').textContent = err.message;
}

function redraw() {
  drawMessages();
}

function nearBottom() {
  const el = $('messages');
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

function scrollToBottom() {
  const el = $('messages');
  el.scrollTop = el.scrollHeight;
}

let readTimer = null;
function markRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const id = state.activeId;
    const seq = gateway.positions.get(id);
    if (id && seq) api.post(`/v1/channels/${id}/read`, { seq }).catch(() => {});
  }, 500);
}

// Scroll-back: near the top, fetch the page before the oldest message we have.
$('messages').addEventListener('scroll', async () => {
  const el = $('messages');
  const id = state.activeId;
  const t = id && timeline(id);
  if (!t || el.scrollTop > 40 || !t.hasOlder || state.loadingOlder) return;
  state.loadingOlder = true;
  $('history-status').textContent = 'Loading older messages…';
  try {
    const before = el.scrollHeight;
    const page = await api.get(`/v1/channels/${id}/messages?limit=${PAGE}&before=${t.oldestSeq()}`);
    t.addHistory(page.messages);
    t.hasOlder = page.has_more;
    if (state.activeId === id) {
      drawMessages();
      el.scrollTop += el.scrollHeight - before;
    }
  } catch (err) {
    alertError(err);
  } finally {
    state.loadingOlder = false;
  }
});

// ---- composing ----

/** Workspace members by lower-case display name, for `@Name` mentions. */
function membersByName() {
  const byName = new Map();
  for (const [id, name] of state.names) byName.set(name.toLowerCase(), id);
  return byName;
}

function sendText(channelId, text, parentSeq = null) {
  text = encodeMentions(text.trim(), membersByName());
  if (!text || !channelId) return;
  const nonce = newNonce();
  timeline(channelId).addPending(nonce, text, parentSeq);
  gateway.send(channelId, nonce, text, parentSeq);
  state.lastTypingSent = 0;
  redraw();
  scrollToBottom();
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  sendText(state.activeId, $('composer-text').value);
  $('composer-text').value = '';
});

for (const [textarea, form] of [[$('composer-text'), $('composer')], [$('thread-text'), $('thread-composer')]]) {
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  textarea.addEventListener('input', () => {
    const now = Date.now();
    if (state.activeId && now - state.lastTypingSent > TYPING_EVERY_MS) {
      state.lastTypingSent = now;
      gateway.typing(state.activeId);
    }
  });
}

// ---- typing ----

function showTyping(frame) {
  if (frame.user_id === api.user.id) return;
  const who = state.typing.get(frame.channel_id) ?? new Map();
  state.typing.set(frame.channel_id, who);
  clearTimeout(who.get(frame.user_id));
  who.set(frame.user_id, setTimeout(() => stopTyping(frame.channel_id, frame.user_id), frame.expires_in_ms));
  drawTyping();
}

function stopTyping(channelId, userId) {
  const who = state.typing.get(channelId);
  if (!who?.has(userId)) return;
  clearTimeout(who.get(userId));
  who.delete(userId);
  drawTyping();
}

function drawTyping() {
  const who = [...(state.typing.get(state.activeId)?.keys() ?? [])].map(nameOf);
  $('typing').textContent = who.length === 0 ? '' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
}

// ---- side panel: thread or search results ----

async function openThread(channelId, seq) {
  state.panel = { kind: 'thread', channelId, seq };
  const page = await api.get(`/v1/channels/${channelId}/messages/${seq}/replies?limit=200`);
  timeline(channelId).addHistory([page.parent, ...page.replies]);
  drawPanel();
  $('thread-text').focus();
}

function drawPanel() {
  const panel = state.panel;
  $('side-panel').hidden = !panel;
  if (!panel) return;
  $('thread-composer').hidden = panel.kind !== 'thread';
  if (panel.kind === 'thread') {
    const t = timeline(panel.channelId);
    const parent = t.messages.get(panel.seq);
    $('side-title').textContent = 'Thread';
    const pending = [...t.pending.values()].filter((p) => p.parentSeq === panel.seq);
    renderMessages($('side-list'), [parent, ...t.replies(panel.seq)].filter(Boolean), pending, context(panel.channelId, false));
  } else {
    $('side-title').textContent = `Search: ${panel.query}`;
    $('side-list').replaceChildren(
      ...(panel.results.length ? panel.results.map((m) => h('li', { className: 'message' },
        h('div', { className: 'meta' }, h('span', { className: 'author' }, nameOf(m.author_id)), `#${state.channels.get(m.channel_id)?.name ?? '?'}`),
        h('div', { className: 'text' }, m.text),
        h('div', { className: 'actions' }, h('button', { type: 'button', onclick: () => openChannel(m.channel_id) }, 'Open channel'))))
        : [h('li', {}, 'No messages found.')]));
  }
}

$('side-close').addEventListener('click', () => {
  state.panel = null;
  drawPanel();
  $('composer-text').focus();
});

$('thread-composer').addEventListener('submit', (e) => {
  e.preventDefault();
  if (state.panel?.kind !== 'thread') return;
  sendText(state.panel.channelId, $('thread-text').value, state.panel.seq);
  $('thread-text').value = '';
});

$('search-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const query = $('search-input').value.trim();
  if (query.length < 2 || !state.workspaceId) return;
  try {
    const found = await api.get(`/v1/workspaces/${state.workspaceId}/search?q=${encodeURIComponent(query)}`);
    state.panel = { kind: 'search', query, results: found.messages };
    drawPanel();
  } catch (err) {
    alertError(err);
  }
});

$('menu-button').addEventListener('click', () => {
  const open = $('sidebar').classList.toggle('open');
  $('menu-button').setAttribute('aria-expanded', String(open));
});

// ---- live events ----

gateway.addEventListener('status', (e) => {
  const el = $('connection');
  const text = { connecting: 'Connecting…', online: 'Online', reconnecting: 'Reconnecting…', offline: 'Offline' }[e.detail];
  el.textContent = text;
  el.className = `connection ${e.detail}`;
  el.dataset.state = e.detail;
});

let readyBefore = false;
gateway.addEventListener('ready', () => {
  // After a reconnect, unread counts and channels may have changed while we were away.
  if (readyBefore && state.workspaceId) loadChannels().catch(() => {});
  readyBefore = true;
});

gateway.addEventListener('frame', (e) => {
  const frame = e.detail;
  switch (frame.type) {
    case 'message':
      return onEvent(frame);
    case 'ack': {
      timeline(frame.channel_id).acknowledge(frame, api.user.id);
      return redrawIf(frame.channel_id);
    }
    case 'error':
      // A send the server refused for good (the gateway dropped it from its outbox).
      if (frame.nonce && !gateway.outbox.has(frame.nonce)) {
        for (const [id, t] of state.timelines) {
          if (!t.pending.has(frame.nonce)) continue;
          t.failPending(frame.nonce, frame.message);
          redrawIf(id);
        }
      }
      return;
    case 'typing':
      return showTyping(frame);
    case 'resync_required':
      return catchUp(frame.channel_id, frame.after_seq, frame.last_seq);
    default:
  }
});

/** Applies one channel event exactly once (`positions.js` knows which were applied). */
function onEvent(event) {
  const id = event.channel_id;
  if (!gateway.accept(id, event.seq)) return;
  const t = timeline(id);
  const isNew = t.applyEvent(event) && !event.kind;
  if (!event.kind) stopTyping(id, event.author_id);
  const channel = state.channels.get(id);
  if (isNew && event.author_id !== api.user.id && channel && id !== state.activeId) {
    channel.unread_count = (channel.unread_count ?? 0) + 1;
    if ((event.mentions ?? []).includes(api.user.id)) channel.mentions = (channel.mentions ?? 0) + 1;
    drawChannels();
  }
  if (id === state.activeId) {
    const stick = nearBottom();
    drawMessages();
    if (stick) scrollToBottom();
    markRead();
  } else if (state.panel?.channelId === id) {
    drawPanel();
  }
}

function redrawIf(channelId) {
  if (channelId === state.activeId || state.panel?.channelId === channelId) drawMessages();
}

/** Events older than the node's replay buffer: read them from `/events`, in order. */
async function catchUp(channelId, afterSeq, lastSeq) {
  let after = afterSeq;
  while (after < lastSeq) {
    const page = await api.get(`/v1/channels/${channelId}/events?after=${after}&limit=200`);
    if (!page.events.length) break;
    for (const event of page.events) {
      onEvent({ ...event, kind: event.kind === 'message' ? undefined : event.kind });
      after = event.seq;
    }
  }
}

boot();
