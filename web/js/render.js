// DOM for the two lists the app redraws: the channel sidebar and a list of messages (the channel,
// or a thread). Rendering is a function of state; event handlers are passed in by `main.js`.

import { clock, h } from './dom.js';

/** The sidebar's "Channels" (member of) and "Other channels" (joinable) lists. */
export function renderChannels(listEl, browseEl, channels, activeId, { open, join }) {
  const mine = [...channels.values()].filter((c) => c.is_member && !c.is_archived).sort(byName);
  const others = [...channels.values()].filter((c) => !c.is_member && !c.is_archived && c.kind === 'public').sort(byName);
  listEl.replaceChildren(
    ...mine.map((c) => {
      const unread = c.unread_count ?? 0;
      const label = [`${c.label ?? c.name}`, unread ? `${unread} unread` : '', c.mentions ? `${c.mentions} mention${c.mentions === 1 ? '' : 's'}` : '']
        .filter(Boolean)
        .join(', ');
      return h('li', {},
        h('button', { type: 'button', 'aria-current': c.id === activeId ? 'true' : 'false', 'aria-label': label,
          className: unread ? 'unread' : '', dataset: { channel: c.name }, onclick: () => open(c.id) },
        h('span', {}, prefix(c), c.label ?? c.name),
        h('span', {},
          c.mentions ? h('span', { className: 'badge mention', 'aria-hidden': 'true' }, `@${c.mentions}`) : null,
          unread ? h('span', { className: 'badge', 'aria-hidden': 'true' }, unread > 999 ? '999+' : unread) : null)));
    }),
  );
  browseEl.replaceChildren(
    ...others.map((c) => h('li', {}, h('button', { type: 'button', dataset: { join: c.name }, onclick: () => join(c.id) }, `Join #${c.name}`))),
  );
  if (!others.length) browseEl.append(h('li', { className: 'empty' }, 'none'));
}

function prefix(channel) {
  return channel.kind === 'private' ? '🔒 ' : channel.kind === 'dm' ? '@ ' : '# ';
}

function byName(a, b) {
  return (a.label ?? a.name).localeCompare(b.label ?? b.name);
}

/**
 * One message list. `messages` are timeline messages, `pending` our unacknowledged sends;
 * `actions` has edit, remove, react, thread, retry callbacks (thread is omitted inside a thread).
 */
export function renderMessages(listEl, messages, pending, ctx) {
  const items = messages.map((m) => messageItem(m, ctx));
  for (const p of pending) {
    items.push(h('li', { className: `message ${p.state}`, dataset: { nonce: p.nonce, state: p.state } },
      h('div', { className: 'meta' }, h('span', { className: 'author' }, ctx.me.display_name),
        p.state === 'failed' ? `not sent: ${p.error}` : 'sending…'),
      h('div', { className: 'text' }, p.text),
      p.state === 'failed' ? h('div', { className: 'actions' }, h('button', { type: 'button', onclick: () => ctx.retry(p) }, 'Retry')) : null));
  }
  listEl.replaceChildren(...items);
}

function messageItem(m, ctx) {
  const mine = m.authorId === ctx.me.id;
  const name = ctx.name(m.authorId);
  const classes = ['message', m.deleted ? 'deleted' : '', m.mentions.includes(ctx.me.id) ? 'mention-me' : ''].join(' ');
  const editing = ctx.editing === m.seq;
  const reactions = [...m.reactions].map(([emoji, users]) =>
    h('button', { type: 'button', className: 'reaction', 'aria-pressed': users.includes(ctx.me.id) ? 'true' : 'false',
      'aria-label': `${emoji} ${users.length}, by ${users.map(ctx.name).join(', ')}`, dataset: { emoji },
      onclick: () => ctx.react(m, emoji, users.includes(ctx.me.id)) }, `${emoji} ${users.length}`));
  const actions = m.deleted ? [] : [
    h('button', { type: 'button', 'aria-label': `React 👍 to ${name}'s message`, onclick: () => ctx.react(m, '👍', (m.reactions.get('👍') ?? []).includes(ctx.me.id)) }, '👍'),
    ctx.thread ? h('button', { type: 'button', className: 'reply', onclick: () => ctx.thread(m) }, m.replyCount ? `${m.replyCount} ${m.replyCount === 1 ? 'reply' : 'replies'}` : 'Reply') : null,
    mine ? h('button', { type: 'button', className: 'edit', onclick: () => ctx.startEdit(m) }, 'Edit') : null,
    mine ? h('button', { type: 'button', className: 'delete', onclick: () => ctx.remove(m) }, 'Delete') : null,
  ];
  const body = editing
    ? h('form', { className: 'edit-form', onsubmit: (e) => { e.preventDefault(); ctx.saveEdit(m, e.target.elements.text.value); } },
      h('label', { className: 'sr-only', for: `edit-${m.seq}` }, 'Edit message'),
      h('textarea', { id: `edit-${m.seq}`, name: 'text', rows: 2, maxlength: 4000, onkeydown: (e) => { if (e.key === 'Escape') ctx.startEdit(null); } }, m.text),
      h('div', { className: 'actions' }, h('button', { type: 'submit' }, 'Save'), h('button', { type: 'button', onclick: () => ctx.startEdit(null) }, 'Cancel')))
    : h('div', { className: 'text' }, m.deleted ? 'message deleted' : withMentions(m.text, ctx.name));
  return h('li', { className: classes, dataset: { seq: m.seq } },
    h('div', { className: 'meta' },
      h('span', { className: 'author' }, name),
      h('time', { datetime: m.createdAt }, clock(m.createdAt)),
      m.edited && !m.deleted ? ' (edited)' : ''),
    body,
    reactions.length ? h('div', { className: 'actions reactions' }, reactions) : null,
    h('div', { className: 'actions' }, actions));
}

const MENTION = /<@([0-9a-f-]{36})>/g;

/** Text with each `<@user-id>` shown as `@Name`; the text's `textContent` keeps the names. */
export function withMentions(text, name) {
  const parts = [];
  let at = 0;
  for (const match of text.matchAll(MENTION)) {
    parts.push(text.slice(at, match.index), h('span', { className: 'mention' }, `@${name(match[1])}`));
    at = match.index + match[0].length;
  }
  parts.push(text.slice(at));
  return parts;
}

/** What the user typed, with `@Name` of a workspace member (a name without spaces) as `<@user-id>`. */
export function encodeMentions(text, members) {
  return text.replace(/(^|\s)@([\p{L}\p{N}_.-]+)/gu, (whole, space, typed) => {
    const id = members.get(typed.toLowerCase());
    return id ? `${space}<@${id}>` : whole;
  });
}
