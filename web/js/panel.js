// The side panel: a thread (its parent, replies, and a reply box) or search results.

import { api, nameOf, showError, state, timeline } from './app.js';
import { context, openChannel } from './channel-view.js';
import { sendText } from './composer.js';
import { $, h } from './dom.js';
import { renderMessages } from './render.js';

export async function openThread(channelId, seq) {
  state.panel = { kind: 'thread', channelId, seq };
  const page = await api.get(`/v1/channels/${channelId}/messages/${seq}/replies?limit=200`);
  timeline(channelId).addHistory([page.parent, ...page.replies]);
  drawPanel();
  $('thread-text').focus();
}

export function drawPanel() {
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
    showError(err);
  }
});
