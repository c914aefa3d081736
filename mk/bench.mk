# make bench: tracing's cost against the same nginx without it (never part
# of make test; see scripts/bench for the knobs)

.PHONY: bench

bench: all
	@scripts/deps bench
	perl scripts/bench

# instructions per request under callgrind: noise-free, for hot-path work
.PHONY: bench-instructions

bench-instructions: all
	@scripts/deps bench
	perl scripts/bench-instructions
