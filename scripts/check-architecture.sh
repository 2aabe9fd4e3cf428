#!/usr/bin/env bash
# Architecture invariants (docs/ARCHITECTURE.md): only latch-keychain depends on keyring, only
# latch-desktop on tauri, and the core on neither (nor on an HTTP server framework).
set -euo pipefail
fail=0
only_dependent() { # crate, allowed direct dependent (Tauri's own plugins aside)
  local deps
  deps=$(cargo tree --workspace --locked -e normal -i "$1" --depth 1 --prefix none 2>/dev/null \
    | awk 'NR>1 {print $1}' | sort -u)
  for d in $deps; do
    if [ "$d" != "$2" ] && [[ "$d" != tauri-plugin* ]]; then
      echo "architecture: $d depends on $1; only $2 may" >&2
      fail=1
    fi
  done
}
only_dependent keyring latch-keychain
only_dependent tauri latch-desktop
for banned in keyring tauri axum; do
  if cargo tree -p latch-core --locked -e normal --prefix none 2>/dev/null | grep -q "^$banned v"; then
    echo "architecture: latch-core must not depend on $banned" >&2
    fail=1
  fi
done
# Only ui/src/ipc/index.ts talks to Tauri; the rest of the UI sees the typed Host.
if grep -rlE "@tauri-apps/" ui/src --include='*.ts' --include='*.svelte' | grep -v '^ui/src/ipc/index.ts$'; then
  echo "architecture: only ui/src/ipc/index.ts may import @tauri-apps/*" >&2
  fail=1
fi
exit $fail
