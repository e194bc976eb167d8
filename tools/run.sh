#!/usr/bin/env bash
# Sets up, builds, installs (cmake --install: /usr/local, the mount helper
# /sbin/mount.fuse.vineyardfs, the systemd unit, man pages; build/install_manifest.txt
# lists every file), mounts /vineyard with the default options through mount(8) and
# shows a short tour. The mount stays up; `umount /vineyard` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
cmake --install build >/dev/null
echo "run: installed (build/install_manifest.txt lists the files)"
MNT=${VINEYARDFS_MOUNT:-/vineyard}
BIN=$(dirname "$(readlink -f /sbin/mount.fuse.vineyardfs)")
mkdir -p "$MNT"
if grep -q " $MNT fuse.vineyardfs " /proc/mounts; then
  echo "run: $MNT is already mounted"
else
  mount -t fuse.vineyardfs vineyard "$MNT"
  echo "run: mounted $MNT"
fi
export VINEYARDFS_MOUNT=$MNT
set -x
ls "$MNT"
rm -f "$MNT/new/hello.txt" "$MNT/new/pair.meta.json" "$MNT/new/tour.csv"  # links left by an earlier tour
printf 'Hello, World!' > "$MNT/new/hello.txt"
readlink "$MNT/new/hello.txt"
blob=$(basename "$(readlink "$MNT/new/hello.txt")")
cat "$MNT/objects/$blob/data"; echo
getfattr -d "$MNT/objects/$blob"
printf '{"typename": "vineyard::Pair", "first_": {"id": "%s"}, "second_": {"id": "%s"}}' \
  "$blob" "$blob" > "$MNT/new/pair.meta.json"
pair=$(basename "$(readlink "$MNT/new/pair.meta.json")")
cat "$MNT/objects/$pair/meta.json"
ln -sfn "../objects/$pair" "$MNT/names/tour-pair"
setfattr -n user.vineyard.persist -v 1 "$MNT/objects/$pair"
ls "$MNT/resolvers"                                   # the builtin plugins
printf 'x,y\n1,2.5\n2,3.5\n' > "$MNT/new/tour.csv"  # the csv builder makes a DataFrame
df=$(basename "$(readlink "$MNT/new/tour.csv")")
cat "$MNT/objects/$df/views/dataframe.csv"
"$BIN/vyctl" ls -l
"$BIN/vyctl" status
df -h "$MNT"
