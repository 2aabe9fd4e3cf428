#!/usr/bin/env bash
# Builds the Debian package: the desktop app and the `latch` CLI (with its man page, shell
# completions and a systemd user unit for `latch serve`), with Tauri's bundler.
#   scripts/package.sh           release build (what `make package` ships)
#   scripts/package.sh --debug   debug build (the package test in `make test`: faster)
#   ... --version X.Y.Z          another version number (the upgrade test builds an older one)
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
cargo_flags=(--release)
tauri_flags=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --debug) profile=debug; cargo_flags=(); tauri_flags+=(--debug) ;;
    --version) tauri_flags+=(--config "{\"version\":\"$2\"}"); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
staging=target/package/staging
rm -rf "$staging"
mkdir -p "$staging"
cargo build --locked -q "${cargo_flags[@]}" --bin latch
cp "target/$profile/latch" "$staging/latch"
"$staging/latch" man | gzip -9n > "$staging/latch.1.gz"
"$staging/latch" completion bash > "$staging/latch.bash"
"$staging/latch" completion zsh > "$staging/_latch"
"$staging/latch" completion fish > "$staging/latch.fish"
(cd ui && npm run --silent build)
(cd src-tauri && ../ui/node_modules/.bin/tauri build "${tauri_flags[@]}" --bundles deb \
  --config tauri.package.json --ci >&2)
ls -t "$PWD/target/$profile/bundle/deb/"*.deb | head -1
