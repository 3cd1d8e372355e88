#!/usr/bin/env bash
# scripts/check-layers over small planted trees: each violation alone must fail with its file:line,
# what and rule; a tree of look-alikes (comments, member calls, the drivers' own I/O, tools/,
# tests/, bench/) must pass; and so must the real tree.
#
# Usage: tests/scripts/check_layers_test.sh [REPO_ROOT]
set -uo pipefail
root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
check="$root/scripts/check-layers"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# A tree holding only clean files of several layers, the base every case starts from.
base_tree() {
  local t=$1
  mkdir -p "$t/src/wire" "$t/src/filter" "$t/src/apps" "$t/src/runtime" "$t/src/sim"
  printf '#pragma once\nnamespace phalanx::wire {}\n' >"$t/src/wire/bytes.hpp"
  printf '#pragma once\n#include "wire/bytes.hpp"\n' >"$t/src/filter/workset.hpp"
  printf '#pragma once\n#include "filter/workset.hpp"\n' >"$t/src/apps/echo.hpp"
  printf '#pragma once\n#include "apps/echo.hpp"\n' >"$t/src/runtime/node.hpp"
  printf '#pragma once\n#include "apps/echo.hpp"\n' >"$t/src/sim/world.hpp"
}

# expect_fail NAME FILE CONTENT EXPECTED...: FILE (relative) with CONTENT planted in a base tree
# makes the check fail, and its output holds every EXPECTED string.
expect_fail() {
  local name=$1 file=$2 content=$3
  shift 3
  local t="$tmp/$name"
  base_tree "$t"
  mkdir -p "$(dirname "$t/$file")"
  printf '%s\n' "$content" >"$t/$file"
  local out rc
  out=$("$check" "$t" 2>&1)
  rc=$?
  if [ "$rc" -ne 1 ]; then
    fail "$name: exit $rc, want 1; output:"$'\n'"$out"
    return
  fi
  for want in "$@"; do
    if ! grep -qF -- "$want" <<<"$out"; then
      fail "$name: output lacks '$want'; output:"$'\n'"$out"
    fi
  done
}

# Rule layers: an include of a lower layer, either driver including the other, a relative path.
expect_fail stack_includes_runtime src/stack/demux.cpp '#include "runtime/node.hpp"' \
  'src/stack/demux.cpp:1: includes "runtime/node.hpp" (layer runtime) from layer stack' \
  '[rule layers]' 'rule layers: a layer includes only itself'
expect_fail wire_includes_filter src/wire/tcp.hpp $'#pragma once\n#include "filter/workset.hpp"' \
  'src/wire/tcp.hpp:2: includes "filter/workset.hpp" (layer filter) from layer wire'
expect_fail sim_includes_runtime src/sim/scenarios.cpp '#include "runtime/node.hpp"' \
  'src/sim/scenarios.cpp:1: includes "runtime/node.hpp" (layer runtime) from layer sim'
expect_fail runtime_includes_sim src/runtime/host.cpp '#include "sim/world.hpp"' \
  'src/runtime/host.cpp:1: includes "sim/world.hpp" (layer sim) from layer runtime'
expect_fail relative_include src/filter/table.cpp '#include "../apps/echo.hpp"' \
  'src/filter/table.cpp:1: includes "../apps/echo.hpp" (layer apps) from layer filter'
expect_fail angle_include src/tcp/input.cpp '#include <cluster/member.hpp>' \
  'src/tcp/input.cpp:1: includes "cluster/member.hpp" (layer cluster) from layer tcp'
expect_fail unknown_layer src/misc/util.cpp 'int x;' \
  'src/misc/util.cpp:1: is in src/misc/, not a layer of DESIGN §2'

# Rule pure: clocks, sockets, threads, sleeps, signals and OS randomness outside src/runtime/.
expect_fail steady_clock src/tcp/timers.cpp \
  $'// The timers.\nauto t = std::chrono::steady_clock::now();' \
  'src/tcp/timers.cpp:2: uses a clock (steady_clock) in layer tcp' '[rule pure]' \
  'rule pure: only src/runtime/ touches'
expect_fail system_clock_in_sim src/sim/world.cpp 'auto t = std::chrono::system_clock::now();' \
  'src/sim/world.cpp:1: uses a clock (system_clock) in layer sim'
expect_fail c_time src/cluster/member.cpp 'long t = time(nullptr);' \
  'src/cluster/member.cpp:1: uses a clock (time() in layer cluster'
expect_fail clock_gettime src/stack/arp.cpp 'clock_gettime(CLOCK_MONOTONIC, &ts);' \
  'src/stack/arp.cpp:1: uses a clock (clock_gettime() in layer stack'
expect_fail socket_header src/stack/udp.cpp '#include <sys/socket.h>' \
  'src/stack/udp.cpp:1: uses a socket (<sys/socket.h>) in layer stack'
expect_fail netinet_header src/wire/ipv4.hpp '#include <netinet/in.h>' \
  'src/wire/ipv4.hpp:1: uses a socket (<netinet/in.h>) in layer wire'
expect_fail socket_call src/apps/http.cpp 'int fd = ::socket(AF_INET, SOCK_DGRAM, 0);' \
  'src/apps/http.cpp:1: uses a socket (::socket() in layer apps'
expect_fail thread_header src/filter/table.cpp '#include <thread>' \
  'src/filter/table.cpp:1: uses a thread (<thread>) in layer filter'
expect_fail std_thread src/apps/echo.cpp 'std::thread t([] {});' \
  'src/apps/echo.cpp:1: uses a thread (std::thread) in layer apps'
expect_fail std_mutex src/cluster/master.cpp 'std::mutex m;' \
  'src/cluster/master.cpp:1: uses a thread (std::mutex) in layer cluster'
expect_fail pthread src/tcp/isn.cpp 'pthread_t t;' \
  'src/tcp/isn.cpp:1: uses a thread (pthread_t) in layer tcp'
expect_fail usleep src/stack/gso.cpp 'usleep(10);' \
  'src/stack/gso.cpp:1: uses a sleep (usleep() in layer stack'
expect_fail sleep_for src/sim/checkers.cpp 'std::this_thread::sleep_for(d);' \
  'src/sim/checkers.cpp:1: uses a thread (std::this_thread) in layer sim'
expect_fail signal src/apps/echo.cpp 'std::signal(SIGPIPE, SIG_IGN);' \
  'src/apps/echo.cpp:1: uses a signal (std::signal() in layer apps'
expect_fail random_device src/sim/prng.hpp 'std::random_device rd;' \
  'src/sim/prng.hpp:1: uses OS randomness (random_device) in layer sim'
expect_fail getrandom src/tcp/isn.cpp 'getrandom(&key, sizeof key, 0);' \
  'src/tcp/isn.cpp:1: uses OS randomness (getrandom() in layer tcp'
expect_fail rand src/sim/scenarios.cpp 'int r = rand() % 6;' \
  'src/sim/scenarios.cpp:1: uses OS randomness (rand() in layer sim'
expect_fail urandom src/stack/syn_cookie.cpp 'const char* path = "/dev/urandom";' \
  'src/stack/syn_cookie.cpp:1: uses OS randomness (/dev/urandom) in layer stack'
# After a string holding "//" the line is still code.
expect_fail code_after_url src/apps/http.cpp \
  'const char* u = "http://x"; auto t = std::chrono::steady_clock::now();' \
  'src/apps/http.cpp:1: uses a clock (steady_clock) in layer apps'

# Look-alikes that must pass.
ok="$tmp/ok"
base_tree "$ok"
mkdir -p "$ok/src/tcp" "$ok/src/node" "$ok/src/stack" "$ok/tools/phalanxd" "$ok/tests/unit" \
  "$ok/bench"
cat >"$ok/src/tcp/timers.cpp" <<'EOF'
// The timestamp option: no steady_clock here, no time(nullptr), no std::thread, no rand(), and
// nothing read from /dev/urandom: the driver passes `now` (DESIGN §2).
/* A block comment: std::mutex m; socket(AF_INET, 0, 0); usleep(1);
   across lines: std::random_device rd; */
#include <chrono>
#include "wire/bytes.hpp"
#include "bytes.hpp"
struct Timers {
  std::chrono::nanoseconds timestamp{};
  long time(int) const { return 0; }
  int sleep_ms = 1'000;  // digit separators are not character literals: steady_clock
  int socket_count = 0;
};
long f(const Timers& t, const Timers* p) { return t.time(0) + p->time(0) + next_time(0); }
const char* s = "// not a comment";
char quote = '"';  // and this is a comment: std::thread
const char* raw = R"x(a "quoted // text)x";  // comment: getrandom(
EOF
printf '#pragma once\n' >"$ok/src/tcp/bytes.hpp"
printf '#include "apps/echo.hpp"\n#include "filter/workset.hpp"\n' >"$ok/src/node/node.cpp"
cat >"$ok/src/runtime/clock.cpp" <<'EOF'
#include <sys/socket.h>
#include <thread>
#include "runtime/node.hpp"
#include "apps/echo.hpp"
auto t = std::chrono::steady_clock::now();
int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
EOF
printf '#include "cluster/member.hpp"\n#include "apps/echo.hpp"\n' >"$ok/src/sim/world.cpp"
for f in tools/phalanxd/main.cpp tests/unit/x_test.cpp bench/x_bench.cpp; do
  printf '#include "runtime/node.hpp"\n#include "sim/world.hpp"\n#include <thread>\n%s\n' \
    'auto t = std::chrono::steady_clock::now();' >"$ok/$f"
done
out=$("$check" "$ok" 2>&1) || fail "look-alikes: want a pass; output:"$'\n'"$out"

out=$("$check" "$root" 2>&1) || fail "the real tree: want a pass; output:"$'\n'"$out"

if [ "$failures" -gt 0 ]; then
  echo "check_layers_test: $failures failure(s)"
  exit 1
fi
echo "check_layers_test: all cases pass"
