/*
 * Unit tests: et_span.c (the service name and its field, the user
 * attributes and the bounds of a span).
 */

#include <stdlib.h>

#include "tap.h"
#include "et_span.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))


static void
test_service_name_check(void)
{
    int           rc;
    size_t        i;
    uint8_t       name[ET_SERVICE_NAME_MAX + 2];
    const char   *err;

    static const struct {
        size_t       len;
        int          rc;
    } cases[] = {
        { 0, ET_ERROR },
        { 1, ET_OK },
        { 254, ET_OK },
        { ET_SERVICE_NAME_MAX, ET_OK },
        { ET_SERVICE_NAME_MAX + 1, ET_ERROR },
        { ET_SERVICE_NAME_MAX + 2, ET_ERROR },
    };

    memset(name, 's', sizeof(name));

    for (i = 0; i < nelts(cases); i++) {
        err = NULL;
        rc = et_service_name_check(name, cases[i].len, &err);
        tap_is_int(rc, cases[i].rc, "service name of %zu bytes",
                   cases[i].len);

        if (rc == ET_OK) {
            tap_ok(err == NULL, "service name of %zu bytes: no reason",
                   cases[i].len);

        } else {
            tap_ok(err && strcmp(err, "must be 1 to 255 bytes") == 0,
                   "service name of %zu bytes: the reason", cases[i].len);
        }
    }

    /* the field is binary-safe: any byte goes */
    err = NULL;
    tap_is_int(et_service_name_check((const uint8_t *) "a\0b\r\n\xff", 6,
                                     &err),
               ET_OK, "service name with NUL, CR LF and 0xff");

    /* an empty name needs no pointer */
    tap_is_int(et_service_name_check(NULL, 0, &err), ET_ERROR,
               "service name NULL, 0 bytes");
}


static void
test_service_field(void)
{
    size_t        i;
    char          want[600];
    uint8_t      *buf, big[ET_SERVICE_NAME_MAX];
    et_str_t      f;

    static const char  *names[] = { "nginx", "httpd", "a", "checkout api" };

    for (i = 0; i < nelts(names); i++) {
        buf = malloc(ET_SERVICE_FIELD_SIZE(strlen(names[i])));
        if (buf == NULL) {
            abort();
        }

        et_service_field_init(&f, buf, (const uint8_t *) names[i],
                              strlen(names[i]));
        snprintf(want, sizeof(want), "$12\r\nservice.name\r\n$%zu\r\n%s\r\n",
                 strlen(names[i]), names[i]);
        tap_is_mem(f.data, f.len, want, "service field \"%s\"", names[i]);
        tap_ok(f.len <= ET_SERVICE_FIELD_SIZE(strlen(names[i])),
               "service field \"%s\": within its size", names[i]);
        free(buf);
    }

    /* the longest name: exactly its size or less, checked under valgrind */
    memset(big, 'x', sizeof(big));
    buf = malloc(ET_SERVICE_FIELD_SIZE(sizeof(big)));
    if (buf == NULL) {
        abort();
    }

    et_service_field_init(&f, buf, big, sizeof(big));
    tap_ok(f.len == sizeof("$12\r\nservice.name\r\n$255\r\n\r\n") - 1
                    + sizeof(big)
           && memcmp(f.data + f.len - 2 - sizeof(big), big, sizeof(big))
              == 0,
           "service field of %zu bytes", sizeof(big));
    free(buf);
}


static void
test_attr_add_string(void)
{
    int           rc;
    size_t        i, n;
    et_key_t      key;
    et_attr_t     attrs[ET_ATTRS_MAX + 1];
    uint8_t       kbuf[ET_KEY_RESP_SIZE(8)], big[70000];

    et_key_init(&key, kbuf, (const uint8_t *) "app.tier", 8);
    memset(attrs, 0xa5, sizeof(attrs));
    n = 0;

    rc = et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &key,
                            (et_str_t) et_string("gateway"));
    tap_is_int(rc, ET_OK, "add: into an empty array");
    tap_is_int(n, 1, "add: one attribute");
    tap_ok(attrs[0].key == &key && attrs[0].type == ET_ATTR_STRING
           && attrs[0].num == 0,
           "add: the key, a string");
    tap_is_mem(attrs[0].str.data, attrs[0].str.len, "gateway",
               "add: the value, not copied");

    /* empty: kept, as both servers send an empty variable or expression */
    rc = et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &key,
                            (et_str_t) et_null_string);
    tap_ok(rc == ET_OK && n == 2 && attrs[1].str.len == 0,
           "add: an empty value is an attribute");

    /* longer than any value_max: taken whole, cut by the encoder */
    memset(big, 'v', sizeof(big));
    rc = et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &key,
                            (et_str_t) { sizeof(big), big });
    tap_ok(rc == ET_OK && attrs[2].str.len == sizeof(big)
           && attrs[2].str.data == big,
           "add: a value of %zu bytes is taken whole", sizeof(big));

    /* up to the room given, and not one more */
    for (i = n; i < ET_ATTRS_MAX; i++) {
        if (et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &key,
                               (et_str_t) et_string("x"))
            != ET_OK)
        {
            break;
        }
    }

    tap_is_int(n, ET_ATTRS_MAX, "add: the array filled to ET_ATTRS_MAX");

    attrs[ET_ATTRS_MAX].type = 77;
    rc = et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &key,
                            (et_str_t) et_string("over"));
    tap_is_int(rc, ET_DECLINED, "add: a full array declines");
    tap_is_int(n, ET_ATTRS_MAX, "add: a full array keeps its count");
    tap_is_int(attrs[ET_ATTRS_MAX].type, 77,
               "add: nothing is written past the room");

    /* no room at all; a count past the room (a caller's bug) declines too */
    n = 0;
    tap_is_int(et_attr_add_string(attrs, &n, 0, &key,
                                  (et_str_t) et_string("x")),
               ET_DECLINED, "add: no room");
    tap_is_int(n, 0, "add: no room: the count stays");

    n = ET_ATTRS_MAX + 1;
    tap_is_int(et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &key,
                                  (et_str_t) et_string("x")),
               ET_DECLINED, "add: a count past the room");
}


static void
test_bounds(void)
{
    tap_is_int(ET_ATTRS_MAX, 64, "bounds: 64 attributes a span");
    tap_is_int(ET_USER_ATTRS_MAX, 40, "bounds: 40 user attributes");
    tap_is_int(ET_TRIES_MAX, 16, "bounds: 16 tries as events");
    tap_is_int(ET_SERVICE_NAME_MAX, 255, "bounds: 255-byte service names");
    tap_ok(ET_USER_ATTRS_MAX < ET_ATTRS_MAX,
           "bounds: the user's attributes fit a span");
}


int
main(void)
{
    test_service_name_check();
    test_service_field();
    test_attr_add_string();
    test_bounds();

    return tap_done();
}
