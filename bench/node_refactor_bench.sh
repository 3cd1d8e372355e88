#!/usr/bin/env bash
# The node refactor's cost on the data path (issue 10): the goodput benchmark's downloads against
# phalanxd built at a base commit (default e13ea1f, the last commit before src/node/) and against
# BUILD's phalanxd, interleaved over several rounds in one lab, stand-alone and as a cluster.
# Details: bench/node_refactor.py.
#
#   bench/node_refactor_bench.sh [BUILD] [--base COMMIT] [--rounds N] [--members N]
#       BUILD      the "after" build (or PHALANX_BUILD; default <repo>/build); its phalanxd is used
#                  as it is, so build it first (make build)
#       --base     the "before" commit (default e13ea1f; or PHALANX_BENCH_BASE)
#       --rounds   rounds, each running both binaries in every mode (default 5)
#       --members  members of the cluster mode, 2 or 3 (default 2; 0: stand-alone only)
#
# Other arguments starting with -- (e.g. --benchmark_color=false from scripts/run-benchmarks) are
# ignored. Needs root (network namespaces), git, cmake, ninja and curl. The base is exported with
# `git archive` into a temporary folder and built there as BUILD was (phalanxd only; BUILD's build
# type, compiler and flags; ccache; -j1 or PHALANX_BENCH_JOBS); a trap removes that folder and the
# lab on exit, failure or Ctrl-C.
# About 1 minute per round on the shared 2-core machine, plus the base build (a few seconds from
# a warm ccache, 5-10 minutes cold). Ends with figure:/baseline:/ratio: lines; exit status
# non-zero if the build or any download failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PHALANX_BUILD:-}
base=${PHALANX_BENCH_BASE:-e13ea1f}
rounds=5
members=2
jobs=${PHALANX_BENCH_JOBS:-1}
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=${2:?--base needs a commit}; shift ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --members) members=${2:?--members needs a number}; shift ;;
    --*) ;;
    *) build=$1 ;;
  esac
  shift
done
build=$(cd "${build:-$root/build}" && pwd)
case $rounds in '' | *[!0-9]*) echo "node_refactor_bench: --rounds $rounds" >&2; exit 2 ;; esac
case $members in
  0 | 2 | 3) ;;
  *) echo "node_refactor_bench: --members 0, 2 or 3" >&2; exit 2 ;;
esac
if [ "$rounds" -lt 1 ] || [ "$rounds" -gt 50 ]; then
  echo "node_refactor_bench: --rounds 1..50" >&2
  exit 2
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "node_refactor_bench: needs root (network namespaces)" >&2
  exit 1
fi
after=$build/tools/phalanxd
# The cluster mode reads the members' status with BUILD's phalanxctl (either binary's status).
needed=("$after")
if [ "$members" -gt 0 ]; then
  needed+=("$build/tools/phalanxctl")
fi
for exe in "${needed[@]}"; do
  if [ ! -x "$exe" ]; then
    echo "node_refactor_bench: no $exe (build first: make build)" >&2
    exit 1
  fi
done
for tool in git cmake ninja curl; do
  command -v "$tool" >/dev/null || { echo "node_refactor_bench: needs $tool" >&2; exit 1; }
done
base_sha=$(git -C "$root" rev-parse --verify --short "$base^{commit}") ||
  { echo "node_refactor_bench: no commit $base in $root" >&2; exit 1; }
# What BUILD was built from is not recorded; the checkout it belongs to is the best label.
after_label=$(git -C "$root" describe --always --dirty --abbrev=7)

lab=nrf$$
tmp=$(mktemp -d /tmp/phalanx-node-refactor.XXXXXX)
py_pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$py_pid" ] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    wait "$py_pid" 2>/dev/null || true
  fi
  # The Python side removes its lab and scratch folder itself; this catches a Python that was
  # killed outright (its scratch folder holds the 1 GB test file).
  python3 "$root/tools/phalanx-lab/phalanx-lab" down --name "$lab" >/dev/null 2>&1 || true
  rm -rf "$tmp" "${TMPDIR:-/tmp}"/phalanx-lab-"$lab"-*
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "node_refactor_bench: building phalanxd at $base_sha (before) in $tmp"
mkdir "$tmp/src"
git -C "$root" archive "$base_sha" | tar -x -C "$tmp/src"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths under the temporary folder hash as relative ones (../src/...), as in any other build
  # folder beside its sources, so the cache serves the next run.
  export CCACHE_BASEDIR=$tmp
fi
# Built as BUILD was: same build type, compiler and flags (Release, as make build, by default).
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" 2>/dev/null; }
build_type=$(cache_value CMAKE_BUILD_TYPE)
compiler=$(cache_value CMAKE_CXX_COMPILER)
cxx_flags=$(cache_value CMAKE_CXX_FLAGS)
t0=$SECONDS
cmake -S "$tmp/src" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE="${build_type:-Release}" \
  ${compiler:+-DCMAKE_CXX_COMPILER="$compiler"} -DCMAKE_CXX_FLAGS="$cxx_flags" \
  -DPHALANX_BENCH=OFF "${launcher[@]}" >"$tmp/cmake.log" 2>&1 || {
  tail -30 "$tmp/cmake.log" >&2
  echo "node_refactor_bench: cmake failed at $base_sha" >&2
  exit 1
}
ninja -C "$tmp/build" -j "$jobs" phalanxd >"$tmp/build.log" 2>&1 || {
  tail -30 "$tmp/build.log" >&2
  echo "node_refactor_bench: build failed at $base_sha" >&2
  exit 1
}
echo "node_refactor_bench: built (${build_type:-Release}) in $((SECONDS - t0)) s;" \
  "after = $after ($after_label)"

PHALANX_BUILD="$build" PHALANX_ROOT="$root" PHALANXD_BEFORE="$tmp/build/tools/phalanxd" \
  PHALANXD_AFTER="$after" LABEL_BEFORE="$base_sha" LABEL_AFTER="$after_label" ROUNDS="$rounds" \
  CLUSTER_MEMBERS="$members" LAB_NAME="$lab" python3 "$root/bench/node_refactor.py" &
py_pid=$!
wait "$py_pid"
