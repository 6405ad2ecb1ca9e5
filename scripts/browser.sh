#!/usr/bin/env bash
# Make sure the browser the UI tests drive is installed: Debian's Chromium at /usr/bin/chromium
# (Playwright drives it through `executable_path`; no browser is downloaded from elsewhere).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! [ -x /usr/bin/chromium ]; then
  echo "browser: installing Chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
have chromium || { echo "browser: chromium is not on PATH" >&2; exit 1; }
echo "browser: $(chromium --version 2>/dev/null || echo chromium)"
