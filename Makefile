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
LDLIBS  := $(PKG_LIBS) -lwslay -lm

ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifneq ($(WERROR),)
CFLAGS  += -Werror
endif

# Areas in link order (a library may only use those to its right). The graph
# itself (docs/ARCHITECTURE.md): util <- telemetry; util <- backend <- whisper
# <- output; audio, vad and store are siblings on util (vad on backend);
# pipeline (audio -> VAD -> whisper) <- jobs (+ store, telemetry) <- realtime
# <- server (+ web) <- cli.
AREAS := cli server realtime web jobs store pipeline output vad audio whisper backend telemetry util

# What each area's unit tests link (itself first, then its dependencies).
DEPS_util      := util
DEPS_telemetry := telemetry util
DEPS_backend   := backend util
DEPS_whisper   := whisper backend util
DEPS_audio     := audio util
DEPS_vad       := vad backend util
DEPS_output    := output whisper backend util
DEPS_store     := store util
DEPS_pipeline  := pipeline output vad audio whisper backend util
DEPS_jobs      := jobs store pipeline output vad audio whisper backend telemetry util
DEPS_realtime  := realtime $(DEPS_jobs)
DEPS_server    := server realtime web $(DEPS_jobs)
DEPS_web       := web util
DEPS_cli       := $(AREAS)
DEPS_conformance := $(DEPS_pipeline)

srcs_of = $(wildcard src/$(1)/*.c src/$(1)/*/*.c)
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

.PHONY: all test unit clean fuzz-audio
all: $(BUILD)/scribed $(BUILD)/mkmodel

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

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
