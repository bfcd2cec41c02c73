// Live events from the WebSocket: the connection state, every channel event applied exactly
// once (`positions.js` knows which were), to the channel's timeline whether or not it is on
// screen, and presence (handed to `people.js`).

import { api, gateway, state, timeline } from './app.js';
import { drawMessages, markRead, nearBottom, scrollToBottom, showTyping, stopTyping } from './channel-view.js';
import { $ } from './dom.js';
import { drawPanel } from './panel.js';
import { noticeAuthor, onPresenceFrame, refreshPeople } from './people.js';
import { drawChannels, loadChannels } from './sidebar.js';

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
  if (readyBefore && state.workspaceId) {
    loadChannels().catch(() => {});
    refreshPeople();
  }
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
    case 'presence_subscribed':
    case 'presence':
      return onPresenceFrame(frame);
    default:
  }
});

/** Applies one channel event exactly once (`positions.js` knows which were applied). */
function onEvent(event) {
  const id = event.channel_id;
  if (!gateway.accept(id, event.seq)) return;
  const t = timeline(id);
  const isNew = t.applyEvent(event) && !event.kind;
  if (!event.kind) {
    stopTyping(id, event.author_id);
    noticeAuthor(id, event.author_id);
  }
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
