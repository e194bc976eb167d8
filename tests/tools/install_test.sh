#!/usr/bin/env bash
# The installed vineyardfs, where it is installed, without touching this machine's /:
#
#   install_test.sh deb BUILD      the Debian package `cpack -G DEB` makes: every file
#                                  listed by dpkg-deb -c, Depends by Debian name; then
#                                  extracted into a temp root
#   install_test.sh install BUILD  what tools/run.sh does: cmake --install (prefix
#                                  /usr/local), into a temp DESTDIR; install_manifest.txt
#                                  lists the /sbin link
#
# Then, in a private mount namespace whose /usr (or /usr/local) and /usr/sbin are
# overlays of the temp root on the real ones, so that every file sits at its real
# path: `mount -t fuse.vineyardfs` runs the installed helper (PATH holds no
# /usr/local/bin, so mount.fuse's fallback could not find the daemon), an fstab
# line mounts, the builtin plugins, vyctl and (deb) the Python client, man pages,
# bash completion work, and systemd-analyze verify accepts the unit. Every mount is
# made inside the namespace and goes with it; daemons are stopped by their pid.
set -u
MODE=$1
BUILD=$(cd "$2" && pwd)
TMP=$(mktemp -d /tmp/vy-install-XXXXXX)
chmod 755 "$TMP"
cleanup() {
  for s in "$TMP"/state*; do
    [[ -f $s/vineyardfs.pid ]] || continue
    pid=$(head -1 "$s/vineyardfs.pid")
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
  done
  grep -q " $TMP" /proc/mounts || rm -rf "$TMP"
}
trap cleanup EXIT
fails=0
fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}

ROOT=$TMP/root
if [[ $MODE == deb ]]; then
  PREFIX=/usr
  cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP/pkg" >"$TMP/cpack.log" 2>&1 ||
    { cat "$TMP/cpack.log"; exit 1; }
  DEB=$(ls "$TMP"/pkg/vineyardfs_*_*.deb)
  dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' | sort >"$TMP/files"
  dpkg-deb -x "$DEB" "$ROOT"
  for dep in fuse3 python3 libfuse3-3 libzmq5 libsystemd0 libstdc++6; do
    dpkg-deb -f "$DEB" Depends | grep -q "\b$dep\b" || fail "Depends lacks $dep: $(dpkg-deb -f "$DEB" Depends)"
  done
  PYDIR=$PREFIX/lib/python3/dist-packages
else
  PREFIX=/usr/local
  DESTDIR=$ROOT cmake --install "$BUILD" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; exit 1; }
  (cd "$ROOT" && find . ! -type d | sed 's|^\.||' | sort) >"$TMP/files"
  grep -qx "/sbin/mount.fuse.vineyardfs" "$BUILD/install_manifest.txt" ||
    fail "install_manifest.txt does not list the /sbin link"
  while read -r f; do
    grep -qx "$f" "$BUILD/install_manifest.txt" || fail "install_manifest.txt misses $f"
  done <"$TMP/files"
  PYDIR=$(cd "$ROOT" && ls -d .$PREFIX/lib/python3*/dist-packages | sed 's|^\.||')
fi
for f in /sbin/mount.fuse.vineyardfs $PREFIX/bin/vineyardfs $PREFIX/bin/vyctl \
  $PREFIX/include/vineyardfs/plugin.h \
  $PREFIX/lib/vineyardfs/plugins/numpy.so $PREFIX/lib/vineyardfs/plugins/json.so \
  $PREFIX/lib/vineyardfs/plugins/csv.so $PREFIX/lib/systemd/system/vineyardfs@.service \
  $PREFIX/share/man/man8/vineyardfs.8.gz $PREFIX/share/man/man1/vyctl.1.gz \
  $PREFIX/share/man/man3/vineyardfs-plugin.3.gz \
  $PREFIX/share/bash-completion/completions/vyctl \
  $PYDIR/vineyardfs/__init__.py $PYDIR/vineyardfs/client.py; do
  grep -qx "$f" "$TMP/files" || fail "$MODE does not install $f"
done
[[ $(readlink "$ROOT/sbin/mount.fuse.vineyardfs") == "$PREFIX/bin/vineyardfs" ]] ||
  fail "the /sbin link points at $(readlink "$ROOT/sbin/mount.fuse.vineyardfs")"
grep -q "^ExecStart=$PREFIX/bin/vineyardfs vineyard %f -f" "$ROOT$PREFIX/lib/systemd/system/vineyardfs@.service" ||
  fail "the unit does not run $PREFIX/bin/vineyardfs"

cat >"$TMP/inside.sh" <<'EOF'
set -u
T=$1 PREFIX=$2 PYDIR=$3 MODE=$4
R=$T/root
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
mount -t overlay overlay -o "lowerdir=$R$PREFIX:$PREFIX" "$PREFIX" || exit 1
mount -t overlay overlay -o "lowerdir=$R/sbin:/usr/sbin" /usr/sbin || exit 1
stop() {  # stop MNT STATE: unmount, wait for the daemon
  local pid
  pid=$(head -1 "$2/vineyardfs.pid" 2>/dev/null)
  umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
  for _ in $(seq 100); do [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && { fail "daemon $pid survived umount"; kill -9 "$pid"; }
}
mkdir -p "$T/mnt" "$T/mnt2"

# mount(8) -t fuse.vineyardfs: only the installed helper can do it with this PATH.
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin mount -t fuse.vineyardfs vineyard "$T/mnt" \
  -o "size=64M,arena=$T/arena,state=$T/state,log=$T/daemon.log" ||
  { fail "mount -t fuse.vineyardfs"; cat "$T/daemon.log"; exit 1; }
trap 'stop "$T/mnt" "$T/state"; stop "$T/mnt2" "$T/state2"' EXIT
pid=$(head -1 "$T/state/vineyardfs.pid")
[[ $(tr '\0' '\n' <"/proc/$pid/cmdline" | head -1) == /sbin/mount.fuse.vineyardfs ]] ||
  fail "mount(8) did not run the helper: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
grep -q "\"builtin_plugins\": \"$PREFIX/lib/vineyardfs/plugins\"" "$T/mnt/status.json" ||
  fail "builtin plugins not from $PREFIX: $(grep builtin_plugins "$T/mnt/status.json")"
printf 'x,y\n1,2.5\n' >"$T/mnt/new/t.csv" || fail "writing a csv"
[[ $(cat "$T/mnt/objects/$(basename "$(readlink "$T/mnt/new/t.csv")")/views/dataframe.csv" 2>&1) == *2.5* ]] ||
  fail "the installed csv plugin made no DataFrame"
$PREFIX/bin/vyctl -m "$T/mnt" ls | grep -q . || fail "installed vyctl ls"
out=$(cd / && VINEYARDFS_MOUNT=$T/mnt /usr/bin/python3 -c "
import numpy, vineyardfs
c = vineyardfs.connect()
print(vineyardfs.__file__)
print(c.get(c.put(numpy.arange(4))).tolist())" 2>&1)
[[ $out == "$PYDIR/vineyardfs/__init__.py"*"[0, 1, 2, 3]" ]] || fail "the installed Python client: $out"
MANPAGER=cat man 8 vineyardfs 2>/dev/null | grep -q "MOUNTING SAFELY" || fail "man 8 vineyardfs"
MANPAGER=cat man 1 vyctl 2>/dev/null | grep -q "EXIT STATUS" || fail "man 1 vyctl"
MANPAGER=cat man 3 vineyardfs-plugin 2>/dev/null | grep -q "vy_plugin_register" || fail "man 3 vineyardfs-plugin"
comp=$(bash -c 'source /usr/share/bash-completion/bash_completion
  source '"$PREFIX"'/share/bash-completion/completions/vyctl
  COMP_WORDS=(vyctl st); COMP_CWORD=1; COMP_LINE="vyctl st"; COMP_POINT=8; _vyctl; echo "${COMPREPLY[*]}"
  COMP_WORDS=(vyctl -m '"$T/mnt"' meta o); COMP_CWORD=4; _vyctl; echo "${COMPREPLY[*]}"' 2>&1)
[[ $comp == "stat status"$'\n'o* ]] || fail "bash completion: $comp"
systemd-analyze verify vineyardfs@vineyard.service >"$T/verify.log" 2>&1 ||
  { fail "systemd-analyze verify"; cat "$T/verify.log"; }
stop "$T/mnt" "$T/state"
grep -q " $T/mnt " /proc/mounts && fail "still mounted after umount"

# An fstab line.
echo "vineyard $T/mnt2 fuse.vineyardfs size=64M,arena=$T/arena2,state=$T/state2,log=$T/daemon2.log,nofail 0 0" >"$T/fstab"
mount --bind "$T/fstab" /etc/fstab
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin mount "$T/mnt2" || { fail "mount from fstab"; cat "$T/daemon2.log"; }
[[ -f $T/mnt2/status.json ]] || fail "the fstab mount does not serve"
stop "$T/mnt2" "$T/state2"
exit $((fails > 0))
EOF
unshare -m --propagation private bash "$TMP/inside.sh" "$TMP" "$PREFIX" "$PYDIR" "$MODE" || fails=$((fails + 1))
grep -q " $TMP" /proc/mounts && fail "a mount leaked out of the namespace"
echo "$MODE: $fails failure(s)"
[[ $fails -eq 0 ]]
