# build/edgetrace: the command-line tool (cli/), on the core and hiredis,
# with libcurl for the collectors and jansson for their JSON; serve's
# store is SQLite, its API libmicrohttpd (and libcrypt for its
# passwords).  Its unit
# tests, t/unit/test_cli_*.c, link the tool's files but its main.

CLI_SRCS     := $(wildcard cli/*.c)
CLI_HDRS     := $(wildcard cli/*.h)
CLI_OBJS     := $(patsubst cli/%.c,$(BUILD)/cli/%.o,$(CLI_SRCS)) \
                $(BUILD)/cli/et_cli_serve_assets.o
CLI_LIB_OBJS := $(filter-out $(BUILD)/cli/edgetrace.o,$(CLI_OBJS))
CLI_CFLAGS    = $(CORE_CFLAGS) -D_GNU_SOURCE -Icli
CLI_LIBS     := -lcurl -ljansson -lsqlite3 -lmicrohttpd -lcrypt $(LIBS)

.SECONDARY: $(CLI_OBJS)

all: $(BUILD)/edgetrace

$(BUILD)/cli/%.o: cli/%.c $(CLI_HDRS) $(CORE_HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) -c -o $@ $<

$(BUILD)/edgetrace: $(CLI_OBJS) $(CORE_OBJS)
	$(CC) $(CLI_CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(CORE_OBJS) $(CLI_LIBS)

# serve's web page (docs/ui.md): cli/ui/ compiled in, nothing read at run
# time
UI_ASSETS    := cli/ui/index.html cli/ui/ui.css cli/ui/ui.js

$(BUILD)/cli/et_cli_serve_assets.c: $(UI_ASSETS) scripts/ui-assets
	@mkdir -p $(dir $@)
	scripts/ui-assets $(UI_ASSETS) > $@.tmp
	mv $@.tmp $@

$(BUILD)/cli/et_cli_serve_assets.o: $(BUILD)/cli/et_cli_serve_assets.c \
                                    cli/et_cli_serve_ui.h
	$(CC) $(CLI_CFLAGS) -c -o $@ $<

CLI_UNIT_BINS := $(filter $(BUILD)/unit/test_cli_%,$(UNIT_BINS))

$(CLI_UNIT_BINS): $(BUILD)/unit/test_cli_%: t/unit/test_cli_%.c t/unit/tap.h \
                  $(CLI_LIB_OBJS) $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) -It/unit -o $@ $< $(CLI_LIB_OBJS) $(CORE_OBJS) \
	    $(CLI_LIBS)

# the tool's reading side under libFuzzer (make fuzz runs every fuzz_*)
$(BUILD)/fuzz/fuzz_cli_%: fuzz/fuzz_cli_%.c $(CLI_SRCS) $(CLI_HDRS) \
                       $(CORE_SRCS) $(CORE_HDRS) \
                       $(BUILD)/cli/et_cli_serve_assets.c
	@scripts/deps fuzz build
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -D_GNU_SOURCE -Icli -o $@ $< \
	    $(filter-out cli/edgetrace.c,$(CLI_SRCS)) $(CORE_SRCS) \
	    $(BUILD)/cli/et_cli_serve_assets.c \
	    -lcurl -ljansson -lsqlite3 -lmicrohttpd -lcrypt -lhiredis -lssl -lcrypto -lpthread
