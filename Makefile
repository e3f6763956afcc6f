# tdxhp: `make fuzz` and `make test` do all setup on a fresh Debian 12 machine.
BUILD      ?= build        # optimised build: tdxhp, fuzz runs, benchmarks
TEST_BUILD ?= build-test   # ASan + UBSan build for the test suite
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 30
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the build and the tests need (the vm target's extra ones are in vm-deps).
# linux-source-6.12: runners/kvm builds libkvm-selftests from it when KSRC is unset.
DEB_PACKAGES := cmake g++ make pkg-config python3 \
  librapidcheck-dev libgtest-dev libgmock-dev nlohmann-json3-dev libbenchmark-dev \
  libtracefs-dev libtraceevent-dev \
  linux-source-6.12

.PHONY: all deps build test-build fuzz test bench clean

all: build

# Idempotent and quiet when everything is present.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	@cmake -S . -B $(strip $(BUILD)) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(strip $(BUILD)) -j $(JOBS)

test-build: deps
	@cmake -S . -B $(strip $(TEST_BUILD)) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTDXHP_SANITIZE=ON >/dev/null
	@cmake --build $(strip $(TEST_BUILD)) -j $(JOBS)

fuzz: build
	$(strip $(BUILD))/runners/cli/tdxhp run --target sim --seconds $(FUZZ_SECONDS) --out out/fuzz

test: build test-build
	ctest --test-dir $(strip $(TEST_BUILD)) --output-on-failure -j $(JOBS)

bench: build
	$(strip $(BUILD))/bench/tdxhp_bench

clean:
	rm -rf $(strip $(BUILD)) $(strip $(TEST_BUILD))
