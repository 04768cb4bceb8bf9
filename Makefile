# Thin wrapper over meson for the README's commands.
#   make          build into build/ (build/umpath among the outputs)
#   make check    build and run every test (unit, conformance, integration)
#   make install  meson install of build/ (PREFIX=/usr to change the
#                 prefix first, DESTDIR=/tmp/root to stage)
#   make check-sanitize   the same suite under ASan + UBSan (build-san/)
#   make demo     the main job: a live multipath device while paths fail
#   make fuzz     every libFuzzer target for FUZZ_SECONDS each (build-fuzz/, clang)
#   make chaos    the chaos soak for CHAOS_SECONDS (CHAOS_SEED to replay a run)
#   make bench    the benchmarks: the engine's primitives (clock reads,
#                 atomics, locks), engine (ops/s, instructions per I/O),
#                 1,000 maps' memory, NBD export and iSCSI vs their peers
#   make bench-vm umpath-ublk vs umpath's NBD export + nbd-client vs
#                 dm-multipath in the Linux 6.12 guest: ratios only
BUILD ?= build
SAN_BUILD ?= build-san
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= table message config control nbd pr
MESON_TEST_ARGS ?= --print-errorlogs

.PHONY: all deps check check-sanitize install fuzz chaos demo bench bench-vm clean

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@sh scripts/deps.sh

# CI builds treat warnings as errors.
MESON_SETUP_ARGS ?= $(if $(CI),-Dwerror=true,)

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_SETUP_ARGS)

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) $(MESON_SETUP_ARGS) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

check: all
	meson test -C $(BUILD) $(MESON_TEST_ARGS)

# The prefix is build/'s (meson's default /usr/local) unless PREFIX says.
PREFIX ?=
install: all
	$(if $(PREFIX),meson configure $(BUILD) -Dprefix=$(PREFIX) && ninja -C $(BUILD))
	DESTDIR="$(DESTDIR)" meson install -C $(BUILD) --no-rebuild

# The vm suite runs here too: build-san's umpathd inside the guest, ASan
# and UBSan options passed in (tests/vm/run-vm.sh); measured 3.6 min for
# its three NBD-client tests under load, against 2-4 min in make check.
check-sanitize: deps $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C $(SAN_BUILD) $(MESON_TEST_ARGS) --no-suite bench

# Clang with libFuzzer, ASan and UBSan; every object instrumented.
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $(FUZZ_TARGETS:%=tests/fuzz/fuzz-%)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	bash tests/fuzz/run-fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

chaos: all
	bash tests/chaos/soak.sh $(BUILD)/umpathd $(BUILD)/umpath

demo: all
	bash scripts/demo.sh $(BUILD)

# bench/failover.sh draws into the build directory here; run it by hand
# (bash bench/failover.sh build) to redraw docs/failover.png.
bench: all
	$(BUILD)/bench/primitives
	$(BUILD)/bench/engine
	bash bench/engine-ir.sh $(BUILD)
	bash bench/scale.sh 1000 $(BUILD)
	bash bench/export.sh $(BUILD)
	bash bench/iscsi.sh $(BUILD)
	FAILOVER_PNG=$(BUILD)/failover.png bash bench/failover.sh $(BUILD)

bench-vm: all
	bash bench/ublk.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
