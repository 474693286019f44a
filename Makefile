# scribed build. `make` builds build/scribed; `make test` runs the whole suite.
# Each folder of src/ becomes one static library; test binaries link only the
# libraries their area depends on, so a half-finished module elsewhere does not
# stop another area's tests from building.
#
#   make SANITIZE=1 test     ASan + UBSan (leaks fail the tests)
#   make BUILD=build-asan    another output folder

CC      ?= cc
.DEFAULT_GOAL := all
BUILD   ?= build
OPT     ?= -O2
SANITIZE ?=

PKGS := libmicrohttpd nettle jansson sqlite3 libavformat libavcodec libswresample libavutil libseccomp zlib libcurl libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  := -std=c17 -D_GNU_SOURCE -Isrc -Itests $(OPT) -g -fno-strict-aliasing \
           -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
           -MMD -MP -pthread $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(EXTRA_LDFLAGS)
# Speech synthesis (src/tts): flite's four English voices and espeak-ng (no pkg-config for flite).
TTS_LIBS := -lflite_cmu_us_kal16 -lflite_cmu_us_rms -lflite_cmu_us_slt -lflite_cmu_us_awb \
            -lflite_usenglish -lflite_cmulex -lflite -lespeak-ng
LDLIBS  := $(PKG_LIBS) $(TTS_LIBS) -lwslay -lm

ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifneq ($(WERROR),)
CFLAGS  += -Werror
endif

# Areas in link order (a library may only use those to its right). The graph
# itself (docs/ARCHITECTURE.md): util <- telemetry; util <- backend <- whisper
# <- output; audio, vad, tts, store and llm are siblings on util (vad on backend);
# pipeline (audio -> VAD -> whisper; text -> tts) <- jobs (+ store, llm, telemetry)
# <- realtime <- server (+ web) <- cli.
AREAS := cli server realtime web jobs llm store pipeline output vad audio tts whisper backend telemetry util

# What each area's unit tests link (itself first, then its dependencies).
DEPS_util      := util
DEPS_telemetry := telemetry util
DEPS_backend   := backend util
DEPS_whisper   := whisper backend util
DEPS_audio     := audio util
DEPS_tts       := tts util
DEPS_vad       := vad backend util
DEPS_output    := output whisper backend util
DEPS_store     := store util
DEPS_llm       := llm util
DEPS_pipeline  := pipeline output vad audio tts whisper backend util
DEPS_jobs      := jobs llm store pipeline output vad audio tts whisper backend telemetry util
DEPS_realtime  := realtime $(DEPS_jobs)
DEPS_server    := server realtime web $(DEPS_jobs)
DEPS_web       := web util
DEPS_cli       := $(AREAS)
DEPS_conformance := $(DEPS_pipeline)

# Kernel files per instruction set (issue 18): the x86 ones are built only
# when $(CC) targets x86-64, the NEON ones only for aarch64; other targets get
# the scalar table alone (src/backend/cpu/isa_absent.c answers the probes).
SD_ARCH := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))
X86_KERNELS  := $(wildcard src/backend/cpu/kern_*avx*.c)
NEON_KERNELS := $(wildcard src/backend/cpu/kern_*neon*.c)
ifeq ($(SD_ARCH),x86_64)
ARCH_EXCLUDE := $(NEON_KERNELS)
else ifeq ($(SD_ARCH),aarch64)
ARCH_EXCLUDE := $(X86_KERNELS)
else
ARCH_EXCLUDE := $(X86_KERNELS) $(NEON_KERNELS)
endif
srcs_of = $(filter-out $(ARCH_EXCLUDE),$(wildcard src/$(1)/*.c src/$(1)/*/*.c))
objs_of = $(patsubst %.c,$(BUILD)/obj/%.o,$(call srcs_of,$(1))) $(EXTRA_OBJS_$(1))

# The web page (web/) is compiled into the binary by tools/embed.c.
WEB_FILES := $(sort $(wildcard web/*.* web/*/*.*))
EXTRA_OBJS_web := $(BUILD)/obj/gen/web_assets.o
$(BUILD)/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=c17 -o $@ $<
$(BUILD)/gen/web_assets.c: $(WEB_FILES) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ $(WEB_FILES)
$(BUILD)/obj/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
lib_of  = $(BUILD)/lib/libsd_$(1).a

ALL_LIBS := $(foreach a,$(AREAS),$(call lib_of,$(a)))

UNIT_AREAS := $(foreach a,$(AREAS),$(if $(wildcard tests/unit/$(a)/*.c),$(a)))
UNIT_BINS  := $(foreach a,$(UNIT_AREAS),$(BUILD)/tests/unit_$(a))
CONF_BIN   := $(if $(wildcard tests/conformance/*.c),$(BUILD)/tests/conformance)
CHECK_OBJ  := $(BUILD)/obj/tests/check.o

.PHONY: all libs test unit clean fuzz-audio
all: $(BUILD)/scribed $(BUILD)/mkmodel
libs: $(ALL_LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# ---- CUDA backend (issue 21 Part 2): `make CUDA=1 BUILD=build-cuda` where nvcc exists.
# Compiles and links with nvcc 13.0 but has NEVER RUN: no GPU machine was available
# to the change that added it. The GPU machine runs tests/gpu/run.sh instead (an
# engine-only build: it lacks the service's libraries). Without nvcc, CUDA=1 stops
# here with one line.
NVCC ?= nvcc
CUDA_ARCH ?= sm_90
ifeq ($(CUDA),1)
ifeq ($(shell command -v $(NVCC) 2>/dev/null),)
$(error CUDA=1: no nvcc found (set NVCC=/path/to/nvcc); build without CUDA=1 for the CPU only)
endif
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC))))
CFLAGS  += -DSD_HAVE_CUDA
LDFLAGS += -L$(CUDA_HOME)/lib64
LDLIBS  += -lcublas -lcudart -lstdc++
EXTRA_OBJS_backend += $(BUILD)/obj/src/backend/cuda/cuda.o
$(BUILD)/obj/src/backend/cuda/cuda.o: src/backend/cuda/cuda.cu src/backend/cuda/cuda.h src/backend/ops.h
	@mkdir -p $(dir $@)
	$(NVCC) -O3 -std=c++17 -arch=$(CUDA_ARCH) -Isrc -DSD_HAVE_CUDA -Xcompiler -fno-strict-aliasing -c $< -o $@
endif

define AREA_RULES
$(call lib_of,$(1)): $(call objs_of,$(1))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rcs $$@)
endef
$(foreach a,$(AREAS),$(eval $(call AREA_RULES,$(a))))

$(BUILD)/scribed: $(BUILD)/obj/src/main.o $(ALL_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(ALL_LIBS) $(LDLIBS)

# Random-weight model writer from ../shared (benchmarks and tests only).
SHARED ?= ../shared
$(BUILD)/mkmodel: $(SHARED)/tools/mkmodel.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=c11 -o $@ $< -lm

define UNIT_RULES
$(BUILD)/tests/unit_$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/unit/$(1)/*.c)) $(CHECK_OBJ) $(foreach d,$(DEPS_$(1)),$(call lib_of,$(d)))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach a,$(UNIT_AREAS),$(eval $(call UNIT_RULES,$(a))))

$(BUILD)/tests/conformance: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/conformance/*.c)) $(CHECK_OBJ) $(foreach d,$(DEPS_conformance),$(call lib_of,$(d)))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BINS) $(CONF_BIN)

test: all unit
	BUILD=$(BUILD) tests/run.sh

# The store unit tests and the whole integration suite with the servers on
# PostgreSQL (tests/pg/run.sh starts a private cluster). `make test` runs the
# store unit tests on PostgreSQL too, and the multi-node tests (test_3x).
.PHONY: test-pg
test-pg: all unit
	BUILD=$(BUILD) tests/pg/run.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Build and start the service with the embedded defaults (SQLite in ./data).
.PHONY: run
run: all
	$(BUILD)/scribed serve --data-dir ./data

# ---- ARM64: cross build and conformance under qemu-user (issue 18) ----
# make check-arm64: builds the engine layers (util, backend, whisper, vad) with
# Debian's aarch64-linux-gnu-gcc into $(BUILD)/arm64, static, with the backend
# unit tests and the engine conformance tests (those that need no audio
# decoding, TTS or pipeline: the server's libraries are not cross-built), and
# runs them under qemu-aarch64 (tests/arm64/run.sh): on the CPU model "max"
# (NEON with SDOT: the unit tests cover the scalar, neon and neon-dotprod
# tables, the kernel-covering conformance tests the default one), then the
# table probe on a cortex-a57 (ARMv8.0, no SDOT: must pick plain NEON). Needs
# gcc-aarch64-linux-gnu, qemu-user and the arm64 libjansson-dev and
# zlib1g-dev (.ci/packages-test.txt). Correctness only: emulated speed means nothing.
ARM64_CC    ?= aarch64-linux-gnu-gcc
QEMU_ARM64  ?= qemu-aarch64
ARM64_BUILD := $(BUILD)/arm64
ARM64_CONF_TESTS := refdata test_decode test_engine test_quant test_mel test_mel_lazy \
                    test_tokenizer test_fallback test_words test_batcher test_vad
DEPS_conformance_engine := vad whisper backend util

$(BUILD)/tests/conformance_engine: $(patsubst %,$(BUILD)/obj/tests/conformance/%.o,$(ARM64_CONF_TESTS)) \
        $(CHECK_OBJ) $(foreach d,$(DEPS_conformance_engine),$(call lib_of,$(d)))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: check-arm64 arm64-bins
arm64-bins: $(BUILD)/tests/unit_backend $(BUILD)/tests/conformance_engine

check-arm64:
	$(MAKE) --no-print-directory BUILD=$(ARM64_BUILD) CC=$(ARM64_CC) PKGS=jansson \
	    LDLIBS="-ljansson -lz -lm" EXTRA_LDFLAGS=-static SANITIZE= EXTRA_CFLAGS= arm64-bins
	tests/arm64/run.sh $(ARM64_BUILD) $(QEMU_ARM64)

# ---- audio: fuzzing and a measurement driver (owned by src/audio) ----
# make fuzz-audio [FUZZ_SECONDS=60]: libFuzzer (clang-14, ASan+UBSan) over audio_decode_file
# with the sandbox on, then over the parent's pipe-record parser; not part of `make test`.
# make audio-tool: $(BUILD)/tests/audio_decode FILE, prints audio_info and peak RSS.
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_AUDIO_SRCS := $(wildcard src/audio/*.c) src/util/err.c src/util/clock.c
FUZZ_AUDIO_FLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(PKG_CFLAGS)

$(FUZZ_BUILD)/fuzz_audio $(FUZZ_BUILD)/fuzz_audio_relay: $(FUZZ_BUILD)/%: tests/fuzz/%.c \
        $(FUZZ_AUDIO_SRCS) $(wildcard src/audio/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_AUDIO_FLAGS) -o $@ $< $(FUZZ_AUDIO_SRCS) $(PKG_LIBS) -lm

fuzz-audio: $(FUZZ_BUILD)/fuzz_audio $(FUZZ_BUILD)/fuzz_audio_relay
	tests/fuzz/run_fuzz_audio.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

.PHONY: audio-tool
audio-tool: $(BUILD)/tests/audio_decode
$(BUILD)/tests/audio_decode: tests/unit/audio/tool/audio_decode_main.c $(call lib_of,audio) \
        $(call lib_of,util)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- fuzzing every parser of untrusted bytes (tests/fuzz/README.md) ----
# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="params jwt"]: builds the libraries
# once more with clang-14 and ASan + UBSan + libFuzzer coverage (in
# $(FUZZ_BUILD)/tree), links one libFuzzer binary per tests/fuzz/fuzz_*.c
# target below, and runs each for FUZZ_SECONDS over its seed corpus
# (tests/fuzz/seeds/NAME/, findings kept there as regression inputs).
FUZZ_TARGETS ?= multipart params jwt netaddr output model ws
FUZZ_TREE := $(FUZZ_BUILD)/tree
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

.PHONY: fuzz fuzz-build fuzz-libs
fuzz-libs:
	$(MAKE) --no-print-directory BUILD=$(FUZZ_TREE) CC=$(FUZZ_CC) OPT=-O1 \
	    EXTRA_CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" libs

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c fuzz-libs
	$(FUZZ_CC) -std=c17 -D_GNU_SOURCE -Isrc -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer $(PKG_CFLAGS) \
	    -o $@ $< $(foreach a,$(AREAS),$(FUZZ_TREE)/lib/libsd_$(a).a) $(LDLIBS) -pthread

fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(FUZZ_BUILD)/fuzz_$(t))

fuzz: fuzz-build $(BUILD)/mkmodel
	tests/fuzz/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
