#!/bin/sh
# Installs wisp-agent on a VM (docs/install-agent.md): the single-file binary, the systemd unit, a config
# skeleton and the wisp-agent system user. Every path it creates is recorded in a manifest, and
# --uninstall removes exactly those (config and state stay unless --purge).
#
#   deploy/install-agent.sh [--binary FILE] [--prefix DIR] [--root DIR]     (again: an upgrade)
#   deploy/install-agent.sh --uninstall [--purge] [--prefix DIR] [--root DIR]
#
# --binary  the executable to install (default: dist/bin/wisp-agent of this checkout, from
#           `npm run build:agent-binary`, else ./wisp-agent next to this script)
# --prefix  where the binary goes: PREFIX/bin/wisp-agent (default /usr/local; the unit expects /usr/local)
# --root    install into this directory instead of / (an image being built, a test); no systemctl then
# --purge   with --uninstall: also remove /etc/wisp/agent.json, /etc/wisp/agent.env, the state directory
#           /var/lib/wisp-agent (the node's keys and SVID cache) and the user, if this script created them
set -eu
umask 022

ROOT=/
PREFIX=/usr/local
BINARY=
MODE=install
PURGE=no
USER_NAME=wisp-agent

die() { echo "install-agent: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --binary) [ $# -ge 2 ] || die "--binary needs a file"; BINARY=$2; shift 2 ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=yes; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$PREFIX" in /*) ;; *) die "--prefix must be absolute: $PREFIX" ;; esac
[ -d "$ROOT" ] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd)
[ "$ROOT" = / ] && R= || R=$ROOT
[ "$PURGE" = no ] || [ "$MODE" = uninstall ] || die "--purge goes with --uninstall"

BIN=$PREFIX/bin/wisp-agent
UNIT=/etc/systemd/system/wisp-agent.service
CONFIG_DIR=/etc/wisp
CONFIG=$CONFIG_DIR/agent.json
ENV_FILE=$CONFIG_DIR/agent.env
STATE_DIR=/var/lib/wisp-agent
# the manifest: one "kind path" line per thing this script created (kinds: file, config, dir, user, group)
MANIFEST=/var/lib/wisp-agent-install/manifest
HERE=$(cd "$(dirname "$0")" && pwd)

# systemctl only on the live system, and only when systemd runs it
systemd_live() { [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

record() { grep -qx "$1 $2" "$R$MANIFEST.new" || echo "$1 $2" >> "$R$MANIFEST.new"; }

# mkdir -p that records each directory it creates (0755), parents first
make_dirs() {
  [ -d "$R$1" ] && return 0
  parent=$(dirname "$1")
  [ "$parent" = "$1" ] || make_dirs "$parent"
  mkdir "$R$1" && chmod 0755 "$R$1" && record dir "$1"
}

# user databases of the target root: useradd/userdel --prefix edit ROOT/etc/passwd etc. without chroot
prefix_args() { [ -n "$R" ] && printf '%s\n' "--prefix" "$R" || true; }
user_exists() { grep -q "^$USER_NAME:" "$R/etc/passwd" 2>/dev/null; }
group_id() { awk -F: -v n="$USER_NAME" '$1 == n { print $3 }' "$R/etc/group"; }

install_agent() {
  [ "$(id -u)" = 0 ] || die "run as root (it creates a system user and writes under /etc)"
  if [ -z "$BINARY" ]; then
    for candidate in "$HERE/../dist/bin/wisp-agent" "$HERE/wisp-agent"; do
      [ -f "$candidate" ] && BINARY=$candidate && break
    done
  fi
  [ -n "$BINARY" ] && [ -f "$BINARY" ] || die "no binary: give --binary FILE (npm run build:agent-binary builds dist/bin/wisp-agent)"
  [ -f "$HERE/systemd/wisp-agent.service" ] || die "deploy/systemd/wisp-agent.service is missing next to this script"
  [ -f "$R/etc/passwd" ] || die "$R/etc/passwd is missing: --root must be a system root"

  # again over an install (an upgrade), or after an uninstall that kept config and user: those stay recorded
  upgrade=no
  grep -q '^file ' "$R$MANIFEST" 2>/dev/null && upgrade=yes
  manifest_dir=$(dirname "$MANIFEST")
  if [ -d "$R$manifest_dir" ]; then
    if [ -f "$R$MANIFEST" ]; then cp "$R$MANIFEST" "$R$MANIFEST.new"; else : > "$R$MANIFEST.new"; fi
  else
    # its own parents are recorded once the manifest can be written
    created=
    d=$manifest_dir
    while [ ! -d "$R$d" ]; do created="$d $created"; d=$(dirname "$d"); done
    mkdir -p "$R$manifest_dir"
    : > "$R$MANIFEST.new"
    for d in $created; do chmod 0755 "$R$d"; record dir "$d"; done
  fi

  if ! user_exists; then
    new_group=no
    if [ -n "$(group_id)" ]; then group_args="--gid $USER_NAME"; else group_args=--user-group; new_group=yes; fi
    # shellcheck disable=SC2046,SC2086
    useradd $(prefix_args) --system $group_args --no-create-home --home-dir "$STATE_DIR" --shell /usr/sbin/nologin \
      --comment "Wisp agent" "$USER_NAME"
    record user "$USER_NAME" # before its group: --purge deletes them in this order
    [ "$new_group" = no ] || record group "$USER_NAME"
  fi
  gid=$(group_id)
  [ -n "$gid" ] || die "group $USER_NAME not found in $R/etc/group"

  make_dirs "$PREFIX/bin"
  make_dirs /etc/systemd/system
  install -m 0755 "$BINARY" "$R$BIN.new" && mv -f "$R$BIN.new" "$R$BIN"
  record file "$BIN"
  sed "s|^ExecStart=/usr/local/bin/wisp-agent |ExecStart=$BIN |" "$HERE/systemd/wisp-agent.service" > "$R$UNIT.new"
  chmod 0644 "$R$UNIT.new" && mv -f "$R$UNIT.new" "$R$UNIT"
  record file "$UNIT"

  make_dirs "$CONFIG_DIR"
  if [ -e "$R$CONFIG" ]; then
    echo "install-agent: keeping the existing $CONFIG"
  else
    # a skeleton: serverUrl and trustDomain must be edited; the node attestor too (join token: agent.env)
    cat > "$R$CONFIG" <<'JSON'
{
  "serverUrl": "https://wisp.example.workers.dev",
  "trustDomain": "example.org",
  "dataDir": "/var/lib/wisp-agent",
  "socketPath": "/run/wisp-agent/api.sock",
  "logLevel": "info"
}
JSON
    chown "0:$gid" "$R$CONFIG" && chmod 0640 "$R$CONFIG"
    record config "$CONFIG"
  fi
  # the manifest itself last: a failed install leaves manifest.new, which --uninstall also reads
  mv -f "$R$MANIFEST.new" "$R$MANIFEST"

  if systemd_live; then
    systemctl daemon-reload
    [ "$upgrade" = no ] || systemctl try-restart wisp-agent.service
  fi
  echo "install-agent: installed $BIN, $UNIT and $CONFIG${R:+ under $R}"
  echo "install-agent: next: edit $CONFIG (docs/install-agent.md), then: systemctl enable --now wisp-agent"
}

uninstall_agent() {
  [ "$(id -u)" = 0 ] || die "run as root"
  manifest=$R$MANIFEST
  [ -f "$manifest" ] || manifest=$R$MANIFEST.new
  [ -f "$manifest" ] || die "nothing to uninstall: $MANIFEST not found${R:+ under $R}"
  lines=$(cat "$manifest")
  if systemd_live; then systemctl disable --now wisp-agent.service 2>/dev/null || true; fi
  printf '%s\n' "$lines" | while read -r kind path; do
    case "$kind" in
      file) rm -f "$R$path" ;;
      config) if [ "$PURGE" = yes ]; then rm -f "$R$path"; else echo "install-agent: keeping $path (--purge removes it)"; fi ;;
      user)
        if [ "$PURGE" = yes ]; then
          # shellcheck disable=SC2046
          userdel $(prefix_args) "$path"
        else
          echo "install-agent: keeping the user $path (it owns the state directory; --purge removes it)"
        fi ;;
      group)
        # userdel removes the user's group only where login.defs says USERGROUPS_ENAB
        # shellcheck disable=SC2046
        if [ "$PURGE" = yes ] && [ -n "$(group_id)" ]; then groupdel $(prefix_args) "$path"; fi ;;
    esac
  done
  if [ "$PURGE" = yes ]; then rm -rf "$R$ENV_FILE" "$R$STATE_DIR"; fi
  rm -f "$R$MANIFEST" "$R$MANIFEST.new"
  # what is kept stays recorded, so a later --purge (or install) still knows this script created it
  kept=
  [ "$PURGE" = yes ] || kept=$(printf '%s\n' "$lines" | grep -E '^(config|user|group) ' || true)
  [ -z "$kept" ] || printf '%s\n%s\n' "$kept" "$(printf '%s\n' "$lines" | grep '^dir ')" > "$R$MANIFEST"
  # directories deepest first (reverse order sorts a child before its parent), each only if empty
  printf '%s\n' "$lines" | grep '^dir ' | sed 's/^dir //' | sort -r | while read -r path; do
    rmdir "$R$path" 2>/dev/null || true
  done
  if [ -n "$kept" ]; then
    { printf '%s\n' "$kept"; printf '%s\n' "$lines" | grep '^dir ' | while read -r kind path; do if [ -d "$R$path" ]; then echo "$kind $path"; fi; done; } > "$R$MANIFEST.new"
    mv -f "$R$MANIFEST.new" "$R$MANIFEST"
  fi
  if systemd_live; then systemctl daemon-reload; fi
  echo "install-agent: uninstalled${R:+ from $R}"
}

if [ "$MODE" = install ]; then install_agent; else uninstall_agent; fi
