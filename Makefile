# tedge-hsm build: common/ and proto/ as static libraries linked into every binary,
# objects under $(BUILD)/, binaries in $(BUILD)/bin/. See README.md for the targets.

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
OPT      ?= -O2 -g
SAN      ?=
CC       ?= cc
PYTHON   ?= /usr/bin/python3
# Seconds each fuzz target runs under `make fuzz` (CI keeps the whole run about a minute).
FUZZ_SECONDS ?= 30
# Extra arguments for pytest, e.g. PYTEST_ARGS='-k config -x'.
PYTEST_ARGS ?=
# V=1 shows every compiler command.
V ?= 0
Q = $(if $(filter 1,$(V)),,@)

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
PKGS     := p11-kit-1 libmosquitto libcjson libsystemd
# Evaluated once, on first use, so that `make deps all` works on a machine without the -dev packages.
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null))$(PKG_LIBS)
# mbedTLS 2.28 on Debian 12 ships no .pc file.
MBEDTLS_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wno-missing-field-initializers
ALL_CFLAGS = $(OPT) -std=c11 $(WARN) -D_GNU_SOURCE -DTEDGE_VERSION='"$(VERSION)"' -pthread \
             -I. $(PKG_CFLAGS) $(SAN) $(CFLAGS)
ALL_LDFLAGS = -pthread $(SAN) $(LDFLAGS)
LIBS       = $(PKG_LIBS) $(MBEDTLS_LIBS) -lm

# Every Debian 12 package that the build, tests, fuzzing, demo and benchmarks need.
DEB_PACKAGES := build-essential pkg-config clang libclang-rt-14-dev \
    libmbedtls-dev libp11-kit-dev libmosquitto-dev libcjson-dev libsystemd-dev libcmocka-dev \
    p11-kit p11-kit-modules softhsm2 opensc gnutls-bin openssl mosquitto mosquitto-clients \
    systemd valgrind python3 python3-pytest python3-pytest-xdist python3-pytest-timeout python3-paho-mqtt

# ---- sources ---------------------------------------------------------------------------
COMMON_SRC := $(sort $(wildcard common/*.c))
PROTO_SRC  := $(sort $(wildcard proto/*.c))
SERVER_MAIN := p11-server/main.c
SERVER_SRC := $(filter-out $(SERVER_MAIN),$(sort $(wildcard p11-server/*.c)))
CLI_MAINS  := tedge-cli/tedge_main.c tedge-cli/mapper_main.c
CLI_SRC    := $(filter-out $(CLI_MAINS),$(sort $(wildcard tedge-cli/*.c tedge-cli/*/*.c)))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_HELPER_SRC := $(filter-out $(UNIT_SRC),$(sort $(wildcard tests/unit/*.c)))
MOCK_SRC   := $(sort $(wildcard tests/mock/*.c))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
TOOL_SRC   := $(sort $(wildcard tests/tools/*.c))
BENCH_SRC  := $(sort $(wildcard tests/bench/bench_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_COMMON := $(BUILD)/lib/libcommon.a
LIB_PROTO  := $(BUILD)/lib/libproto.a
LIB_SERVER := $(BUILD)/lib/libp11server.a
LIB_CLI    := $(BUILD)/lib/libtedgecli.a
# Static libraries in link order: higher layers first.
ALL_LIBS   := $(LIB_CLI) $(LIB_SERVER) $(LIB_PROTO) $(LIB_COMMON)

BINS       := $(BUILD)/bin/tedge $(BUILD)/bin/tedge-mapper $(BUILD)/bin/tedge-p11-server
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
MOCK_SO    := $(if $(MOCK_SRC),$(BUILD)/tests/libmockp11.so)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(FUZZ_SRC))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/tests/bench/%,$(BENCH_SRC))
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))

.PHONY: all deps test unit integration check-asan fuzz fuzz-build install clean tests-build check-deps
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BINS)

tests-build: $(BINS) $(UNIT_BINS) $(MOCK_SO) $(TOOL_BINS)

# ---- dependencies ----------------------------------------------------------------------
deps:
	@if [ "$$(id -u)" -ne 0 ]; then \
	  echo "make deps installs Debian packages and must run as root. Run:"; \
	  echo "  sudo make deps"; \
	  echo "or: sudo apt-get update && sudo apt-get install -y $(DEB_PACKAGES)"; \
	  exit 1; \
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

# Fails early, with the fix, when a -dev package is missing.
$(BUILD)/.deps-ok:
	@pkg-config --exists $(PKGS) && test -f /usr/include/mbedtls/version.h || \
	  { echo "Missing build dependencies: run 'make deps' as root (see README.md)."; exit 1; }
	@mkdir -p $(@D) && touch $@

# ---- compile and link ------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(BUILD)/.deps-ok
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB_COMMON): $(call obj,$(COMMON_SRC))
$(LIB_PROTO): $(call obj,$(PROTO_SRC))
$(LIB_SERVER): $(call obj,$(SERVER_SRC))
$(LIB_CLI): $(call obj,$(CLI_SRC))
$(ALL_LIBS):
	@mkdir -p $(@D)
	$(if $(Q),@echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Each product links only its own layer and the ones below it (DESIGN.md).
CLI_LIBS    := $(LIB_CLI) $(LIB_PROTO) $(LIB_COMMON)
SERVER_LIBS := $(LIB_SERVER) $(LIB_PROTO) $(LIB_COMMON)
$(BUILD)/bin/tedge: $(call obj,tedge-cli/tedge_main.c) $(CLI_LIBS)
$(BUILD)/bin/tedge-mapper: $(call obj,tedge-cli/mapper_main.c) $(CLI_LIBS)
$(BUILD)/bin/tedge-p11-server: $(call obj,$(SERVER_MAIN)) $(SERVER_LIBS)
$(BINS):
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Test drivers: small programs that expose one part to the integration tests (tests/tools/).
$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(ALL_LIBS) $(LIBS)

# Unit tests: one cmocka program per module, linked against everything (the linker keeps what is used).
$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(call obj,$(UNIT_HELPER_SRC)) $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(call obj,$(UNIT_HELPER_SRC)) $(ALL_LIBS) $(LIBS) -lcmocka

# The mock PKCS#11 module for fault injection (tests/mock/README.md).
$(BUILD)/obj/tests/mock/%.o: tests/mock/%.c | $(BUILD)/.deps-ok
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@
$(BUILD)/tests/libmockp11.so: $(call obj,$(MOCK_SRC))
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ -lmbedcrypto

# ---- tests -----------------------------------------------------------------------------
test: unit integration

unit: $(UNIT_BINS) $(MOCK_SO)
	@fail=0; for t in $(UNIT_BINS); do \
	  echo "== $$t"; TEDGE_MOCK_MODULE=$(abspath $(MOCK_SO)) $$t || fail=1; \
	done; exit $$fail

integration: $(BINS) $(MOCK_SO) $(TOOL_BINS)
	TEDGE_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -n auto tests/integration $(PYTEST_ARGS)

# The same suites built with ASan+UBSan in their own build dir.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
check-asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) BUILD=build/asan OPT="-O1 -g" SAN="$(ASAN_FLAGS)" test

# ---- fuzzing (clang + libFuzzer, own build dir) ----------------------------------------
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang OPT="-O1 -g" SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-build
	@set -e; for f in build/fuzz/tests/fuzz/fuzz_*; do [ -x "$$f" ] || continue; \
	  name=$$(basename $$f); corpus=build/fuzz/corpus/$$name; mkdir -p $$corpus; \
	  echo "== $$name ($(FUZZ_SECONDS) s)"; \
	  TEDGE_MOCK_MODULE=$(abspath build/fuzz/tests/libmockp11.so) \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$corpus tests/fuzz/corpus/$$name 2>&1 | tail -n 12; \
	done

fuzz-build: $(FUZZ_BINS) $(MOCK_SO)
$(BUILD)/tests/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $< $(ALL_LIBS) $(LIBS)

# ---- demo ------------------------------------------------------------------------------
# The README's first command (tests/demo/demo.py): installs the Debian packages when some are
# missing (as root; otherwise says how), builds, connects a device whose key is in a SoftHSM2
# token to a local stand-in of Cumulocity, and cleans up after itself.
.PHONY: demo
demo:
	@missing=$$(dpkg-query -W -f='$${db:Status-Abbrev} $${Package}\n' $(DEB_PACKAGES) 2>&1 | grep -v '^ii '); \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" -eq 0 ]; then \
	  echo "Installing the Debian packages the demo needs (make deps)..."; \
	  $(MAKE) --no-print-directory deps; \
	else \
	  echo "The demo needs Debian packages that are not installed yet. Run once:"; \
	  echo "  sudo make deps"; \
	  echo "then run 'make demo' again."; \
	  exit 1; \
	fi
	@$(MAKE) --no-print-directory all
	@TEDGE_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) tests/demo/demo.py

# ---- install / clean -------------------------------------------------------------------
install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	@if [ -n "$(wildcard systemd/*.service systemd/*.socket)" ]; then \
	  install -d $(DESTDIR)$(PREFIX)/lib/systemd/system; \
	  install -m 0644 $(wildcard systemd/*.service systemd/*.socket) $(DESTDIR)$(PREFIX)/lib/systemd/system/; \
	fi

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
