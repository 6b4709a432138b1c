#!/usr/bin/env bash
# Sourced by the other scripts: makes .venv with the project installed (re-installs only when
# pyproject.toml changed) and, with `need_java`, a Java 17/21 and Maven for the local Neo4j;
# `need_chromium` installs the system's Chromium for the browser tests (tests/e2e).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

_python311() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  # Debian 12's own Python is 3.11; install it (with venv support) when none is on PATH.
  _apt_install python3.11 python3.11-venv >&2
  command -v python3.11
}

# jemalloc for the batch commands (creditgraph re-executes train/score under it when present,
# src/creditgraph/entry.py): 2-3x faster full-batch epochs than glibc's allocator. Optional:
# without root or apt the product still runs, only slower.
ensure_jemalloc() {
  for lib in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
             /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2; do
    [ -e "$lib" ] && return 0
  done
  if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; }; then
    _apt_install libjemalloc2 >&2 || echo "warning: libjemalloc2 not installed; training runs slower" >&2
  else
    echo "warning: install jemalloc (libjemalloc2) for 2-3x faster training" >&2
  fi
}

ensure_venv() {
  local py stamp want
  ensure_jemalloc
  py="$(_python311)"
  [ -x "$ROOT/.venv/bin/python" ] || "$py" -m venv "$ROOT/.venv"
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
  stamp="$ROOT/.venv/.creditgraph-installed"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip
    "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[dev]"
    echo "$want" >"$stamp"
  fi
}

need_java() {
  local ok=""
  for j in "${JAVA_HOME:-}" /usr/lib/jvm/java-21-openjdk-* /usr/lib/jvm/java-17-openjdk-*; do
    [ -n "$j" ] && [ -x "$j/bin/java" ] && "$j/bin/java" -version 2>&1 | grep -qE 'version "(17|21)\.' && ok=1 && break
  done
  [ -n "$ok" ] || _apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || _apt_install maven
}

# The browser tests drive Debian's Chromium through Playwright's library (no browser download).
need_chromium() {
  [ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null || _apt_install chromium
}
