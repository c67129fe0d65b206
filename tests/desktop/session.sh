#!/usr/bin/env bash
# Runs a command inside a private desktop session: the caller provides the X display
# (xvfb-run) and the D-Bus session bus (dbus-run-session); this adds an unlocked
# gnome-keyring, python3-dbusmock's notification daemon (logging every call) and a
# StatusNotifierWatcher (so the tray registers), then execs the command.
# Usage: session.sh WORKDIR COMMAND...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$1"; shift
export NO_AT_BRIDGE=1
export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_CONFIG_HOME="$work/home/.config"
export XDG_CACHE_HOME="$work/home/.cache" XDG_STATE_HOME="$work/home/.local/state" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
eval "$(printf 'creditbar-test' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
/usr/bin/python3 -m dbusmock --template notification_daemon -l "$work/notifications.log" >/dev/null 2>&1 &
/usr/bin/python3 "$here/sni_watcher.py" serve "$work/sni.jsonl" >"$work/sni.err" 2>&1 &
has_owner() {
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep -q "boolean true"
}
for name in org.freedesktop.Notifications org.kde.StatusNotifierWatcher org.freedesktop.secrets; do
  for _ in $(seq 1 100); do has_owner "$name" && break; sleep 0.1; done
  has_owner "$name" || { echo "session.sh: $name did not appear on the bus" >&2; exit 1; }
done
exec "$@"
