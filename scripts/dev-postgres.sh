#!/usr/bin/env bash
# A local PostgreSQL with pgvector for development: start | stop | status | url.
# Same as `paperscope dev-postgres ...` (see src/paperscope/devpg.py); prints the URL on start.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/paperscope dev-postgres "${@:-start}"
