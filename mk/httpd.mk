# mod_edgetrace: the httpd module, compiled with the flags apxs reports and
# linked with the core's objects (no libtool, nothing written to the source
# tree).

APXS         ?= apxs
HTTPD_MODULE := $(BUILD)/mod_edgetrace.so
HTTPD_SRCS   := $(wildcard httpd-module/*.c)
HTTPD_OBJS   := $(patsubst httpd-module/%.c,$(BUILD)/httpd/%.o,$(HTTPD_SRCS))

ifneq ($(shell command -v $(APXS) 2>/dev/null),)
HTTPD_CFLAGS := $(foreach v,CFLAGS CPPFLAGS EXTRA_CPPFLAGS EXTRA_CFLAGS,\
                  $(shell $(APXS) -q $(v))) \
                -I$(shell $(APXS) -q INCLUDEDIR) \
                -I$(shell $(APXS) -q APR_INCLUDEDIR) \
                -I$(shell $(APXS) -q APU_INCLUDEDIR)
endif

all: $(HTTPD_MODULE)

$(BUILD)/httpd/%.o: httpd-module/%.c $(CORE_HDRS)
	@test -n "$(HTTPD_CFLAGS)" || { echo "edgetrace: apache2-dev is" \
	    "missing: apt-get install apache2-dev"; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(HTTPD_CFLAGS) $(WARN) -Wno-missing-field-initializers \
	    -fPIC -Icommon $(SAN_FLAGS) -c -o $@ $<

$(HTTPD_MODULE): $(HTTPD_OBJS) $(CORE_OBJS)
	$(CC) -shared -o $@ $(HTTPD_OBJS) $(CORE_OBJS) $(SAN_FLAGS) \
	    -Wl,-z,relro -Wl,-z,now $(LIBS)
