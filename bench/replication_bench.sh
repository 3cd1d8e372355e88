#!/usr/bin/env bash
# Cost of session replication: goodput with replicas = 1 vs 0 and sync bytes per GB served, in
# phalanx-lab labs. Details: bench/replication_bench.py.
#
#   bench/replication_bench.sh [BUILD]      (or PHALANX_BUILD=BUILD; default: <repo>/build)
#
# Arguments starting with -- (e.g. --benchmark_color=false from scripts/run-benchmarks) are
# ignored. PHALANX_REPLICATION_TRIALS (default 5) trials per case; under a minute.
# Needs root, a built phalanxd + phalanxctl, iproute2 and curl. Ends with figure:/baseline:/
# ratio: lines; exit status non-zero if a download failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PHALANX_BUILD:-}
for arg in "$@"; do
  case $arg in
    --*) ;;
    *) build=$arg ;;
  esac
done
build=$(cd "${build:-$root/build}" && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "replication_bench: needs root (network namespaces)" >&2
  exit 1
fi
for exe in tools/phalanxd tools/phalanxctl; do
  if [ ! -x "$build/$exe" ]; then
    echo "replication_bench: $build/$exe missing; build the phalanxd and phalanxctl targets" >&2
    exit 1
  fi
done
export PATH=$PATH:/usr/sbin:/sbin
exec env PHALANX_BUILD="$build" PHALANX_ROOT="$root" python3 "$root/bench/replication_bench.py"
