# tdxhp: `make fuzz` and `make test` do all setup on a fresh Debian 12 machine.
# BUILD: optimised build (tdxhp, fuzz runs, benchmarks); TEST_BUILD: ASan + UBSan build for the tests.
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 30
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the build and the tests need (the vm target's extra ones are in vm-deps).
# linux-source-6.12: runners/kvm builds libkvm-selftests from it when KSRC is unset, and the
# kselftest install test runs its run_kselftest.sh. python3-matplotlib draws report.html's plots;
# chromium renders report.html headless in its test.
DEB_PACKAGES := cmake g++ make pkg-config python3 \
  librapidcheck-dev libgtest-dev libgmock-dev nlohmann-json3-dev libbenchmark-dev \
  libtracefs-dev libtraceevent-dev \
  linux-source-6.12 python3-matplotlib chromium

# The vm target (runners/vm): QEMU, busybox for the initramfs; the kernel image/headers are
# fetched by the driver with apt-get download into build-vm, never installed into /boot.
VM_DEB_PACKAGES := qemu-system-x86 busybox-static linux-source-6.12 gcc make binutils xz-utils
VM_SMOKE_SECONDS ?= 30   # per property (three runs)
VM_FUZZ_SECONDS  ?= 600
VM_DRIVER := /usr/bin/python3 runners/vm/tdxhp_vm.py

.PHONY: all deps build test-build fuzz test bench clean vm-deps vm-smoke vm-fuzz soak fuzz-parser install repro

all: build

# Installs the Debian packages of $(1) that are missing; idempotent and quiet when all are there.
define apt_install
	@missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(DEB_PACKAGES))

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
	@$(MAKE) --no-print-directory fuzz-parser FUZZ_PARSER_SECONDS=60
	@$(MAKE) --no-print-directory vm-smoke

# libFuzzer over the case-file and CLI-argument parsers (fuzz/): first every kept regression
# input and seed, then FUZZ_PARSER_SECONDS of fuzzing per harness, both at once. A crash stops
# it with the input under $(FUZZ_BUILD)/crash-*: keep it in fuzz/regressions/<harness>/.
FUZZ_BUILD          ?= build-fuzz
FUZZ_PARSER_SECONDS ?= 60
FUZZ_DEB_PACKAGES   := clang-14 libclang-rt-14-dev nlohmann-json3-dev
FUZZ_CXX := clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I.
FUZZ_FLAGS = -max_total_time=$(FUZZ_PARSER_SECONDS) -rss_limit_mb=1024 -timeout=5 -max_len=65536 -print_final_stats=1
PARSER_SOURCES := domain/case_file.cpp domain/describe.cpp domain/catalog.cpp $(wildcard domain/*.h)

$(FUZZ_BUILD)/case_file_fuzz: fuzz/case_file_fuzz.cpp $(PARSER_SOURCES)
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CXX) $(filter %.cpp,$^) -o $@
$(FUZZ_BUILD)/args_fuzz: fuzz/args_fuzz.cpp runners/cli/args.cpp runners/cli/args.h $(PARSER_SOURCES)
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CXX) $(filter-out domain/case_file.cpp,$(filter %.cpp,$^)) -o $@

fuzz-parser:
	$(call apt_install,$(FUZZ_DEB_PACKAGES))
	@$(MAKE) --no-print-directory $(FUZZ_BUILD)/case_file_fuzz $(FUZZ_BUILD)/args_fuzz
	@mkdir -p $(FUZZ_BUILD)/corpus/case_file $(FUZZ_BUILD)/corpus/args
	@for h in case_file:fixtures/cases args:fuzz/args_corpus; do \
	  name=$${h%%:*}; $(FUZZ_BUILD)/$${name}_fuzz -runs=0 fuzz/regressions/$$name $${h#*:} > $(FUZZ_BUILD)/$$name-replay.log 2>&1 \
	    || { tail -n 30 $(FUZZ_BUILD)/$$name-replay.log; echo "fuzz-parser: a kept input of $$name fails again"; exit 1; }; \
	  echo "fuzz-parser $$name: $$(tail -n 1 $(FUZZ_BUILD)/$$name-replay.log) (regressions and seeds)"; \
	done
	@cd $(FUZZ_BUILD) || exit 1; \
	  { ./case_file_fuzz $(FUZZ_FLAGS) -artifact_prefix=crash-case_file- corpus/case_file ../fixtures/cases \
	      ../fuzz/regressions/case_file > case_file.log 2>&1; echo $$? > case_file.rc; } & \
	  { ./args_fuzz $(FUZZ_FLAGS) -artifact_prefix=crash-args- corpus/args ../fuzz/args_corpus \
	      ../fuzz/regressions/args > args.log 2>&1; echo $$? > args.rc; } & wait; \
	  for h in case_file args; do \
	    echo "fuzz-parser $$h: exit $$(cat $$h.rc), $$(grep -h '^stat::number_of_executed_units' $$h.log | awk '{print $$2}') executions in $(FUZZ_PARSER_SECONDS) s"; \
	  done; \
	  if [ "$$(cat case_file.rc)$$(cat args.rc)" != 00 ]; then \
	    tail -n 30 case_file.log args.log; ls crash-* 2>/dev/null; exit 1; fi

vm-deps:
	$(call apt_install,$(VM_DEB_PACKAGES))

# Real KVM (SW-protected VMs) inside QEMU: probe, the issue-6 properties with a small fixed
# budget, replay of fixtures/cases. TDXHP_SKIP_VM=1 skips it, visibly.
vm-smoke:
	@if [ "$(TDXHP_SKIP_VM)" = 1 ]; then \
	  echo "SKIP: vm smoke (TDXHP_SKIP_VM=1): no real-KVM run inside QEMU"; \
	else \
	  $(MAKE) --no-print-directory vm-deps && \
	  $(VM_DRIVER) smoke --seconds $(VM_SMOKE_SECONDS) --seed 1 --out out/vm-smoke --jobs $(JOBS); \
	fi

vm-fuzz: vm-deps
	$(VM_DRIVER) run --seconds $(VM_FUZZ_SECONDS) --out out/vm-fuzz --jobs $(JOBS)

# A clean soak: every property, default generator (motifs + swarm), one run per seed, $(JOBS) at a
# time. Not part of `make test` (20 x 60 s). Fails if any seed fails; cases land in out/soak/.
SOAK_SEEDS   ?= $(shell seq 1 20)
SOAK_SECONDS ?= 60
soak: build
	@rm -rf out/soak && mkdir -p out/soak
	@printf '%s\n' $(SOAK_SEEDS) | xargs -P $(JOBS) -I{} sh -c \
	  '$(strip $(BUILD))/runners/cli/tdxhp run --target sim --seconds $(SOAK_SECONDS) --seed {} --no-progress \
	     --out out/soak/seed-{} > out/soak/seed-{}.log 2>&1; echo "seed {}: exit $$? $$(grep -h ^verdict out/soak/seed-{}.log)"' \
	  | sort -n -k2 | tee out/soak/summary.txt
	@! grep -qv ': exit 0 ' out/soak/summary.txt || { echo "soak: a seed failed; cases in out/soak/seed-*/cases"; exit 1; }

# tdxhp as a kselftest collection (runners/kselftest): INSTALL_PATH/run_kselftest.sh -c tdxhp runs
# one test per property, KSELFTEST_SECONDS each, against the running kernel (TDXHP_TARGET=sim for
# the simulator). An existing kselftest install at INSTALL_PATH keeps its runner and list entries.
INSTALL_PATH      ?= out/kselftest
KSELFTEST_SECONDS ?= 30
install: build
	@sel=$(strip $(BUILD))/libkvm/linux-source-6.12/tools/testing/selftests; \
	  /usr/bin/python3 runners/kselftest/install.py $(strip $(BUILD))/runners/cli/tdxhp $(INSTALL_PATH) \
	    --seconds $(KSELFTEST_SECONDS) $$([ -d $$sel ] && echo --selftests $$sel)

# A case file as a standalone KVM-selftest-style C program (tdxhp export --c), built against
# the libkvm-selftests of $(BUILD)/libkvm: make repro CASE=fixtures/cases/X.json [FLAVOUR=plain]
# writes $(REPRO_DIR)/X.c and the program $(REPRO_DIR)/X, which prints KTAP. A TD reproducer
# (FLAVOUR=tdx, or a case only a TD expresses) is only compiled, against the stand-in TDX
# headers: it links and runs in the intel/tdx tree (see the program's header).
REPRO_DIR ?= out/repro
repro: build
	@[ -n "$(CASE)" ] || { echo "make repro: give CASE=path/to/case.json"; exit 2; }
	@name=$$(basename "$(CASE)" .json); mkdir -p $(REPRO_DIR) && \
	  $(strip $(BUILD))/runners/cli/tdxhp export --c "$(CASE)" -o $(REPRO_DIR)/$$name.c $(if $(FLAVOUR),--flavour $(FLAVOUR)) && \
	  if grep -q '^ \* Flavour: tdx' $(REPRO_DIR)/$$name.c; then \
	    TDX_STANDIN=runners/export/tests/fake_tdx sh runners/export/build_repro.sh $(strip $(BUILD))/libkvm \
	      $(REPRO_DIR)/$$name.c $(REPRO_DIR)/$$name.o && \
	    echo "compiled $(REPRO_DIR)/$$name.c against stand-in TDX headers (not linked, not run: build it in the intel/tdx tree)"; \
	  else \
	    sh runners/export/build_repro.sh $(strip $(BUILD))/libkvm $(REPRO_DIR)/$$name.c $(REPRO_DIR)/$$name && \
	    echo "built $(REPRO_DIR)/$$name (run it as root on a host with /dev/kvm)"; \
	  fi

# Throughput, time to detect per MUT-* (default vs uniform generator), shrink quality, scaling
# (issue 16): bench/results/<commit>.json and .md, the table printed. Builds only what it runs.
BENCH_ARGS ?=
bench: deps
	@cmake -S . -B $(strip $(BUILD)) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@targets="tdxhp tdxhp_bench tdxhp_detect"; \
	  cmake --build $(strip $(BUILD)) --target help | grep -q tdxhp_kvm_raw && targets="$$targets tdxhp_kvm_raw"; \
	  cmake --build $(strip $(BUILD)) -j $(JOBS) --target $$targets
	/usr/bin/python3 bench/run_bench.py --build $(strip $(BUILD)) $(BENCH_ARGS)

clean:
	rm -rf $(strip $(BUILD)) $(strip $(TEST_BUILD)) $(strip $(FUZZ_BUILD))
