#!/usr/bin/env bash
# The main job on a fresh machine, on the embedded store: install, then `creditgraph demo`.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
ensure_venv
exec .venv/bin/creditgraph demo "$@"
