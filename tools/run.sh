#!/usr/bin/env bash
# Sets up, builds, mounts /vineyard with the default options (in the background) and
# shows a short tour. The mount stays up; `fusermount3 -u /vineyard` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
MNT=${VINEYARDFS_MOUNT:-/vineyard}
BIN=$PWD/build
mkdir -p "$MNT"
if grep -q " $MNT fuse.vineyardfs " /proc/mounts; then
  echo "run: $MNT is already mounted"
else
  "$BIN/vineyardfs" vineyard "$MNT"
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
