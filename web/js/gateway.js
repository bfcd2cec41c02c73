// The WebSocket connection (docs/PROTOCOL.md): identify or resume, heartbeats, reconnects with
// backoff and jitter, and sends that survive the network.
//
// Reliability rests on two numbers the protocol gives us:
// - the last `seq` applied per channel (`positions`, `positions.js`, fed by the app through
//   `accept` as it applies events):
//   after a drop we `resume` with them, or — when the session is gone (4005, or a restarted node)
//   — `identify` again and `subscribe` with `since_seq`, so every missed event is replayed in
//   order; the timeline drops anything it already has, so each shows once;
// - the nonce of every send: a send stays in `outbox` until its `ack` and is sent again, with the
//   same nonce, on every new connection; the server answers a repeat with the original's `ack`
//   (`duplicate: true`), so a message sent while offline appears exactly once.
//
// Presence belongs to the connection, not the session: the list of users followed
// (`presence_subscribe`) and an `idle` activity are said again after every `ready` or `resumed`.
//
// Events: `status` (detail: 'connecting'|'online'|'reconnecting'|'offline'), `frame` (detail: a
// server frame), `ready` (after identify or resume).

import { backoffDelay, closeAction } from './backoff.js';
import { Positions } from './positions.js';

export class Gateway extends EventTarget {
  /**
   * @param api the REST client (`api.js`): the access token, refreshes, and `GET /v1/gateway`.
   */
  constructor(api) {
    super();
    this.api = api;
    this.ws = null;
    this.status = 'offline';
    this.sessionId = null;
    /** per channel: the seq up to which every event was applied */
    this.positions = new Positions();
    /** nonce → send frame, in send order, until acknowledged */
    this.outbox = new Map();
    this.attempt = 0;
    this.ready = false;
    this.stopped = true;
    this.heartbeat = null;
    this.retryTimer = null;
    this.url = null;
    /** the users whose presence we follow (`presence_subscribe`), said again on each connection */
    this.following = [];
    /** this page's `activity`: a new connection starts `active` */
    this.activityState = 'active';
  }

  start() {
    this.stopped = false;
    // Back on the network: try now rather than at the end of a long backoff.
    this.onOnline ??= () => {
      if (!this.stopped && !this.ws) this.connect();
    };
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  /** Closes for good (logout). */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.sessionId = null;
    this.outbox.clear();
    this.positions.clear();
    this.following = [];
    this.activityState = 'active';
    this.ws?.close(1000);
    this.setStatus('offline');
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: status }));
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.setStatus(this.attempt === 0 && !this.sessionId ? 'connecting' : 'reconnecting');
    try {
      this.url ??= await this.discover();
    } catch {
      return this.retry();
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.ready = false;
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  /** The gateway's address: this page's host, the port `GET /v1/gateway` names. */
  async discover() {
    const { port, path } = await this.api.request('GET', '/v1/gateway', undefined, { auth: false });
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.hostname}:${port}${path}`;
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'hello':
        this.startHeartbeat(frame.heartbeat_interval_ms);
        this.authenticate();
        return;
      case 'ready':
        this.sessionId = frame.session_id;
        for (const { channel_id: id, last_seq: last } of frame.channels) {
          const seen = this.positions.get(id);
          // A channel we have followed before: replay what we missed. A new one: start here.
          if (seen === undefined) this.positions.start(id, last);
          else if (seen < last) this.raw({ type: 'subscribe', channel_id: id, since_seq: seen });
        }
        this.online();
        return;
      case 'resumed':
        this.online();
        break;
      case 'subscribed':
        this.positions.start(frame.channel_id, frame.last_seq);
        break;
      case 'ack':
        this.outbox.delete(frame.nonce);
        break;
      case 'error':
        if (frame.nonce && !['unavailable', 'internal', 'rate_limited', 'too_many_in_flight'].includes(frame.code)) {
          // A refusal (too long, forbidden…): sending it again would be refused again.
          this.outbox.delete(frame.nonce);
        } else if (frame.nonce) {
          this.retrySoon(frame.nonce, frame.retry_after_ms ?? 1000);
        }
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
  }

  async authenticate() {
    let token = this.api.token;
    if (!token) return this.stop();
    if (this.api.session.expires_at - Date.now() < 5000) {
      try {
        token = (await this.api.refresh(), this.api.token);
      } catch {
        return this.retry();
      }
    }
    if (this.sessionId) {
      this.raw({ type: 'resume', token, session_id: this.sessionId, channels: this.positions.list() });
    } else {
      this.raw({ type: 'identify', token });
    }
  }

  online() {
    this.ready = true;
    this.attempt = 0;
    this.setStatus('online');
    this.dispatchEvent(new Event('ready'));
    for (const frame of this.outbox.values()) this.raw(frame);
    if (this.following.length) this.raw({ type: 'presence_subscribe', user_ids: this.following });
    if (this.activityState !== 'active') this.raw({ type: 'activity', state: this.activityState });
  }

  async closed(ws, code) {
    if (ws !== this.ws) return;
    clearInterval(this.heartbeat);
    this.ready = false;
    this.ws = null;
    if (this.stopped) return;
    const action = closeAction(code);
    if (action === 'identify') {
      // The server is up and answered: no reason to wait long before identifying.
      this.sessionId = null;
      this.attempt = 0;
    }
    if (action === 'stop') {
      this.setStatus('offline');
      return;
    }
    if (action === 'refresh') {
      try {
        await this.api.refresh();
      } catch {
        // Logged out or the refresh token is gone: the app shows the login form.
        this.setStatus('offline');
        return;
      }
    }
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    this.setStatus('reconnecting');
    const delay = backoffDelay(this.attempt++);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Drops the current connection as a network failure would (used by the tests, and after sleep). */
  drop() {
    this.ws?.close(4000);
  }

  startHeartbeat(intervalMs) {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.raw({ type: 'heartbeat' }), Math.max(1000, intervalMs / 2));
  }

  /** Sends a message. The frame waits in the outbox until its ack, and is resent on every new connection. */
  send(channelId, nonce, text, parentSeq = null) {
    const frame = { type: 'send', channel_id: channelId, nonce, text };
    if (parentSeq != null) frame.parent_seq = parentSeq;
    this.outbox.set(nonce, frame);
    if (this.ready) this.raw(frame);
  }

  retrySoon(nonce, afterMs) {
    setTimeout(() => {
      const frame = this.outbox.get(nonce);
      if (frame && this.ready) this.raw(frame);
    }, afterMs);
  }

  typing(channelId) {
    if (this.ready) this.raw({ type: 'typing', channel_id: channelId });
  }

  /** Follows these users' presence instead of the previous list (at most 100, `presence.js`). */
  follow(userIds) {
    const same = userIds.length === this.following.length && userIds.every((id, i) => id === this.following[i]);
    this.following = userIds;
    if (!same && this.ready) this.raw({ type: 'presence_subscribe', user_ids: userIds });
  }

  /** This page is `active` or `idle`; said only when it changes (no answer comes). */
  activity(state) {
    if (state === this.activityState) return;
    this.activityState = state;
    if (this.ready) this.raw({ type: 'activity', state });
  }

  /** Follows a channel just created or joined: live events from now on (history comes over REST). */
  subscribe(channelId) {
    if (!this.ready) return; // the next `ready` lists it
    const since = this.positions.get(channelId);
    this.raw(since === undefined ? { type: 'subscribe', channel_id: channelId } : { type: 'subscribe', channel_id: channelId, since_seq: since });
  }

  /** True if this event is new (the app applies it); an event seen before answers false. */
  accept(channelId, seq) {
    return this.positions.accept(channelId, seq);
  }

  raw(frame) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }
}
