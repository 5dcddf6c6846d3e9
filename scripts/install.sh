#!/usr/bin/env bash
# Puts a `gatehouse` command on PATH that runs this checkout's build, so the
# commands in the docs work from any directory (not only through
# `pnpm gatehouse` at the repository root).
#
#   bash scripts/install.sh            # into ~/.local/bin
#   bash scripts/install.sh /usr/local # into /usr/local/bin (PREFIX/bin)
#
# It writes a two-line wrapper rather than a symlink so that a rebuild (which
# rewrites dist/main.js without its execute bit) keeps it working. Run
# `bash scripts/setup.sh` (or `pnpm install && pnpm build`) first.
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-${PREFIX:-$HOME/.local}}
main="$checkout/packages/cli/dist/main.js"

if [[ ! -f "$main" ]]; then
  echo "install: $main is missing; build first: bash scripts/setup.sh (or pnpm install && pnpm build)" >&2
  exit 1
fi
node=$(command -v node) || { echo "install: no node on PATH" >&2; exit 1; }

mkdir -p "$prefix/bin"
target="$prefix/bin/gatehouse"
printf '#!/usr/bin/env bash\nexec %q %q "$@"\n' "$node" "$main" > "$target.tmp"
chmod 755 "$target.tmp"
mv "$target.tmp" "$target"
echo "installed $target" >&2
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: $prefix/bin is not on PATH; add it: export PATH=\"$prefix/bin:\$PATH\"" >&2 ;;
esac
