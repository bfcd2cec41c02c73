// Test harness for the browser tests: a real embedded node (the debug `chorus` binary) on free
// ports with its own data directory, and Debian's Chromium driven by playwright-core.
//
// Nothing is stubbed: the page is the one the node serves, it talks to the node's REST API and
// WebSocket gateway, and a restart is a real process stop and start on the same ports and data.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BINARY = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'debug', 'chorus');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A port nobody listens on right now. */
async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export class ChorusNode {
  static async start() {
    if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: build it with \`cargo build -p chorus\``);
    const node = new ChorusNode();
    node.dataDir = mkdtempSync(path.join(tmpdir(), 'chorus-browser-'));
    node.apiPort = await freePort();
    node.wsPort = await freePort();
    await node.launch();
    return node;
  }

  get url() {
    return `http://127.0.0.1:${this.apiPort}/`;
  }

  async launch() {
    this.log = '';
    this.process = spawn(BINARY, [
      'serve',
      '--data-dir', this.dataDir,
      '--api-addr', `127.0.0.1:${this.apiPort}`,
      '--ws-addr', `127.0.0.1:${this.wsPort}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    this.process.stdout.on('data', (d) => (this.log += d));
    this.process.stderr.on('data', (d) => (this.log += d));
    this.exited = new Promise((resolve) => this.process.once('exit', resolve));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.process.exitCode !== null) throw new Error(`chorus exited: ${this.log}`);
      try {
        const response = await fetch(`${this.url}healthz`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`chorus did not start: ${this.log}`);
  }

  /** Graceful stop (SIGTERM): clients are told 4003 and the process exits. */
  async stop() {
    if (this.process.exitCode === null) this.process.kill('SIGTERM');
    await this.exited;
  }

  async restart() {
    await this.stop();
    await this.launch();
  }

  async close() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** One REST call with a bearer token (for seeding data the test is not about). */
  async call(method, urlPath, token, body) {
    const response = await fetch(new URL(urlPath, this.url), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${urlPath}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? null : response.json();
  }
}

/** Debian's Chromium, headless. Playwright gives each launch a fresh temporary profile. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** A fresh browser context (its own storage: one user) whose page refuses anything not local. */
export async function userPage(browser, baseUrl, viewport = { width: 1200, height: 800 }) {
  const context = await browser.newContext({ viewport });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    return ['127.0.0.1', 'localhost'].includes(url.hostname) ? route.continue() : route.abort();
  });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err));
  page.on('dialog', (dialog) => dialog.accept());
  await page.goto(baseUrl);
  return page;
}

// The committed screenshots (docs/screenshots/, linked from the README) are rewritten only when
// asked (CHORUS_UPDATE_SCREENSHOTS=1): a test run must not dirty the checkout. Otherwise they go
// to a scratch directory, so the views are still rendered and captured.
export function screenshotPath(name) {
  const dir = process.env.CHORUS_UPDATE_SCREENSHOTS === '1'
    ? path.join(ROOT, 'docs', 'screenshots')
    : path.join(tmpdir(), 'chorus-screenshots');
  mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
