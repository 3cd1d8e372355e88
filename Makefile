# The commands a newcomer uses. `make test` is the one CI runs.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all bootstrap build test test-unit test-e2e test-asan asan-configure format-check layer-check \
  format fuzz bench demo sim-demo clean

all: build

bootstrap:
	scripts/bootstrap

# Release (-O3), what packagers and most users pick: the build the tests, the demo and the
# benchmarks run. The sanitizer build below is Debug and the fuzz build RelWithDebInfo (clang).
$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Everything a change must pass: format, layering (DESIGN §2), unit + simulation tests, corpus
# replays, end-to-end tests, and the unit + simulation tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer.
test: build format-check layer-check test-unit test-e2e test-asan

test-unit:
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -LE e2e

# The end-to-end tests run one at a time and mostly wait on the network, leaving a core idle:
# the sanitizer build starts meanwhile on that core at the lowest priority (nice 19, one job),
# so it yields to the tests' processes; test-asan finishes it (SIGTERM stops ninja cleanly).
test-e2e: asan-configure
	nice -n 19 ninja -C $(ASAN_BUILD) -j 1 >$(ASAN_BUILD)/during-e2e.log 2>&1 & bg=$$!; \
	ctest --test-dir $(BUILD) --output-on-failure -L e2e; rc=$$?; \
	kill $$bg 2>/dev/null; wait $$bg 2>/dev/null; exit $$rc

asan-configure: bootstrap
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPHALANX_SANITIZE=ON \
	  -DPHALANX_BENCH=OFF >/dev/null

test-asan: asan-configure
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	PHALANX_SIM_SEEDS=8 ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

format-check: bootstrap
	scripts/check-format

# DESIGN §2 as a check: each layer includes only the layers above it, and only src/runtime/
# touches clocks, sockets, threads, signals or OS randomness (scripts/check-layers says why).
layer-check:
	scripts/check-layers

format:
	git ls-files -- '*.cpp' '*.hpp' | xargs clang-format -i

# Each libFuzzer target over its corpus, then FUZZ_SECONDS of new inputs (ASan + UBSan).
fuzz: bootstrap
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DPHALANX_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/run-fuzzers $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	scripts/run-benchmarks $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# The main job: a three-member cluster and a client in network namespaces (needs root). It
# elects a master, serves a download through the cluster IP, kills the serving member and shows
# the survivors taking over; the lab is removed at the end whatever happens.
demo: build
	PHALANX_BUILD=$(abspath $(BUILD)) scripts/demo

# The same story in the deterministic simulator: no root, no namespaces, same protocol code.
sim-demo: build
	$(BUILD)/tools/phalanx-sim --demo
