// The web client's entry point: logging in and out, then the app (`app.js` state, `sidebar.js`,
// `channel-view.js`, `composer.js`, `panel.js`, `people.js` for presence, and `live.js` for the
// WebSocket's events).
//
// Every module speaks only the documented REST API (`api.js`) and WebSocket protocol
// (`gateway.js`).

import { api, gateway, state } from './app.js';
import { $ } from './dom.js';
import './composer.js';
import './live.js';
import './panel.js';
import { showPeople } from './people.js';
import { acceptInviteFromLink, loadWorkspaces } from './sidebar.js';

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
  state.presence.clear();
  state.people = { channelId: null, ids: [], total: 0 };
  state.activeId = null;
});

async function enterApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('me-name').textContent = api.user.display_name;
  gateway.start();
  showPeople(null).catch(() => {}); // oneself, until a channel opens
  const invited = await acceptInviteFromLink();
  await loadWorkspaces(invited ?? undefined);
}


$('menu-button').addEventListener('click', () => {
  const open = $('sidebar').classList.toggle('open');
  $('menu-button').setAttribute('aria-expanded', String(open));
});

boot();
