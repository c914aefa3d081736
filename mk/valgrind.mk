# make valgrind: the unit tests that need no server, under valgrind's
# memcheck (leaks included); the ones that talk to Redis run under the
# sanitizers in make test SANITIZE=1 instead (their timing assertions do
# not hold at valgrind's speed), but for test_tls: TLS's handshakes, its
# refusals and its reads and writes, with t/unit/tls.t's servers.

VALGRIND_UNITS := test_b3 test_cluster test_core test_exporter_conf \
                  test_http test_id test_metrics test_queue test_propagation \
                  test_redis_url test_resp test_sampler test_span test_w3c \
                  test_cli_span test_cli_duration test_cli_utf8 \
                  test_cli_json

.PHONY: valgrind

VALGRIND     := valgrind -q --error-exitcode=99 --leak-check=full \
                --errors-for-leak-kinds=definite,indirect

valgrind: $(patsubst %,$(BUILD)/unit/%,$(VALGRIND_UNITS)) \
          $(BUILD)/unit/test_tls
	@scripts/deps test
	@set -e; for t in $(VALGRIND_UNITS); do \
	    printf 'valgrind %-16s ' $$t; \
	    $(VALGRIND) \
	        $(BUILD)/unit/$$t > $(BUILD)/unit/$$t.valgrind 2>&1 \
	        || { echo failed; tail -30 $(BUILD)/unit/$$t.valgrind; exit 1; }; \
	    echo clean; \
	done
	@printf 'valgrind %-16s ' test_tls; \
	EDGETRACE_BUILD=$(BUILD) ET_TLS_WRAP="$(VALGRIND)" perl t/unit/tls.t \
	    > $(BUILD)/unit/test_tls.valgrind 2>&1 \
	    || { echo failed; tail -30 $(BUILD)/unit/test_tls.valgrind; exit 1; }; \
	echo clean
