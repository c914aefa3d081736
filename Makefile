# edgetrace: make | make test | make demo | make bench | make deb
#
# The nginx module is built against Debian's nginx-dev tree, copied into
# build/nginx and configured once with the flags the installed nginx was
# built with (--with-compat).

SHELL      := /bin/bash
BUILD      := build

ifeq ($(SANITIZE),1)
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer
BUILD      := build/san
endif

NGX_SRC    := /usr/share/nginx/src
NGX_BUILD  := $(BUILD)/nginx

# the flags Debian built its nginx with (nginx -V): without them nginx's
# configure compiles add-ons at -O
NGX_CC_OPT := -g -O2 -fstack-protector-strong -Wformat \
              -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2
NGX_LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC

CORE_SRCS  := $(wildcard common/*.c)
CORE_HDRS  := $(wildcard common/*.h)
NGX_SRCS   := $(wildcard nginx-module/*.c)
NGX_HDRS   := $(wildcard nginx-module/*.h)

CC         ?= cc
OPT        ?= -O2
WARN       := -Wall -Wextra -Werror
CORE_CFLAGS = -std=c99 $(WARN) $(OPT) -g -fPIC -pthread -Icommon $(SAN_FLAGS)
LIBS       := -lhiredis -lssl -lcrypto -lpthread -lm


CORE_OBJS  := $(patsubst common/%.c,$(BUILD)/core/%.o,$(CORE_SRCS))
UNIT_SRCS  := $(wildcard t/unit/test_*.c)
UNIT_BINS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
# the tool's own (mk/cli.mk) link more
CORE_UNIT_BINS := $(filter-out $(BUILD)/unit/test_cli_%,$(UNIT_BINS))

MODULE     := $(BUILD)/ngx_http_edgetrace_module.so

.SECONDARY: $(CORE_OBJS)

.PHONY: all deps test unit demo bench clean

all: $(MODULE) $(UNIT_BINS)

# every compile waits for the packages: nothing reads a tool (apxs, the
# compiler's runtime paths) before this step ran, so the first run on a
# machine without them works like the second
deps:
	@scripts/deps build

$(BUILD)/core/%.o: common/%.c $(CORE_HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c -o $@ $<

# static pattern rules: make 4.4 (Debian 13) passes over an implicit rule
# whose prerequisites are still to be built and takes another one
$(CORE_UNIT_BINS): $(BUILD)/unit/%: t/unit/%.c t/unit/tap.h t/unit/tap_redis.h \
                   $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -It/unit -o $@ $< $(CORE_OBJS) $(LIBS)

# the add-on script lists the sources: nginx's configure runs again when
# that list changes, not on every edit
$(NGX_BUILD)/objs/Makefile: config Makefile | deps
	@test -d $(NGX_SRC) || { echo "edgetrace: nginx-dev is missing:" \
	    "apt-get install nginx-dev"; exit 1; }
	@rm -rf $(NGX_BUILD) && mkdir -p $(BUILD) && cp -r $(NGX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="$(NGX_CC_OPT) $(SAN_FLAGS)" \
	    --with-ld-opt="$(NGX_LD_OPT) $(SAN_FLAGS)" \
	    --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -20 configure.log; exit 1; }

$(MODULE): $(NGX_BUILD)/objs/Makefile $(CORE_SRCS) $(CORE_HDRS) \
           $(NGX_SRCS) $(NGX_HDRS)
	$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules
	cp $(NGX_BUILD)/objs/ngx_http_edgetrace_module.so $@

ifeq ($(SANITIZE),1)
# nginx itself is not built with the sanitizers: preload their runtime
# (expanded when the tests run, after the deps step installed the compiler)
TEST_ENV    = EDGETRACE_NGINX_PRELOAD="$(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)"
endif

test: all
	@scripts/deps test
	EDGETRACE_BUILD=$(BUILD) $(TEST_ENV) prove -r t

demo: all
	@scripts/deps demo
	perl scripts/demo

clean:
	rm -rf build

# further targets, one file per concern (httpd module, bench, fuzz)
include $(wildcard mk/*.mk)
