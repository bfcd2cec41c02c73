// The sidebar: workspaces (pick, create, add a member, open a DM), the channel list with its
// unread and mention badges, channels to join or create, and the open channel's settings.

import { api, gateway, nameOf, showError, state } from './app.js';
import { openChannel, closeChannel } from './channel-view.js';
import { $, h } from './dom.js';
import { renderChannels } from './render.js';

export async function loadWorkspaces(pick) {
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

export async function selectWorkspace(id) {
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

export async function loadChannels() {
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
export async function labelDm(channel) {
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

export function drawChannels() {
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
  const email = $('invite-email').value;
  try {
    await api.post(`/v1/workspaces/${state.workspaceId}/members`, { email });
    $('sidebar-error').textContent = `Added ${email}`;
    $('invite-email').value = '';
    await selectWorkspace(state.workspaceId);
  } catch (err) {
    if (err.code !== 'user_not_found') return showSidebarError(err);
    // No account yet: an invitation, whose link they open after registering with that address.
    try {
      const created = await api.post(`/v1/workspaces/${state.workspaceId}/invites`, { email });
      const link = `${location.origin}/#invite=${encodeURIComponent(created.token)}`;
      $('invite-link').value = link;
      $('invite-result').hidden = false;
      $('sidebar-error').textContent = `${email} has no account yet: send them the invitation link.`;
      $('invite-email').value = '';
    } catch (inviteErr) {
      showSidebarError(inviteErr);
    }
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

export async function joinChannel(id) {
  try {
    await api.post(`/v1/channels/${id}/join`);
    gateway.subscribe(id);
    await loadChannels();
    await openChannel(id);
  } catch (err) {
    showSidebarError(err);
  }
}

export function showSidebarError(err) {
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
    showError(err);
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
      showError(err);
    }
  });
}

/** Opened from an invitation link (`/#invite=TOKEN`): join that workspace once logged in. */
export async function acceptInviteFromLink() {
  const token = new URLSearchParams(location.hash.slice(1)).get('invite');
  if (!token) return null;
  history.replaceState(null, '', location.pathname);
  try {
    const accepted = await api.post('/v1/invites/accept', { token });
    return accepted?.id ?? null;
  } catch (err) {
    showSidebarError(err);
    return null;
  }
}
