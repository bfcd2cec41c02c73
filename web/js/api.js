// The REST client (docs/openapi.json): JSON in and out, the access token on every call, and the
// session's tokens kept fresh.
//
// Tokens live in localStorage so a reload stays logged in. The access token is refreshed a minute
// before it expires (`expires_in`), and once more on a 401 `token_expired` (a laptop that slept
// past the timer); refresh tokens are single-use, so one refresh runs at a time.

const STORAGE_KEY = 'chorus.session';
const REFRESH_MARGIN_MS = 60_000;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export class Api extends EventTarget {
  constructor(base = '') {
    super();
    this.base = base;
    /** {access_token, refresh_token, expires_at, session_id, user} or null */
    this.session = load();
    this.refreshing = null;
    this.timer = null;
    if (this.session) this.schedule();
  }

  get user() {
    return this.session?.user ?? null;
  }

  get token() {
    return this.session?.access_token ?? null;
  }

  async register(email, password, displayName) {
    await this.request('POST', '/v1/auth/register', { email, password, display_name: displayName || null }, { auth: false });
    return this.login(email, password);
  }

  async login(email, password) {
    const tokens = await this.request('POST', '/v1/auth/login', { email, password }, { auth: false });
    this.adopt(tokens);
    return tokens.user;
  }

  async logout() {
    try {
      if (this.session) await this.request('POST', '/v1/auth/logout', undefined, { retry: false });
    } finally {
      this.forget();
    }
  }

  /** Trades the refresh token for new tokens; shared by concurrent callers. */
  refresh() {
    if (!this.session) return Promise.reject(new ApiError(401, 'unauthenticated', 'not logged in'));
    this.refreshing ??= this.request('POST', '/v1/auth/refresh', { refresh_token: this.session.refresh_token }, { auth: false })
      .then((tokens) => this.adopt(tokens))
      .catch((err) => {
        if (err.status === 401) this.forget();
        throw err;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  adopt(tokens) {
    this.session = {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_at: Date.now() + tokens.expires_in * 1000,
      session_id: tokens.session_id,
      user: tokens.user,
    };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.session));
    this.schedule();
    this.dispatchEvent(new Event('session'));
  }

  forget() {
    clearTimeout(this.timer);
    this.session = null;
    localStorage.removeItem(STORAGE_KEY);
    this.dispatchEvent(new Event('session'));
  }

  schedule() {
    clearTimeout(this.timer);
    const wait = Math.max(0, this.session.expires_at - Date.now() - REFRESH_MARGIN_MS);
    this.timer = setTimeout(() => this.refresh().catch(() => {}), wait);
  }

  /** One call. `auth: false` for the credential endpoints; `retry: false` to skip the refresh-and-retry. */
  async request(method, path, body, { auth = true, retry = true } = {}) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    const response = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const code = data?.error?.code;
    if (auth && retry && response.status === 401 && code === 'token_expired') {
      await this.refresh();
      return this.request(method, path, body, { auth, retry: false });
    }
    if (auth && response.status === 401) this.forget();
    throw new ApiError(response.status, code, data?.error?.message);
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body);
  }
}

function load() {
  try {
    const session = JSON.parse(localStorage.getItem(STORAGE_KEY));
    return session?.refresh_token ? session : null;
  } catch {
    return null;
  }
}
