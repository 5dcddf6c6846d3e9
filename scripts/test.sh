#!/usr/bin/env bash
# The README's test command: sets up the checkout (including the servers and
# clients the tests drive) and runs every package's tests and the e2e suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec node scripts/run-tests.mjs "$@"
