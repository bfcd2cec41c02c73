// Writing: the message box and the thread's reply box (Enter sends, Shift+Enter is a new line),
// `@Name` mentions, and typing notices (at most one per 3 s, as the protocol forwards no more).

import { gateway, state, timeline } from './app.js';
import { redraw, scrollToBottom } from './channel-view.js';
import { $, newNonce } from './dom.js';
import { encodeMentions } from './render.js';

const TYPING_EVERY_MS = 3000;

export function membersByName() {
  const byName = new Map();
  for (const [id, name] of state.names) byName.set(name.toLowerCase(), id);
  return byName;
}

export function sendText(channelId, text, parentSeq = null) {
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
