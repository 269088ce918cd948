# Thin wrapper around CMake.  `make demo` and `make test` do all of their own
# set-up on a fresh Debian 12 machine: the Debian packages below are the one
# list of what heapfrag needs to build, test and benchmark.
DEB_PACKAGES := build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev \
	zlib1g-dev libmicrohttpd-dev libjansson-dev libcapstone-dev libdw-dev systemtap-sdt-dev \
	libcurl4-openssl-dev curl strace python3 python3-yaml binutils libc6-dbg bpftrace prometheus \
	redis-server redis-tools libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 wrk valgrind \
	clang-format golang-go chromium libjs-chart.js openssl libcap2-bin

BUILD      ?= build
SAN_BUILD  ?= $(BUILD)/sanitize
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
ifeq ($(CI),true)
CMAKE_ARGS += -DHF_WERROR=ON
endif

FUZZ_SECONDS ?= 600
SOAK_SECONDS ?= 600
SOAK        := $(abspath $(BUILD))/tests/soak_daemon_stays_flat_and_right_under_churn_kills_and_http

.PHONY: all deps build sanitize test demo format bench fuzz soak clean

all: build

# Installs what is missing, in one apt-get line; without root, says which.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done | tr '\n' ' '); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "heapfrag: missing Debian packages; as root run:" >&2; \
			echo "apt-get update && apt-get install -y $$missing" >&2; \
			exit 1; \
		fi; \
		echo "heapfrag: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

# The unit tests again, built with AddressSanitizer and UBSan.
sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHF_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(SAN_BUILD) -j $(JOBS)

test: build sanitize
	cd $(BUILD) && ctest --output-on-failure --timeout 900
	cd $(SAN_BUILD) && ctest --output-on-failure --timeout 900 -L unit

demo: build
	tests/demo/run.sh $(BUILD)

bench: build
	tests/bench/run.sh $(BUILD)

# Every libFuzzer target, one after another, for FUZZ_SECONDS each (make
# test runs the census walker's for 60 s and the others for 30 s).
FUZZERS := census http elf prologue procfs ptm_books symbolize
fuzz: build
	@for f in $(FUZZERS); do \
		echo "heapfrag: fuzz_$$f for $(FUZZ_SECONDS) s"; \
		tests/fuzz/run_fuzz.sh $(BUILD)/tests/fuzz_$$f tests/fuzz/$$f $(FUZZ_SECONDS) \
			$(BUILD)/tests/fuzz || exit 1; \
	done

# The soak for SOAK_SECONDS in each mode (make test runs it for 60 s, passive):
# prints its figures, and fails if heapfragd grew, left a process stopped or
# miscounted.  As root.
soak: build
	HF_BUILD_DIR=$(abspath $(BUILD)) HF_SOURCE_DIR=$(CURDIR) $(SOAK) $(SOAK_SECONDS) passive
	HF_BUILD_DIR=$(abspath $(BUILD)) HF_SOURCE_DIR=$(CURDIR) $(SOAK) $(SOAK_SECONDS) exact

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
