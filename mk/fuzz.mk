# make fuzz: every parser that sees client or config input, and the
# span-to-entry encoder, under libFuzzer with ASan and UBSan, each for
# FUZZ_SECONDS (30 by default) from the seed corpus in fuzz/corpus/.  New
# inputs go to a temporary directory: the repository's corpus stays small.
# Any crash, leak or undefined behaviour fails the target; the input is kept
# in $(BUILD)/fuzz/ to become a unit-test case.

FUZZ_SECONDS  ?= 30
FUZZ_CC       ?= clang
FUZZ_FLAGS    := -g -O1 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=all -Icommon
FUZZ_TARGETS  := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-build

fuzz-build: $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_TARGETS))

$(BUILD)/fuzz/%: fuzz/%.c $(CORE_SRCS) $(CORE_HDRS)
	@scripts/deps fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(CORE_SRCS) -lhiredis -lssl -lcrypto \
	    -lpthread

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    work=$$(mktemp -d); \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/$$t- $$work fuzz/corpus/$$t \
	        > $(BUILD)/fuzz/$$t.log 2>&1 \
	        || { tail -40 $(BUILD)/fuzz/$$t.log; rm -rf $$work; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' $(BUILD)/fuzz/$$t.log; \
	    rm -rf $$work; \
	done
