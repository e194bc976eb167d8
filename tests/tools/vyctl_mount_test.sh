#!/usr/bin/env bash
# vyctl against a real mount: put/get/meta/stat/ls/name/persist/rm/status and their
# exit codes. Mounts its own daemon (in the foreground, so this script owns its pid)
# in a temp dir and unmounts it on every exit path.
#
# Usage: tests/tools/vyctl_mount_test.sh VINEYARDFS VYCTL
set -u
DAEMON=$1
VYCTL=$2
TMP=$(mktemp -d /tmp/vyctl-mount-XXXXXX)
MNT=$TMP/mnt
mkdir -p "$MNT"
PID=
cleanup() {
  fusermount3 -u -z "$MNT" 2>/dev/null
  if [[ -n $PID ]]; then
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null
  fi
  umount -l "$TMP/arena" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

"$DAEMON" vineyard "$MNT" -f -o "size=64M,arena=$TMP/arena,state=$TMP/state" 2>"$TMP/log" &
PID=$!
for _ in $(seq 100); do [[ -e $MNT/status.json ]] && break; sleep 0.1; done
[[ -e $MNT/status.json ]] || { echo "daemon did not mount"; cat "$TMP/log"; exit 1; }

export VINEYARDFS_MOUNT=$MNT
fails=0
pass=0
check() {  # check DESCRIPTION EXPECTED_RC COMMAND...
  local what=$1 want=$2
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -ne $want ]]; then
    echo "FAIL: $what: exit $rc, expected $want: $out"
    fails=$((fails + 1))
  else
    pass=$((pass + 1))
  fi
  LAST=$out
}

printf 'payload bytes' >"$TMP/in.bin"
check "put prints an id" 0 "$VYCTL" put "$TMP/in.bin" --name first
ID=$LAST
[[ $ID =~ ^o8[0-9a-f]{15}$ ]] || { echo "FAIL: put printed '$ID'"; fails=$((fails + 1)); }
check "get by name returns the bytes" 0 "$VYCTL" get first
[[ $LAST == "payload bytes" ]] || { echo "FAIL: get gave '$LAST'"; fails=$((fails + 1)); }
check "get -o writes a file" 0 "$VYCTL" get "$ID" -o "$TMP/out.bin"
cmp -s "$TMP/in.bin" "$TMP/out.bin" || { echo "FAIL: get -o differs"; fails=$((fails + 1)); }
check "meta shows the typename" 0 "$VYCTL" meta first
[[ $LAST == *'"vineyard::Blob"'* ]] || { echo "FAIL: meta: $LAST"; fails=$((fails + 1)); }
check "stat --json" 0 "$VYCTL" stat "$ID" --json
[[ $LAST == *'"nbytes": 13'* ]] || { echo "FAIL: stat: $LAST"; fails=$((fails + 1)); }
check "persist" 0 "$VYCTL" persist "$ID"
[[ $(getfattr --only-values -n user.vineyard.persist "$MNT/objects/$ID") == 1 ]] ||
  { echo "FAIL: not persisted"; fails=$((fails + 1)); }
printf '{"typename":"vineyard::Pair","first_":{"id":"%s"},"second_":{"id":"%s"}}' "$ID" "$ID" \
  >"$TMP/pair.meta.json"
check "put a .meta.json" 0 "$VYCTL" put "$TMP/pair.meta.json"
PAIR=$LAST
check "ls -l lists both" 0 "$VYCTL" ls -l
[[ $LAST == *"$ID"*"first"* && $LAST == *"$PAIR"*"vineyard::Pair"* ]] ||
  { echo "FAIL: ls -l: $LAST"; fails=$((fails + 1)); }
check "ls --json" 0 "$VYCTL" ls --json
[[ $LAST == *"\"$PAIR\""* ]] || { echo "FAIL: ls --json: $LAST"; fails=$((fails + 1)); }
check "rm of a member is refused with EBUSY" 1 "$VYCTL" rm "$ID"
[[ $LAST == *"busy"* || $LAST == *"Busy"* ]] || { echo "FAIL: rm msg: $LAST"; fails=$((fails + 1)); }
check "name a second name" 0 "$VYCTL" name "$PAIR" pair
check "names lists it" 0 "$VYCTL" names
[[ $LAST == *"pair"*"$PAIR"* ]] || { echo "FAIL: names: $LAST"; fails=$((fails + 1)); }
check "an existing name is refused" 1 "$VYCTL" name "$ID" pair
check "name -f replaces it" 0 "$VYCTL" name -f "$ID" pair
[[ $(readlink "$MNT/names/pair") == "../objects/$ID" ]] || { echo "FAIL: name -f"; fails=$((fails + 1)); }
check "drop a name" 0 "$VYCTL" name -d pair
echo '{"typename":"x","m":{"id":"o8001000000000999"}}' >"$TMP/bad.meta.json"
check "a failing seal exits 1" 1 "$VYCTL" put "$TMP/bad.meta.json"
[[ $LAST == *"does not exist"* ]] || { echo "FAIL: seal error text: $LAST"; fails=$((fails + 1)); }
printf '{"entries":[{"blob":[0,5]},{"meta":{"typename":"vineyard::Tuple","a":{"id":"#0"},"b":{"id":"%s"}}}]}\0hello' \
  "$ID" >"$TMP/two.batch"
check "put a .batch" 0 "$VYCTL" put "$TMP/two.batch"
[[ $(cat "$MNT/objects/$LAST/members/a/data") == hello ]] || { echo "FAIL: batch blob"; fails=$((fails + 1)); }
cp "$TMP/two.batch" "$TMP/two.any"
check "put --batch" 0 "$VYCTL" put --batch "$TMP/two.any"
printf '{"entries":[{"blob":[0,5]},{"meta":{"typename":"t","a":{"id":"#1"}}}]}\0hello' >"$TMP/bad.batch"
check "a refused batch exits 1" 1 "$VYCTL" put "$TMP/bad.batch"
[[ $LAST == *"not an earlier entry"* ]] || { echo "FAIL: batch error text: $LAST"; fails=$((fails + 1)); }
check "rm the pair" 0 "$VYCTL" rm "$PAIR"
check "the blob has a name, so it stayed" 0 "$VYCTL" get first
check "invalid id is a usage error" 2 "$VYCTL" rm o123
check "unknown object" 1 "$VYCTL" meta o0001000000000fff
check "status --json" 0 "$VYCTL" status --json
[[ $LAST == *'"instance": 1'* ]] || { echo "FAIL: status: $LAST"; fails=$((fails + 1)); }
check "not a mount" 1 "$VYCTL" -m "$TMP" ls
[[ $LAST == *"no vineyardfs daemon is running on $TMP"* ]] || { echo "FAIL: plain dir: $LAST"; fails=$((fails + 1)); }

# The daemon is gone: killed (a dead mount, ENOTCONN), then unmounted.
kill -9 "$PID"
wait "$PID" 2>/dev/null
check "a killed daemon is not running" 1 "$VYCTL" ls
[[ $LAST == *"the vineyardfs daemon of $MNT is not running"*"fusermount3 -u $MNT"* ]] ||
  { echo "FAIL: dead mount: $LAST"; fails=$((fails + 1)); }
fusermount3 -u "$MNT"
PID=
check "an unmounted mount point has no daemon" 1 "$VYCTL" status
[[ $LAST == *"no vineyardfs daemon is running on $MNT (it is not mounted)"* ]] ||
  { echo "FAIL: unmounted: $LAST"; fails=$((fails + 1)); }

echo "$pass passed, $fails failed"
[[ $fails -eq 0 ]]
