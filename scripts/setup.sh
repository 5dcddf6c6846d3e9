#!/usr/bin/env bash
# Sets up a checkout of gatehouse on a fresh machine: pnpm, the system
# packages the tests drive (only with --test, only when root and missing),
# the workspace's dependencies, and the build. Safe to run again.
#
#   bash scripts/setup.sh          # for the demo
#   bash scripts/setup.sh --test   # also the servers and clients the tests use
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
want_test=false
[[ "${1:-}" == "--test" ]] && want_test=true

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# Node.js >= 20.19 is the one thing we do not install.
node_version=$(node --version 2>/dev/null || true)
if [[ ! "$node_version" =~ ^v([0-9]+)\.([0-9]+) ]] || (( BASH_REMATCH[1] < 20 || (BASH_REMATCH[1] == 20 && BASH_REMATCH[2] < 19) )); then
  say "gatehouse needs Node.js >= 20.19 (found: ${node_version:-none})"; exit 1
fi

if [[ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]]; then
  say "installing pnpm@$PNPM_VERSION with npm"
  npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >&2
fi

if $want_test; then
  # command -> Debian package that provides it
  declare -A wanted=(
    [psql]=postgresql-client [pgbench]=postgresql-client
    [/usr/lib/postgresql/15/bin/initdb]=postgresql
    [mariadb]=mariadb-client [mariadb-dump]=mariadb-client [mysqlslap]=mariadb-client
    [mariadb-install-db]=mariadb-server [/usr/sbin/mariadbd]=mariadb-server
    [tmux]=tmux
    [ssh]=openssh-client [scp]=openssh-client [sftp]=openssh-client [ssh-keygen]=openssh-client [/usr/sbin/sshd]=openssh-server
    [rsync]=rsync [asciinema]=asciinema
    [/usr/sbin/haproxy]=haproxy
    # the web console's browser tests (e2e/test/console.test.ts) drive it headless with playwright-core
    [/usr/bin/chromium]=chromium
  )
  missing=()
  for cmd in "${!wanted[@]}"; do
    if [[ "$cmd" == /* ]]; then [[ -x "$cmd" ]] || missing+=("${wanted[$cmd]}")
    else command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}"); fi
  done
  if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      say "installing system packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      # Installing a server package must not start (or fail to start) a service here.
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
      rm -f /usr/sbin/policy-rc.d
    else
      say "missing system packages (${missing[*]}); tests that need them will be skipped with a reason"
    fi
  fi
fi

say "installing dependencies"
pnpm install --frozen-lockfile --reporter=append-only >&2
say "building"
pnpm run --silent build --output-logs=errors-only >&2
