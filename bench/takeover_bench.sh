#!/usr/bin/env bash
# Live connections across a crash: Phalanx at T = 200 and 50 ms (downloads of the killed member
# surviving, the stall their clients saw) against keepalived + kernel TCP moving a VIP, in
# phalanx-lab labs. Details: bench/takeover_bench.py.
#
#   bench/takeover_bench.sh [BUILD]      (or PHALANX_BUILD=BUILD; default: <repo>/build)
#
# Arguments starting with -- (e.g. --benchmark_color=false from scripts/run-benchmarks) are
# ignored. PHALANX_TAKEOVER_TRIALS (default 20) trials per T; about 6 minutes.
# Needs root, a built phalanxd + phalanxctl, iproute2, and keepalived (installed here with
# apt if missing). Ends with figure:/baseline:/ratio: lines; exit status non-zero if a trial
# could not run.
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
  echo "takeover_bench: needs root (network namespaces)" >&2
  exit 1
fi
for exe in tools/phalanxd tools/phalanxctl; do
  if [ ! -x "$build/$exe" ]; then
    echo "takeover_bench: $build/$exe missing; build the phalanxd and phalanxctl targets" >&2
    exit 1
  fi
done
if [ ! -x /usr/sbin/keepalived ] && [ ! -x /sbin/keepalived ]; then
  echo "takeover_bench: installing keepalived (Debian package keepalived) for the baseline"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d refusal keeps the package from starting a system keepalived; we start our own
  # inside the lab's namespaces only.
  apt-get install -y -qq --no-install-recommends keepalived >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends keepalived >/dev/null; } ||
    { echo "takeover_bench: cannot install keepalived" >&2; exit 1; }
fi
export PATH=$PATH:/usr/sbin:/sbin
exec env PHALANX_BUILD="$build" PHALANX_ROOT="$root" python3 "$root/bench/takeover_bench.py"
