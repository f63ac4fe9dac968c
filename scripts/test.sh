#!/usr/bin/env bash
# Install Embudo with its test tools and run the test suite. Extra arguments go to pytest.
# Runs against SQLite by default; set EMBUDO_DATABASE_URL=postgres://… to run against PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# The page tests drive the system's Chromium (Debian package `chromium`).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium for the page tests…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "The page tests need Chromium: install the 'chromium' package (e.g. sudo apt-get install chromium)." >&2
    exit 1
  fi
fi

exec python3 -m pytest "$@"
