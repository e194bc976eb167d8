#!/usr/bin/env bash
# Runs libFuzzer targets built in BUILD_DIR (fuzz/CMakeLists.txt):
#   fuzz/run.sh BUILD_DIR SECONDS [TARGET...]     (default: every target)
# For each target: first every input kept in fuzz/regressions/<target>/ (crashes found
# before, now fixed), then SECONDS of fuzzing from the seed corpus fuzz/corpus/<target>/
# (new inputs go to BUILD_DIR/corpus/<target>, never into the source tree). A crash
# leaves its input in BUILD_DIR/artifacts/ and fails the run: keep it as a regression
# (copy it into fuzz/regressions/<target>/) once fixed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1"
seconds="$2"
shift 2
targets=("$@")
((${#targets[@]})) || targets=(create_meta batch record wire npy csv arrow)
mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
  bin="$build/${t}_fuzzer"
  [[ -x $bin ]] || { echo "fuzz: $bin is not built" >&2; exit 1; }
  work="$build/corpus/$t"
  mkdir -p "$work"
  if compgen -G "$here/regressions/$t/*" >/dev/null; then
    "$bin" -rss_limit_mb=2048 "$here"/regressions/"$t"/*
  fi
  echo "fuzz: $t for ${seconds}s"
  log="$build/$t.log"
  rc=0
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$work" "$here/corpus/$t" \
    >"$log" 2>&1 || rc=$?
  # libFuzzer's progress lines stay in the log; the summary and any report show here.
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)" "$log" || true
  if ((rc != 0)); then
    tail -n 60 "$log" >&2
    echo "fuzz: $t FAILED (the input is in $build/artifacts/)" >&2
    exit 1
  fi
done
