# make bench: tracing's cost against the same nginx without it (never part
# of make test; see scripts/bench for the knobs)

.PHONY: bench bench-instructions

# the bench's Redis stand-in (scripts/bench-sink.c), built with everything
# so that it compiles warning-free like the rest; never used by tests
BENCH_SINK := $(BUILD)/bench-sink

all: $(BENCH_SINK)

$(BENCH_SINK): scripts/bench-sink.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(WARN) -O2 $(SAN_FLAGS) -o $@ $<

bench: all
	@scripts/deps bench
	perl scripts/bench

# instructions per request under callgrind: noise-free, for hot-path work
bench-instructions: all
	@scripts/deps bench
	perl scripts/bench-instructions
