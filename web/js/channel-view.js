// The open channel: its history (the newest page, then older pages as you scroll up), live
// updates, the actions on each message, the read position, and who is typing (who is in it,
// with their presence: `people.js`).

import { api, gateway, nameOf, showError, state, timeline } from './app.js';
import { $ } from './dom.js';
import { drawPanel, openThread } from './panel.js';
import { drawPeople, showPeople } from './people.js';
import { renderMessages } from './render.js';
import { drawChannels } from './sidebar.js';

const PAGE = 50;

export async function openChannel(id) {
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
  showPeople(id).catch(() => {});
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
export function closeChannel() {
  state.activeId = null;
  $('channel-title').textContent = 'Pick or create a channel';
  $('channel-topic').textContent = '';
  $('channel-tools').hidden = true;
  $('message-list').replaceChildren();
  $('history-status').textContent = '';
  $('composer-text').disabled = $('send-button').disabled = true;
  showPeople(null).catch(() => {});
  drawChannels();
}

export function drawMessages() {
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

export function context(channelId, withThreads) {
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
      await api.request('PATCH', `/v1/channels/${channelId}/messages/${m.seq}`, { text }).catch(showError);
      redraw();
    },
    remove: async (m) => {
      if (!confirm('Delete this message?')) return;
      await api.request('DELETE', `/v1/channels/${channelId}/messages/${m.seq}`).catch(showError);
    },
    react: (m, emoji, mine) => {
      const path = `/v1/channels/${channelId}/messages/${m.seq}/reactions/${encodeURIComponent(emoji)}`;
      api.request(mine ? 'DELETE' : 'PUT', path).catch(showError);
    },
    retry: (p) => {
      p.state = 'pending';
      gateway.send(channelId, p.nonce, p.text, p.parentSeq);
      redraw();
    },
  };
}

/** Everything that shows names or messages (after a name is learnt, an edit…). */
export function redraw() {
  drawMessages();
  drawPeople();
}

export function nearBottom() {
  const el = $('messages');
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

export function scrollToBottom() {
  const el = $('messages');
  el.scrollTop = el.scrollHeight;
}

let readTimer = null;
export function markRead() {
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
    showError(err);
  } finally {
    state.loadingOlder = false;
  }
});


export function showTyping(frame) {
  if (frame.user_id === api.user.id) return;
  const who = state.typing.get(frame.channel_id) ?? new Map();
  state.typing.set(frame.channel_id, who);
  clearTimeout(who.get(frame.user_id));
  who.set(frame.user_id, setTimeout(() => stopTyping(frame.channel_id, frame.user_id), frame.expires_in_ms));
  drawTyping();
}

export function stopTyping(channelId, userId) {
  const who = state.typing.get(channelId);
  if (!who?.has(userId)) return;
  clearTimeout(who.get(userId));
  who.delete(userId);
  drawTyping();
}

export function drawTyping() {
  const who = [...(state.typing.get(state.activeId)?.keys() ?? [])].map(nameOf);
  $('typing').textContent = who.length === 0 ? '' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
}

