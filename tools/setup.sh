#!/usr/bin/env bash
# Installs every Debian package vineyardfs needs to build, test and benchmark.
# Idempotent: when everything is installed already it touches nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format clang
  libfuse3-dev fuse3
  librocksdb-dev nlohmann-json3-dev libzmq3-dev cppzmq-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  python3-numpy python3-pandas python3-scipy python3-pytest python3-matplotlib python3-venv
  python3-pip python3-setuptools
  attr psmisc strace
  scdoc libsystemd-dev bash-completion systemd man-db
  libflatbuffers-dev flatbuffers-compiler
)

# One dpkg-query for all of them (one per package took ~1 s each on a loaded machine).
declare -A installed=()
while read -r name status; do
  [[ $status == "install ok installed" ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done
# Node and npm run the Arrow JS reader of the tests (tests/arrow_js). Any node on PATH will
# do (the CI image has Node 20 from elsewhere); only a machine with none gets Debian's.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
