# The commands a newcomer uses. `make test` is the one CI runs.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all bootstrap build build-release test test-unit test-asan format-check format fuzz bench \
  demo sim-demo clean

all: build

bootstrap:
	scripts/bootstrap

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# What packagers and many users pick (-O3): it must build too, warnings as errors included.
build-release: bootstrap
	cmake -S . -B $(RELEASE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(RELEASE_BUILD) -j $(JOBS)

# Everything a change must pass: format, unit + simulation tests, corpus replays, and the same
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer; the Release build compiles.
test: build format-check test-unit test-asan build-release

test-unit:
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: bootstrap
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPHALANX_SANITIZE=ON \
	  -DPHALANX_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	PHALANX_SIM_SEEDS=8 ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

format-check: bootstrap
	scripts/check-format

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD) $(FUZZ_BUILD)

# The main job: a three-member cluster and a client in network namespaces (needs root). It
# elects a master, serves a download through the cluster IP, kills the serving member and shows
# the survivors taking over; the lab is removed at the end whatever happens.
demo: build
	PHALANX_BUILD=$(abspath $(BUILD)) scripts/demo

# The same story in the deterministic simulator: no root, no namespaces, same protocol code.
sim-demo: build
	$(BUILD)/tools/phalanx-sim --demo
