/* Unit tests for common/config: defaults and derived defaults, environment precedence,
 * fallbacks, profiles, validation, did-you-mean, typed getters, and safe set/unset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/err.h"
#include "unit_helpers.h"

/* A self-signed test certificate, CN=test-device-0001 (openssl req -x509, P-256). */
static const char test_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBtDCCAVugAwIBAgIUJM7gSxz/z6fzd1zAonEyRv8Yz28wCgYIKoZIzj0EAwIw\n"
    "LzESMBAGA1UECgwJVGhpbiBFZGdlMRkwFwYDVQQDDBB0ZXN0LWRldmljZS0wMDAx\n"
    "MCAXDTI2MTEyOTExMzQ1M1oYDzIxMjYxMTA1MTEzNDUzWjAvMRIwEAYDVQQKDAlU\n"
    "aGluIEVkZ2UxGTAXBgNVBAMMEHRlc3QtZGV2aWNlLTAwMDEwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAAQQt1ccbhyzAHrvuU3JPMkHq+XE3q7c1jiSpI87CKEBzDzf\n"
    "lyi5TxTNR0wP2AjmsMaii5WQMb6+cOFJUGIms0B2o1MwUTAdBgNVHQ4EFgQUPbJb\n"
    "3BGXuQqsilrHM7kHw6h+Rk0wHwYDVR0jBBgwFoAUPbJb3BGXuQqsilrHM7kHw6h+\n"
    "Rk0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiBclC+H9AOLXhL3\n"
    "ZRjsJrHYO7JWNBMJTDTJHuZM0DLgWgIgBCZfGvjz+dFiPu+1KxdWbnUeSAh7bgNW\n"
    "eB1ZsuP/H18=\n"
    "-----END CERTIFICATE-----\n";

struct fixture {
    char dir[64];
    char file[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_config.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->file, sizeof(f->file), "%s/tedge.toml", f->dir);
    unit_clear_tedge_env();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unit_clear_tedge_env();
    if (unit_remove_dir(f->dir) != 0)
        return -1;
    free(f);
    return 0;
}

static struct cfg *load(const struct fixture *f)
{
    struct cfg *c = NULL;
    struct te_error err = {0};
    if (cfg_load(f->dir, &c, &err) != TE_OK)
        fail_msg("load: %s", err.msg);
    return c;
}

/* The effective value, or fails; checks the source too. */
static void expect(const struct cfg *c, const char *key, const char *value, enum cfg_source src)
{
    struct cfg_value v;
    struct te_error err = {0};
    if (cfg_get(c, key, &v, &err) != TE_OK)
        fail_msg("get %s: %s", key, err.msg);
    assert_string_equal(v.value, value);
    assert_int_equal(v.source, src);
    cfg_value_clear(&v);
}

static void test_defaults(void **state)
{
    struct fixture *f = *state;
    struct cfg *c = load(f);
    struct cfg_value v;
    struct te_error err = {0};
    char want[256];

    assert_false(cfg_file_exists(c));
    expect(c, "device.cryptoki.mode", "off", CFG_SRC_DEFAULT);
    expect(c, "device.cryptoki.socket_path", "/run/tedge-p11-server/tedge-p11-server.sock",
           CFG_SRC_DEFAULT);
    snprintf(want, sizeof(want), "%s/device-certs/tedge-certificate.pem", f->dir);
    expect(c, "device.cert_path", want, CFG_SRC_DEFAULT);
    snprintf(want, sizeof(want), "%s/device-certs/tedge-private-key.pem", f->dir);
    expect(c, "device.key_path", want, CFG_SRC_DEFAULT);
    snprintf(want, sizeof(want), "%s/device-certs/tedge.csr", f->dir);
    expect(c, "device.csr_path", want, CFG_SRC_DEFAULT);
    expect(c, "c8y.root_cert_path", "/etc/ssl/certs", CFG_SRC_DEFAULT);
    expect(c, "c8y.bridge.topic_prefix", "c8y", CFG_SRC_DEFAULT);
    expect(c, "c8y.bridge.keepalive_interval", "60s", CFG_SRC_DEFAULT);
    expect(c, "mqtt.client.host", "localhost", CFG_SRC_DEFAULT);
    expect(c, "mqtt.client.port", "1883", CFG_SRC_DEFAULT);
    expect(c, "mqtt.bridge.built_in", "true", CFG_SRC_DEFAULT);
    expect(c, "mqtt.bridge.reconnect_policy.initial_interval", "5s", CFG_SRC_DEFAULT);
    expect(c, "mqtt.bridge.reconnect_policy.maximum_interval", "10m", CFG_SRC_DEFAULT);
    expect(c, "mqtt.bridge.reconnect_policy.reset_window", "15m", CFG_SRC_DEFAULT);
    /* keys without a default are not set, in upstream's words; no default PIN */
    assert_int_equal(cfg_get(c, "device.key_uri", &v, &err), TE_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "The provided config key: 'device.key_uri' is not set");
    assert_null(v.value);
    assert_int_equal(cfg_get(c, "device.cryptoki.pin", &v, &err), TE_ERR_NOT_FOUND);
    assert_int_equal(cfg_get(c, "c8y.url", &v, &err), TE_ERR_NOT_FOUND);
    assert_int_equal(cfg_get(c, "c8y.mqtt", &v, &err), TE_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "The provided config key: 'c8y.mqtt' is not set");
    cfg_free(c);
}

static void test_file_values_and_origin(void **state)
{
    struct fixture *f = *state;
    struct cfg_value v;
    struct te_error err = {0};
    char want[256];
    struct cfg *c;

    unit_write_file(f->file,
                    "# comment\n"
                    "[device]\n"
                    "key_uri = \"pkcs11:token=t;object=k\"\n"
                    "cryptoki.mode = 'module'\n"
                    "[mqtt.client]\n"
                    "port = 11883\n"
                    "[mqtt.bridge]\n"
                    "built_in = false\n"
                    "[c8y]\n"
                    "url = \"tenant.example.com\"\n",
                    0644);
    c = load(f);
    assert_true(cfg_file_exists(c));
    assert_int_equal(cfg_get(c, "device.key_uri", &v, &err), TE_OK);
    assert_string_equal(v.value, "pkcs11:token=t;object=k");
    assert_int_equal(v.source, CFG_SRC_FILE);
    snprintf(want, sizeof(want), "%s:3", f->file);
    assert_string_equal(v.origin, want);
    cfg_value_clear(&v);
    expect(c, "device.cryptoki.mode", "module", CFG_SRC_FILE);
    expect(c, "mqtt.client.port", "11883", CFG_SRC_FILE);
    expect(c, "mqtt.bridge.built_in", "false", CFG_SRC_FILE);
    /* derived: c8y.mqtt is c8y.url's host on 8883 */
    assert_int_equal(cfg_get(c, "c8y.mqtt", &v, &err), TE_OK);
    assert_string_equal(v.value, "tenant.example.com:8883");
    assert_int_equal(v.source, CFG_SRC_DERIVED);
    snprintf(want, sizeof(want), "c8y.url (%s:10)", f->file);
    assert_string_equal(v.origin, want);
    cfg_value_clear(&v);
    cfg_free(c);
}

static void test_env_overrides_file(void **state)
{
    struct fixture *f = *state;
    struct cfg_value v;
    struct te_error err = {0};
    struct cfg *c;

    unit_write_file(f->file,
                    "[device.cryptoki]\nmode = \"socket\"\n[c8y]\nurl = \"file.example.com\"\n",
                    0640);
    c = load(f);
    expect(c, "device.cryptoki.mode", "socket", CFG_SRC_FILE);
    setenv("TEDGE_DEVICE_CRYPTOKI_MODE", "module", 1);
    assert_int_equal(cfg_get(c, "device.cryptoki.mode", &v, &err), TE_OK);
    assert_string_equal(v.value, "module");
    assert_int_equal(v.source, CFG_SRC_ENV);
    assert_string_equal(v.origin, "TEDGE_DEVICE_CRYPTOKI_MODE");
    cfg_value_clear(&v);
    /* an empty variable is ignored: the file's value applies */
    setenv("TEDGE_DEVICE_CRYPTOKI_MODE", "", 1);
    expect(c, "device.cryptoki.mode", "socket", CFG_SRC_FILE);
    /* the name matches case-insensitively (upstream), and overrides defaults too */
    setenv("tedge_mqtt_client_port", "2883", 1);
    expect(c, "mqtt.client.port", "2883", CFG_SRC_ENV);
    /* derived values follow the overridden key */
    setenv("TEDGE_C8Y_URL", "env.example.com", 1);
    expect(c, "c8y.mqtt", "env.example.com:8883", CFG_SRC_DERIVED);
    /* an invalid value from the environment is an error naming the variable */
    setenv("TEDGE_DEVICE_CRYPTOKI_MODE", "bogus", 1);
    assert_int_equal(cfg_get(c, "device.cryptoki.mode", &v, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "Supported values are: off, module, socket."));
    assert_non_null(strstr(err.msg, "environment variable TEDGE_DEVICE_CRYPTOKI_MODE"));
    /* read-only keys ignore the environment */
    setenv("TEDGE_DEVICE_ID", "spoofed", 1);
    assert_int_equal(cfg_get(c, "device.id", &v, &err), TE_ERR_NOT_FOUND);
    cfg_free(c);
}

static void test_fallbacks_and_profiles(void **state)
{
    struct fixture *f = *state;
    struct cfg_value v;
    struct te_error err = {0};
    struct cfg *c;

    unit_write_file(f->file,
                    "[device]\nkey_uri = \"pkcs11:token=main\"\nkey_pin = \"1234\"\n"
                    "cert_path = \"/c.pem\"\n"
                    "[c8y.profiles.second]\nurl = \"second.example.com\"\n"
                    "device.key_uri = \"pkcs11:token=second\"\nmqtt = \"mqtt.second.example.com\"\n"
                    "[c8y.profiles.third]\nurl = \"third.example.com\"\n",
                    0600);
    c = load(f);
    /* c8y.device.key_uri falls back to device.key_uri */
    assert_int_equal(cfg_get(c, "c8y.device.key_uri", &v, &err), TE_OK);
    assert_string_equal(v.value, "pkcs11:token=main");
    assert_int_equal(v.source, CFG_SRC_DERIVED);
    assert_non_null(strstr(v.origin, "device.key_uri ("));
    cfg_value_clear(&v);
    expect(c, "c8y.device.key_pin", "1234", CFG_SRC_DERIVED);
    expect(c, "az.device.cert_path", "/c.pem", CFG_SRC_DERIVED);
    expect(c, "aws.device.key_uri", "pkcs11:token=main", CFG_SRC_DERIVED);
    /* a profile's own value wins, otherwise the same fallback applies */
    expect(c, "c8y.profiles.second.device.key_uri", "pkcs11:token=second", CFG_SRC_FILE);
    expect(c, "c8y.profiles.third.device.key_uri", "pkcs11:token=main", CFG_SRC_DERIVED);
    /* host:port gets its default port; a profile's mqtt derives from its own url */
    expect(c, "c8y.profiles.second.mqtt", "mqtt.second.example.com:8883", CFG_SRC_FILE);
    expect(c, "c8y.profiles.third.mqtt", "third.example.com:8883", CFG_SRC_DERIVED);
    expect(c, "c8y.profiles.third.bridge.topic_prefix", "c8y", CFG_SRC_DEFAULT);
    /* any profile name is valid; the key is not set until configured */
    assert_int_equal(cfg_get(c, "c8y.profiles.any-name_1.url", &v, &err), TE_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "The provided config key: 'c8y.profiles.any-name_1.url' is not set");
    setenv("TEDGE_C8Y_PROFILES_ANY-NAME_1_URL", "env.example.com", 1);
    expect(c, "c8y.profiles.any-name_1.url", "env.example.com", CFG_SRC_ENV);
    /* once set, c8y.device.key_uri is its own */
    assert_int_equal(cfg_set(c, "c8y.device.key_uri", "pkcs11:token=c8y", &err), TE_OK);
    expect(c, "c8y.device.key_uri", "pkcs11:token=c8y", CFG_SRC_FILE);
    expect(c, "az.device.key_uri", "pkcs11:token=main", CFG_SRC_DERIVED);
    cfg_free(c);
}

static void test_key_resolution_and_did_you_mean(void **state)
{
    (void)state;
    struct cfg_key_ref ref;
    struct te_error err = {0};
    char env[128], sug[128];

    assert_int_equal(cfg_key_resolve("device.cryptoki.mode", &ref, &err), TE_OK);
    assert_int_equal(ref.def->type, CFG_ENUM);
    assert_string_equal(ref.profile, "");
    assert_int_equal(cfg_key_resolve("c8y.profiles.foo.bridge.topic_prefix", &ref, &err), TE_OK);
    assert_string_equal(ref.def->name, "c8y.bridge.topic_prefix");
    assert_string_equal(ref.profile, "foo");
    assert_int_equal(cfg_key_resolve("aws.profiles.x.device.key_pin", &ref, &err), TE_OK);
    assert_true(ref.def->flags & CFG_F_SECRET);
    /* non-cloud keys have no profiles; profile names are checked */
    assert_int_equal(cfg_key_resolve("mqtt.profiles.x.client.host", &ref, &err), TE_ERR_NOT_FOUND);
    assert_int_equal(cfg_key_resolve("c8y.profiles.a.b.url", &ref, &err), TE_ERR_NOT_FOUND);
    assert_int_equal(cfg_key_resolve("c8y.profiles..url", &ref, &err), TE_ERR_NOT_FOUND);

    assert_int_equal(cfg_key_resolve("device.cryptoki.mod", &ref, &err), TE_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "Unknown configuration key 'device.cryptoki.mod'. Did you mean "
                                 "'device.cryptoki.mode'? Run `tedge config list --doc` to see "
                                 "the available keys.");
    cfg_key_suggest("c8y.urll", sug, sizeof(sug));
    assert_string_equal(sug, "c8y.url");
    cfg_key_suggest("device.keypath", sug, sizeof(sug));
    assert_string_equal(sug, "device.key_path");
    cfg_key_suggest("c8y.profiles.foo.ulr", sug, sizeof(sug));
    assert_string_equal(sug, "c8y.profiles.foo.url");
    cfg_key_suggest("mqtt.bridge.builtin", sug, sizeof(sug));
    assert_string_equal(sug, "mqtt.bridge.built_in");

    cfg_env_name("device.cryptoki.mode", env, sizeof(env));
    assert_string_equal(env, "TEDGE_DEVICE_CRYPTOKI_MODE");
    cfg_env_name("c8y.profiles.foo.url", env, sizeof(env));
    assert_string_equal(env, "TEDGE_C8Y_PROFILES_FOO_URL");
}

struct vcase {
    const char *key, *value;
    bool ok;
};

static void test_validation(void **state)
{
    (void)state;
    static const struct vcase cases[] = {
        {"device.cryptoki.mode", "off", true},
        {"device.cryptoki.mode", "socket", true},
        {"device.cryptoki.mode", "Socket", false},
        {"device.cryptoki.module_path", "/usr/lib/softhsm/libsofthsm2.so", true},
        {"device.cryptoki.module_path", "libsofthsm2.so", false},
        {"device.cryptoki.socket_path", "relative.sock", true},
        {"device.key_uri", "pkcs11:token=a;object=b", true},
        {"device.key_uri", "token=a", false},
        {"mqtt.client.port", "1", true},
        {"mqtt.client.port", "65535", true},
        {"mqtt.client.port", "0", false},
        {"mqtt.client.port", "65536", false},
        {"mqtt.client.port", "12a", false},
        {"mqtt.bridge.built_in", "true", true},
        {"mqtt.bridge.built_in", "yes", false},
        {"c8y.bridge.keepalive_interval", "60", true},
        {"c8y.bridge.keepalive_interval", "1h 30m", true},
        {"c8y.bridge.keepalive_interval", "500ms", true},
        {"c8y.bridge.keepalive_interval", "10x", false},
        {"c8y.bridge.keepalive_interval", "s", false},
        {"c8y.mqtt", "mqtt.example.com", true},
        {"c8y.mqtt", "mqtt.example.com:1234", true},
        {"c8y.mqtt", "[::1]:8883", true},
        {"c8y.mqtt", "::1", false},
        {"c8y.mqtt", "host:0", false},
        {"c8y.mqtt", "host/path", false},
        {"c8y.url", "tenant.cumulocity.com", true},
        {"c8y.url", "https://tenant.cumulocity.com", false},
        {"c8y.url", "tenant.cumulocity.com:443", false},
        {"c8y.bridge.topic_prefix", "c8y-2", true},
        {"c8y.bridge.topic_prefix", "c8y/x", false},
        {"c8y.bridge.topic_prefix", "#", false},
        {"mqtt.client.host", "line\nbreak", false},
        {"mqtt.client.host", "", false},
    };
    struct te_error err = {0};
    struct cfg_key_ref ref;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cfg_key_resolve(cases[i].key, &ref, &err), TE_OK);
        int r = cfg_validate(ref.def, cases[i].key, cases[i].value, &err);
        if ((r == TE_OK) != cases[i].ok)
            fail_msg("case %zu (%s = '%s'): got %d %s", i, cases[i].key, cases[i].value, r, err.msg);
    }
    assert_int_equal(cfg_key_resolve("device.cryptoki.mode", &ref, &err), TE_OK);
    cfg_validate(ref.def, "device.cryptoki.mode", "bogus", &err);
    assert_string_equal(err.msg, "Invalid value for 'device.cryptoki.mode': 'bogus'. Supported "
                                 "values are: off, module, socket.");
    /* a PIN is never repeated in a message */
    assert_int_equal(cfg_key_resolve("device.key_pin", &ref, &err), TE_OK);
    assert_int_equal(cfg_validate(ref.def, "device.key_pin", "12\x01secret", &err), TE_ERR_INVALID);
    assert_null(strstr(err.msg, "secret"));
    assert_int_equal(cfg_key_resolve("device.key_uri", &ref, &err), TE_OK);
    assert_int_equal(cfg_validate(ref.def, "device.key_uri", "token=x?pin-value=9876", &err),
                     TE_ERR_INVALID);
    assert_null(strstr(err.msg, "9876"));
}

static void test_typed_getters(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};
    struct cfg *c;
    bool b = true;
    unsigned long port = 0;
    uint64_t ms = 0;
    char *host = NULL, *s = NULL;
    uint16_t p16 = 0;
    enum cfg_cryptoki_mode mode = CFG_CRYPTOKI_OFF;

    unit_write_file(f->file,
                    "[mqtt.bridge]\nbuilt_in = false\n"
                    "reconnect_policy.initial_interval = \"1m 5s\"\n[c8y]\nmqtt = \"[fd00::1]:9883\"\n"
                    "[device.cryptoki]\nmode = \"socket\"\n", 0640);
    c = load(f);
    assert_int_equal(cfg_get_bool(c, "mqtt.bridge.built_in", &b, &err), TE_OK);
    assert_false(b);
    assert_int_equal(cfg_get_uint(c, "mqtt.client.port", &port, &err), TE_OK);
    assert_int_equal(port, 1883);
    assert_int_equal(cfg_get_duration_ms(c, "mqtt.bridge.reconnect_policy.initial_interval", &ms, &err), TE_OK);
    assert_int_equal(ms, 65000);
    assert_int_equal(cfg_get_duration_ms(c, "mqtt.bridge.reconnect_policy.reset_window", &ms, &err), TE_OK);
    assert_int_equal(ms, 15 * 60 * 1000);
    assert_int_equal(cfg_get_host_port(c, "c8y.mqtt", &host, &p16, &err), TE_OK);
    assert_string_equal(host, "fd00::1");
    assert_int_equal(p16, 9883);
    free(host);
    assert_int_equal(cfg_get_cryptoki_mode(c, &mode, &err), TE_OK);
    assert_int_equal(mode, CFG_CRYPTOKI_SOCKET);
    assert_int_equal(cfg_get_string(c, "device.cryptoki.socket_path", &s, &err), TE_OK);
    assert_string_equal(s, "/run/tedge-p11-server/tedge-p11-server.sock");
    free(s);
    /* a getter of the wrong type is refused */
    assert_int_equal(cfg_get_bool(c, "mqtt.client.port", &b, &err), TE_ERR_INVALID);
    cfg_free(c);
}

static void test_set_writes_safely(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};
    struct stat st, st2;
    struct cfg *c = load(f);
    char *text;

    /* a new file is 0640 */
    assert_int_equal(cfg_set(c, "device.cryptoki.mode", "socket", &err), TE_OK);
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_string_equal(unit_read_file(f->file), "[device.cryptoki]\nmode = \"socket\"\n");
    expect(c, "device.cryptoki.mode", "socket", CFG_SRC_FILE);
    /* typed values are written as TOML integers and booleans */
    assert_int_equal(cfg_set(c, "mqtt.client.port", "1884", &err), TE_OK);
    assert_int_equal(cfg_set(c, "mqtt.bridge.built_in", "false", &err), TE_OK);
    assert_non_null(strstr(unit_read_file(f->file), "[mqtt.client]\nport = 1884\n"));
    assert_non_null(strstr(unit_read_file(f->file), "[mqtt.bridge]\nbuilt_in = false\n"));
    /* an existing file keeps its mode */
    assert_int_equal(chmod(f->file, 0600), 0);
    assert_int_equal(cfg_set(c, "c8y.url", "t.example.com", &err), TE_OK);
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* invalid values, unknown and read-only keys leave the file untouched */
    text = strdup(unit_read_file(f->file));
    assert_int_equal(cfg_set(c, "device.cryptoki.mode", "bogus", &err), TE_ERR_INVALID);
    assert_int_equal(cfg_set(c, "device.cryptoki.module_path", "rel.so", &err), TE_ERR_INVALID);
    assert_int_equal(cfg_set(c, "device.cryptoki.mod", "off", &err), TE_ERR_NOT_FOUND);
    assert_int_equal(cfg_set(c, "device.id", "x", &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "read-only"));
    assert_int_equal(cfg_unset(c, "device.id", &err), TE_ERR_INVALID);
    assert_string_equal(unit_read_file(f->file), text);
    /* unset of a key that is not in the file does not write */
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(cfg_unset(c, "device.key_uri", &err), TE_OK);
    assert_int_equal(stat(f->file, &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino);
    /* setting the same value again does not write either */
    assert_int_equal(cfg_set(c, "c8y.url", "t.example.com", &err), TE_OK);
    assert_int_equal(stat(f->file, &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino);
    /* unset removes the line */
    assert_int_equal(cfg_unset(c, "c8y.url", &err), TE_OK);
    assert_null(strstr(unit_read_file(f->file), "t.example.com"));
    free(text);
    cfg_free(c);
}

static void test_broken_file_is_never_overwritten(void **state)
{
    struct fixture *f = *state;
    static const char broken[] = "[device]\ncert_path = \"/a\"\nkey path = 1\n";
    struct te_error err = {0};
    struct cfg *c = NULL;
    char want[256];

    unit_write_file(f->file, broken, 0640);
    assert_int_equal(cfg_load(f->dir, &c, &err), TE_ERR_MALFORMED);
    assert_null(c);
    snprintf(want, sizeof(want), "%s:3:5: expected '=' after key", f->file);
    assert_non_null(strstr(err.msg, want));
    /* a config loaded before the file broke re-reads it and refuses to write */
    unit_write_file(f->file, "", 0640);
    c = load(f);
    unit_write_file(f->file, broken, 0640);
    assert_int_equal(cfg_set(c, "c8y.url", "x.example.com", &err), TE_ERR_MALFORMED);
    assert_int_equal(cfg_unset(c, "device.cert_path", &err), TE_ERR_MALFORMED);
    assert_string_equal(unit_read_file(f->file), broken);
    cfg_free(c);
    /* a known key holding a table is an error when read, not at load */
    unit_write_file(f->file, "[device.cryptoki.mode]\nx = 1\n", 0640);
    c = load(f);
    assert_int_equal(cfg_get(c, "device.cryptoki.mode", &(struct cfg_value){0}, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "must be a single value, not a table"));
    cfg_free(c);
}

static void test_device_id_from_certificate(void **state)
{
    struct fixture *f = *state;
    struct cfg_value v;
    struct te_error err = {0};
    char path[128], cfgtext[256];
    struct cfg *c;

    snprintf(path, sizeof(path), "%s/cert.pem", f->dir);
    c = load(f);
    assert_int_equal(cfg_get(c, "device.id", &v, &err), TE_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "The provided config key: 'device.id' is not configured"));
    cfg_free(c);
    unit_write_file(path, test_cert, 0644);
    snprintf(cfgtext, sizeof(cfgtext), "[device]\ncert_path = \"%s\"\n", path);
    unit_write_file(f->file, cfgtext, 0640);
    c = load(f);
    assert_int_equal(cfg_get(c, "device.id", &v, &err), TE_OK);
    assert_string_equal(v.value, "test-device-0001");
    assert_int_equal(v.source, CFG_SRC_DERIVED);
    cfg_value_clear(&v);
    unit_write_file(path, "not a certificate\n", 0644);
    assert_int_equal(cfg_get(c, "device.id", &v, &err), TE_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "is not a PEM or DER certificate"));
    cfg_free(c);
}

static int collect_key(const char *key, const struct cfg_key_def *def, void *ctx)
{
    char *out = ctx;
    (void)def;
    strcat(out, key);
    strcat(out, "\n");
    return TE_OK;
}

static void test_foreach_lists_profiles(void **state)
{
    struct fixture *f = *state;
    static char all[65536];
    struct cfg *c;

    unit_write_file(f->file, "[c8y.profiles.filep]\nurl = \"a.example.com\"\n", 0640);
    setenv("TEDGE_C8Y_PROFILES_ENVP_DEVICE_KEY_URI", "pkcs11:token=x", 1);
    setenv("TEDGE_AZ_PROFILES_AZP_URL", "az.example.com", 1);
    c = load(f);
    all[0] = '\0';
    assert_int_equal(cfg_foreach_key(c, collect_key, all), TE_OK);
    assert_non_null(strstr(all, "\ndevice.cryptoki.mode\n"));
    assert_non_null(strstr(all, "\nc8y.profiles.filep.url\n"));
    assert_non_null(strstr(all, "\nc8y.profiles.envp.device.key_uri\n"));
    assert_non_null(strstr(all, "\naz.profiles.azp.url\n"));
    assert_null(strstr(all, "mqtt.profiles"));
    assert_null(strstr(all, "c8y.profiles.azp"));
    cfg_free(c);
}

static void test_config_dir_resolution(void **state)
{
    (void)state;
    assert_string_equal(cfg_resolve_dir("/x"), "/x");
    assert_string_equal(cfg_resolve_dir(NULL), "/etc/tedge");
    setenv("TEDGE_CONFIG_DIR", "/from/env", 1);
    assert_string_equal(cfg_resolve_dir(NULL), "/from/env");
    assert_string_equal(cfg_resolve_dir("/opt"), "/opt");
    setenv("TEDGE_CONFIG_DIR", "", 1);
    assert_string_equal(cfg_resolve_dir(NULL), "/etc/tedge");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_values_and_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallbacks_and_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_resolution_and_did_you_mean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typed_getters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_writes_safely, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_file_is_never_overwritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_id_from_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_lists_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_dir_resolution, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
