#!/usr/bin/env bash
# Tests vyctl's command line without a daemon: argument parsing, exit codes,
# REF resolution and the read-only commands, against a plain directory laid
# out like a vineyardfs mount (status.json, objects/<id>/..., names/, new/).
# Writes that only the daemon can complete (sealing in new/, rmdir of an
# object) are checked for their failure reporting only.
#
# Usage: tests/tools/vyctl_usage_test.sh [PATH_TO_VYCTL]   (or $VYCTL)
# Default: build/vyctl. Exit status 0 when every check passes.

set -u

VYCTL="${1:-${VYCTL:-build/vyctl}}"
if [[ ! -x "$VYCTL" ]]; then
  echo "vyctl_usage_test: no executable vyctl at '$VYCTL'" >&2
  exit 2
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
MNT="$TMP/mnt"
BLOB=o8001000000000001
PAIR=o0001000000000002
failures=0

# --- the simulated tree ------------------------------------------------------
mkdir -p "$MNT/objects/$BLOB" "$MNT/objects/$PAIR" "$MNT/objects/not-an-id" \
  "$MNT/names" "$MNT/new"
echo '{"instance_id": 1, "arena": {"size": 8589934592}}' >"$MNT/status.json"
printf 'hello, vineyard' >"$MNT/objects/$BLOB/data"
echo "{\"id\": \"$BLOB\", \"typename\": \"vineyard::Blob\"}" >"$MNT/objects/$BLOB/meta.json"
echo "{\"id\": \"$PAIR\", \"typename\": \"vineyard::Pair\"}" >"$MNT/objects/$PAIR/meta.json"
ln -s "../objects/$BLOB" "$MNT/names/greeting"
ln -s "../objects/$PAIR" "$MNT/names/oxyz"  # a name that is a malformed id
have_xattrs=0
if command -v setfattr >/dev/null &&
  setfattr -n user.vineyard.typename -v vineyard::Blob "$MNT/objects/$BLOB" 2>/dev/null; then
  setfattr -n user.vineyard.nbytes -v 15 "$MNT/objects/$BLOB"
  setfattr -n user.vineyard.persist -v 0 "$MNT/objects/$BLOB"
  have_xattrs=1
fi

# --- helpers -----------------------------------------------------------------
# run ARGS...: runs vyctl, leaving $rc, $out (stdout) and $err (stderr).
run() {
  "$VYCTL" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  out="$(cat "$TMP/out")"
  err="$(cat "$TMP/err")"
}

fail() {
  echo "FAIL: $1" >&2
  echo "  rc=$rc stdout: ${out:0:300}" >&2
  echo "  stderr: ${err:0:300}" >&2
  failures=$((failures + 1))
}

expect_rc() { [[ "$rc" == "$1" ]] || fail "$2: exit $rc, expected $1"; }
expect_out() { [[ "$out" == "$1" ]] || fail "$2: unexpected stdout"; }
expect_out_has() { [[ "$out" == *"$1"* ]] || fail "$2: stdout lacks '$1'"; }
expect_err_has() { [[ "$err" == *"$1"* ]] || fail "$2: stderr lacks '$1'"; }

# --- no mount needed ---------------------------------------------------------
run --version
expect_rc 0 "--version"
expect_out "vyctl 0.1.0" "--version"

run --help
expect_rc 0 "--help"
expect_out_has "put FILE|-" "--help lists put"

run -m "$TMP/nowhere" get --help
expect_rc 0 "get --help works without a mount"
expect_out_has "get REF [-o OUT]" "get --help shows the synopsis"

run
expect_rc 2 "no command"

run -m "$MNT" frob
expect_rc 2 "unknown command"
expect_err_has "unknown command 'frob'" "unknown command"

run -m "$MNT" ls --bogus
expect_rc 2 "unknown option"
expect_err_has "vyctl: ls: unknown option '--bogus'" "unknown option"

run -m "$MNT" get
expect_rc 2 "missing REF"

run -m "$MNT" stat a b
expect_rc 2 "too many arguments"

run -m "$MNT" name -d
expect_rc 2 "name -d without names"

run -m "$MNT" put x --name a/b
expect_rc 2 "put --name with a slash"

run -m "$MNT" name greeting "$PAIR"
expect_rc 2 "a name spelled like an id is refused"

# --- the mount check ---------------------------------------------------------
run -m "$TMP/nowhere" ls
expect_rc 2 "not a mount"
expect_err_has "vyctl: $TMP/nowhere: No such file or directory (no vineyardfs mount there)" "not a mount"

VINEYARDFS_MOUNT="$TMP/env" run ls
expect_rc 2 "VINEYARDFS_MOUNT is used"
expect_err_has "$TMP/env: No such file or directory" "VINEYARDFS_MOUNT is used"

mkdir -p "$TMP/plain"
run -m "$TMP/plain" ls
expect_rc 1 "a directory that is not mounted: no daemon runs there"
expect_err_has "vyctl: no vineyardfs daemon is running on $TMP/plain (it is not mounted); start one with: vineyardfs vineyard $TMP/plain" "not mounted"

run -m /proc ls
expect_rc 2 "another file system"
expect_err_has "vyctl: /proc is not a vineyardfs mount (it is a proc mount)" "another file system"

VINEYARDFS_MOUNT="$MNT" run ls
expect_rc 0 "VINEYARDFS_MOUNT names a mount"

# --- REF resolution ----------------------------------------------------------
run -m "$MNT" meta oabc
expect_rc 2 "malformed id"
expect_out "" "malformed id prints nothing on stdout"
[[ "$err" == "vyctl: invalid object id 'oabc'" ]] || fail "malformed id message"

run -m "$MNT" meta o80010000000000AB
expect_rc 2 "uppercase hex is a malformed id"

run -m "$MNT" meta oxyz
expect_rc 0 "a name that looks like a malformed id is a name"
expect_out_has "vineyard::Pair" "meta through the name oxyz"

run -m "$MNT" meta nosuchname
expect_rc 1 "unknown name"
expect_err_has "meta nosuchname: no such name" "unknown name"

run -m "$MNT" meta o0000000000000009
expect_rc 1 "unknown id"
expect_err_has "no such object" "unknown id"

# --- read-only commands ------------------------------------------------------
run -m "$MNT" ls
expect_rc 0 "ls"
expect_out "$(printf '%s\n%s' "$PAIR" "$BLOB")" "ls lists valid ids, sorted"

run -m "$MNT" ls -l
expect_rc 0 "ls -l"
expect_out_has "greeting" "ls -l shows names"
if ((have_xattrs)); then
  expect_out_has "$BLOB  vineyard::Blob  15  transient  greeting" "ls -l row of the blob"
fi

run -m "$MNT" ls --json
expect_rc 0 "ls --json"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; a=json.load(sys.stdin); assert [o["id"] for o in a] == sys.argv[1:], a' \
    "$PAIR" "$BLOB" <<<"$out" || fail "ls --json is not the expected JSON array"
fi

run -m "$MNT" get greeting
expect_rc 0 "get through a name"
expect_out "hello, vineyard" "get prints the payload"

run -m "$MNT" get "$BLOB" -o "$TMP/copy"
expect_rc 0 "get -o"
[[ "$(cat "$TMP/copy")" == "hello, vineyard" ]] || fail "get -o writes the payload"

run -m "$MNT" get oxyz
expect_rc 1 "get of a non-blob"
expect_err_has "vyctl: get oxyz: not a blob (typename vineyard::Pair); use 'vyctl meta'" "get of a non-blob"

run -m "$MNT" names
expect_rc 0 "names"
expect_out_has "greeting  $BLOB" "names lists name and id"

run -m "$MNT" name --json
expect_rc 0 "name --json"
expect_out_has "\"oxyz\": \"$PAIR\"" "name --json"

run -m "$MNT" status --json
expect_rc 0 "status --json"
expect_out_has '"instance_id": 1' "status --json is pretty JSON"

run -m "$MNT" status
expect_rc 0 "status"
expect_out_has "arena.size: 8589934592 (8.0 GiB)" "status summary"

if ((have_xattrs)); then
  run -m "$MNT" stat greeting
  expect_rc 0 "stat"
  expect_out "$(printf 'typename: vineyard::Blob\nnbytes: 15\npersist: 0')" "stat lines"
  run -m "$MNT" stat "$BLOB" --json
  expect_out_has '"nbytes": 15' "stat --json has numbers"
  expect_out_has '"persist": false' "stat --json has booleans"
fi

run -m "$MNT" stat oxyz
expect_rc 1 "stat without attributes fails"

# --- names (plain symlinks work in a plain directory) ------------------------
run -m "$MNT" name "$PAIR" greeting
expect_rc 1 "name over an existing name"
expect_err_has "File exists (use -f to replace it)" "name over an existing name"

run -m "$MNT" name -f oxyz greeting
expect_rc 0 "name -f"
[[ "$(readlink "$MNT/names/greeting")" == "../objects/$PAIR" ]] || fail "name -f replaced the link"
[[ -z "$(find "$MNT/names" -name '.vyctl-*')" ]] || fail "name -f left a temporary name"

run -m "$MNT" name -d greeting nosuch
expect_rc 1 "name -d with one unknown name"
[[ ! -e "$MNT/names/greeting" && ! -L "$MNT/names/greeting" ]] || fail "name -d dropped the name"

# --- writes that need the daemon ---------------------------------------------
run -m "$MNT" rm oabc "$PAIR"
expect_rc 2 "rm with a malformed id changes nothing"
[[ -d "$MNT/objects/$PAIR" ]] || fail "rm with a malformed id changed nothing"

run -m "$MNT" rm o0000000000000009 "$PAIR"
expect_rc 1 "rm reports each failure"
expect_err_has "rm o0000000000000009: no such object" "rm of an unknown id"
expect_err_has "rm $PAIR:" "rm goes on after a failure"

echo 'payload' >"$TMP/file.bin"
run -m "$MNT" put "$TMP/file.bin"
expect_rc 1 "put fails where nothing seals"
expect_out "" "a failed put prints no id"
compgen -G "$MNT/new/vyctl-*-1-file.bin" >/dev/null || fail "put writes new/vyctl-<pid>-1-<basename>"

run -m "$MNT" put "$TMP/file.bin" --meta
compgen -G "$MNT/new/vyctl-*-1-file.bin.meta.json" >/dev/null || fail "put --meta appends .meta.json"

run -m "$MNT" put "$TMP" --name fresh
expect_rc 1 "put of a directory"

if ((failures)); then
  echo "vyctl_usage_test: $failures check(s) failed" >&2
  exit 1
fi
echo "vyctl_usage_test: all checks passed"
