#!/usr/bin/env bash
# Browser tests of the web client (web/): Playwright (playwright-core, from npm) drives Debian's
# Chromium against a real node started from the debug `chorus` binary. Run by scripts/test.sh;
# on its own: `scripts/browser-tests.sh` (after `cargo build -p chorus`).
#
# A fresh machine gets what it lacks — Chromium with apt-get, the npm packages with `npm ci` from
# the committed package-lock.json — and anything that cannot be installed is a failure, never a
# skip. Nothing the tests load comes from outside the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Chromium, and a colour emoji font so reactions render in the screenshots under docs/.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "error: /usr/bin/chromium is missing and could not be installed" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: Node.js and npm are needed for the browser tests (apt-get install nodejs npm)" >&2
  exit 1
fi

cd tests/browser
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}"
exec node --test --test-concurrency=1 --test-reporter=spec unit.test.js chat.test.js
