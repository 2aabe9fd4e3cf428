#!/usr/bin/env bash
# Runs a command against a real, private Secret Service: a fresh D-Bus session bus with an
# unlocked gnome-keyring-daemon whose keyrings live in a temp folder. Nothing of the user's own
# keyring is touched. Used by `make test` and the end-to-end tests.
set -euo pipefail

if [ -z "${LATCH_KEYRING_SESSION:-}" ]; then
  export LATCH_KEYRING_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi

state=$(mktemp -d)
chmod 700 "$state"
export XDG_DATA_HOME="$state/data" XDG_RUNTIME_DIR="$state/run" XDG_CONFIG_HOME="$state/config"
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

# The password only protects this throwaway keyring.
printf '%s' "latch-test-keyring" | gnome-keyring-daemon --unlock --components=secrets >/dev/null

owner_pid() {
  dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
    org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null \
    | awk '/uint32/ {print $2}'
}

# Wait (bounded) until the daemon owns org.freedesktop.secrets on this bus.
pid=""
for _ in $(seq 1 200); do
  pid=$(owner_pid || true)
  [ -n "$pid" ] && break
  sleep 0.05
done
if [ -z "$pid" ]; then
  echo "with-keyring: gnome-keyring-daemon did not claim org.freedesktop.secrets" >&2
  exit 1
fi
# The daemon outlives the bus session: stop it ourselves.
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$state"' EXIT

export LATCH_TEST_SECRET_SERVICE=1
"$@"
