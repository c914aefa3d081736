# make bench: tracing's cost against the same nginx without it (never part
# of make test; see scripts/bench for the knobs)

.PHONY: bench bench-instructions bench-serve

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

# make bench-serve: edgetrace serve's ingest rate and its queries at 10
# million spans (scripts/bench-serve); its spans come from
# scripts/bench-serve-load.c, which links serve's store code (the objects
# of build/edgetrace: mk/cli.mk, read after this file, names them)
BENCH_SERVE_LOAD := $(BUILD)/bench-serve-load

all: $(BENCH_SERVE_LOAD)

$(BENCH_SERVE_LOAD): scripts/bench-serve-load.c $(BUILD)/edgetrace
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) -o $@ $< $(CLI_LIB_OBJS) $(CORE_OBJS) $(CLI_LIBS)

bench-serve: all
	@scripts/deps bench
	perl scripts/bench-serve
