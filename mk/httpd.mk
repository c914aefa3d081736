# mod_edgetrace: the httpd module, compiled with the flags apxs reports and
# linked with the core's objects (no libtool, nothing written to the source
# tree).

APXS         ?= apxs
HTTPD_MODULE := $(BUILD)/mod_edgetrace.so
HTTPD_SRCS   := $(wildcard httpd-module/*.c)
HTTPD_HDRS   := $(wildcard httpd-module/*.h)
HTTPD_OBJS   := $(patsubst httpd-module/%.c,$(BUILD)/httpd/%.o,$(HTTPD_SRCS))

# apxs is asked when the objects are built, after the deps step has
# installed apache2-dev: read at parse time, a first run on a machine
# without it would fail where the second passes
HTTPD_FLAGS  := $(BUILD)/httpd/cflags

all: $(HTTPD_MODULE)

$(HTTPD_FLAGS): mk/httpd.mk | deps
	@command -v $(APXS) >/dev/null || { echo "edgetrace: apache2-dev is" \
	    "missing: apt-get install apache2-dev"; exit 1; }
	@mkdir -p $(dir $@)
	@{ for v in CFLAGS CPPFLAGS EXTRA_CPPFLAGS EXTRA_CFLAGS; do \
	       $(APXS) -q $$v; done; \
	   for v in INCLUDEDIR APR_INCLUDEDIR APU_INCLUDEDIR; do \
	       echo "-I$$($(APXS) -q $$v)"; done; } | tr '\n' ' ' > $@.tmp
	@mv $@.tmp $@

$(BUILD)/httpd/%.o: httpd-module/%.c $(HTTPD_HDRS) $(CORE_HDRS) $(HTTPD_FLAGS)
	$(CC) $$(cat $(HTTPD_FLAGS)) $(WARN) -Wno-missing-field-initializers \
	    -fPIC -Icommon $(SAN_FLAGS) -c -o $@ $<

$(HTTPD_MODULE): $(HTTPD_OBJS) $(CORE_OBJS)
	$(CC) -shared -o $@ $(HTTPD_OBJS) $(CORE_OBJS) $(SAN_FLAGS) \
	    -Wl,-z,relro -Wl,-z,now $(LIBS)
