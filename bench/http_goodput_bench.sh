#!/usr/bin/env bash
# HTTP goodput and CPU per GB: phalanxd's http app vs nginx, in a phalanx-lab lab (1 member,
# 1 client). Details: bench/http_goodput.py and docs/e2e.md.
#
#   bench/http_goodput_bench.sh [BUILD]      (or PHALANX_BUILD=BUILD; default: <repo>/build)
#
# Arguments starting with -- (e.g. --benchmark_color=false from scripts/run-benchmarks) are
# ignored. Needs root, a built phalanxd, curl, and nginx (installed here with apt if missing).
# Ends with figure:/baseline:/ratio: lines; exit status non-zero if any download failed.
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
  echo "http_goodput_bench: needs root (network namespaces)" >&2
  exit 1
fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "http_goodput_bench: installing nginx (Debian package nginx) for the baseline"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d refusal keeps the package from starting a system nginx; we start our own.
  apt-get install -y -qq --no-install-recommends nginx >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx >/dev/null; } ||
    { echo "http_goodput_bench: cannot install nginx" >&2; exit 1; }
fi
export PATH=$PATH:/usr/sbin
exec env PHALANX_BUILD="$build" PHALANX_ROOT="$root" python3 "$root/bench/http_goodput.py"
