/* Unit tests for tedge-p11-server's options: value parsers, the flag > env > tedge.toml > default
 * precedence, PIN sources, and when a missing or broken tedge.toml is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "p11-server/server.h"
#include "unit_helpers.h"

static const char *const env_names[] = {
    "TEDGE_DEVICE_CRYPTOKI_SOCKET_PATH", "TEDGE_DEVICE_CRYPTOKI_MODULE_PATH",
    "TEDGE_DEVICE_CRYPTOKI_PIN", "TEDGE_DEVICE_CRYPTOKI_URI", "TEDGE_CONFIG_DIR",
    "TEDGE_LOG_LEVEL", "CREDENTIALS_DIRECTORY",
};

struct fixture {
    char dir[64];
    char toml[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-srv-opt.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->toml, sizeof(f->toml), "%s/tedge.toml", f->dir);
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    log_set_fd(devnull); /* the --pin warning is not test output */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (unit_remove_dir(f->dir) != 0)
        return -1;
    free(f);
    return 0;
}

/* Runs srv_options_load on a NULL-terminated list of arguments (copied: --pin is wiped). */
static int load(struct srv_options *o, struct te_error *err, ...)
{
    char *argv[32];
    int argc = 0;
    bool exit_now = false;
    va_list ap;
    const char *a;
    int r;

    argv[argc++] = strdup("tedge-p11-server");
    va_start(ap, err);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;
    r = srv_options_load(argc, argv, o, &exit_now, err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return r;
}

static void test_duration_parser(void **state)
{
    (void)state;
    int ms;
    assert_int_equal(srv_parse_duration_ms("5s", &ms), TE_OK);
    assert_int_equal(ms, 5000);
    assert_int_equal(srv_parse_duration_ms("250ms", &ms), TE_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(srv_parse_duration_ms("2m", &ms), TE_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(srv_parse_duration_ms("7", &ms), TE_OK);
    assert_int_equal(ms, 7000);
    assert_int_equal(srv_parse_duration_ms("1h", &ms), TE_OK);
    assert_int_equal(ms, 3600000);
    assert_int_equal(srv_parse_duration_ms("1m 30s", &ms), TE_OK);
    assert_int_equal(ms, 90000);
    const char *bad[] = {"", "0", "0s", "-1s", "5x", "s", "5 s", "25h", "2d",
                         "99999999999999999999", "1.5s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(srv_parse_duration_ms(bad[i], &ms), TE_ERR_INVALID);
}

static void test_mode_and_id_parsers(void **state)
{
    (void)state;
    unsigned v;
    assert_int_equal(srv_parse_mode("0660", &v), TE_OK);
    assert_int_equal(v, 0660);
    assert_int_equal(srv_parse_mode("600", &v), TE_OK);
    assert_int_equal(v, 0600);
    assert_int_equal(srv_parse_mode("0888", &v), TE_ERR_INVALID);
    assert_int_equal(srv_parse_mode("01777", &v), TE_ERR_INVALID);
    assert_int_equal(srv_parse_mode("rw", &v), TE_ERR_INVALID);

    assert_int_equal(srv_parse_uid("root", &v), TE_OK);
    assert_int_equal(v, 0);
    assert_int_equal(srv_parse_uid("4242", &v), TE_OK);
    assert_int_equal(v, 4242);
    assert_int_equal(srv_parse_uid("no-such-user-xyz", &v), TE_ERR_NOT_FOUND);
    assert_int_equal(srv_parse_uid("", &v), TE_ERR_INVALID);
    assert_int_equal(srv_parse_uid("4294967295", &v), TE_ERR_NOT_FOUND); /* (uid_t)-1 */
    assert_int_equal(srv_parse_gid("root", &v), TE_OK);
    assert_int_equal(v, 0);
    assert_int_equal(srv_parse_gid("no-such-group-xyz", &v), TE_ERR_NOT_FOUND);
}

static void test_defaults_and_flags(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};

    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so", NULL), TE_OK);
    assert_string_equal(o.module_path, "/m.so");
    assert_string_equal(o.module_path_from, "--module-path");
    assert_string_equal(o.socket_path, SRV_DEFAULT_SOCKET_PATH);
    assert_string_equal(o.socket_path_from, "default");
    assert_null(o.uri);
    assert_null(o.pin); /* no default PIN */
    assert_int_equal(o.max_clients, 64);
    assert_int_equal(o.socket_mode, 0660);
    assert_int_equal(o.frame_timeout_ms, 5000);
    assert_int_equal(o.idle_timeout_ms, 60000);
    assert_int_equal(o.acl.allow_uid.n, 0);
    srv_options_free(&o);

    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so",
                          "--max-clients", "3", "--socket-mode", "0600", "--allow-uid", "root",
                          "--allow-uid", "1234", "--allow-gid", "0", "--admin-uid", "99",
                          "--frame-timeout", "200ms", "--idle-timeout", "2s", "--socket-group",
                          "0", NULL), TE_OK);
    assert_int_equal(o.max_clients, 3);
    assert_int_equal(o.socket_mode, 0600);
    assert_int_equal(o.acl.allow_uid.n, 2);
    assert_int_equal(o.acl.allow_uid.ids[1], 1234);
    assert_int_equal(o.acl.allow_gid.n, 1);
    assert_int_equal(o.acl.admin_uid.ids[0], 99);
    assert_int_equal(o.frame_timeout_ms, 200);
    assert_int_equal(o.idle_timeout_ms, 2000);
    assert_true(o.has_socket_group);
    srv_options_free(&o);
}

static void test_precedence_flag_env_toml(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};

    unit_write_file(f->toml, "[device.cryptoki]\nmodule_path = \"/toml.so\"\nsocket_path = "
                    "\"/toml.sock\"\nuri = \"pkcs11:token=toml\"\npin = \"toml-pin\"\n", 0600);
    setenv("TEDGE_CONFIG_DIR", f->dir, 1);
    assert_int_equal(load(&o, &err, NULL), TE_OK);
    assert_string_equal(o.module_path, "/toml.so");
    assert_string_equal(o.module_path_from, "tedge.toml");
    assert_string_equal(o.socket_path, "/toml.sock");
    assert_string_equal(o.uri, "pkcs11:token=toml");
    assert_string_equal(o.pin, "toml-pin");
    srv_options_free(&o);

    setenv("TEDGE_DEVICE_CRYPTOKI_MODULE_PATH", "/env.so", 1);
    setenv("TEDGE_DEVICE_CRYPTOKI_URI", "", 1); /* empty = unset: tedge.toml still counts */
    setenv("TEDGE_DEVICE_CRYPTOKI_PIN", "env-pin", 1);
    assert_int_equal(load(&o, &err, NULL), TE_OK);
    assert_string_equal(o.module_path, "/env.so");
    assert_string_equal(o.module_path_from, "TEDGE_DEVICE_CRYPTOKI_MODULE_PATH");
    assert_string_equal(o.uri, "pkcs11:token=toml");
    assert_string_equal(o.pin, "env-pin");
    srv_options_free(&o);

    assert_int_equal(load(&o, &err, "--module-path", "/flag.so", "--uri", "pkcs11:token=flag",
                          NULL), TE_OK);
    assert_string_equal(o.module_path, "/flag.so");
    assert_string_equal(o.uri, "pkcs11:token=flag");
    srv_options_free(&o);
    unsetenv("TEDGE_DEVICE_CRYPTOKI_MODULE_PATH");
    unsetenv("TEDGE_DEVICE_CRYPTOKI_URI");
    unsetenv("TEDGE_DEVICE_CRYPTOKI_PIN");
}

static void test_missing_module_path_names_every_source(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};

    assert_int_equal(load(&o, &err, "--config-dir", f->dir, NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "--module-path"));
    assert_non_null(strstr(err.msg, "TEDGE_DEVICE_CRYPTOKI_MODULE_PATH"));
    assert_non_null(strstr(err.msg, "device.cryptoki.module_path"));
    assert_non_null(strstr(err.msg, "does not exist"));
}

static void test_broken_toml_only_matters_when_needed(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};

    unit_write_file(f->toml, "[device.cryptoki]\nmodule_path = \n", 0600);
    /* every value given elsewhere: the file is never read */
    setenv("TEDGE_DEVICE_CRYPTOKI_PIN", "1234", 1);
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so",
                          "--socket-path", "/s.sock", "--uri", "pkcs11:token=t", NULL), TE_OK);
    srv_options_free(&o);
    unsetenv("TEDGE_DEVICE_CRYPTOKI_PIN");
    /* the module path has to come from it: its line and column are reported */
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, f->toml));
    assert_non_null(strstr(err.msg, ":2:"));
}

static void test_invalid_toml_value_names_its_origin(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};

    unit_write_file(f->toml, "[device.cryptoki]\nmodule_path = \"relative.so\"\n", 0600);
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "tedge.toml"));
    assert_non_null(strstr(err.msg, "relative.so"));
}

static void test_pin_sources(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};
    char pin_file[128], cred_dir[128], cred[160];

    snprintf(pin_file, sizeof(pin_file), "%s/pin", f->dir);
    unit_write_file(pin_file, "s3cret\n", 0600);
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so",
                          "--pin-file", pin_file, NULL), TE_OK);
    assert_string_equal(o.pin, "s3cret");
    assert_string_equal(o.pin_from, "--pin-file");
    srv_options_free(&o);

    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so",
                          "--pin-file", pin_file, "--pin", "x", NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "--pin-file"));

    unit_write_file(pin_file, "\n", 0600);
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so",
                          "--pin-file", pin_file, NULL), TE_ERR_CONFIG);
    assert_null(strstr(err.msg, "s3cret"));

    /* a systemd credential is used when nothing on the command line or in env says otherwise */
    snprintf(cred_dir, sizeof(cred_dir), "%s/creds", f->dir);
    assert_int_equal(mkdir(cred_dir, 0700), 0);
    snprintf(cred, sizeof(cred), "%s/pin", cred_dir);
    unit_write_file(cred, "cred-pin", 0400);
    setenv("CREDENTIALS_DIRECTORY", cred_dir, 1);
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so", NULL),
                     TE_OK);
    assert_string_equal(o.pin, "cred-pin");
    assert_string_equal(o.pin_from, "systemd credential");
    srv_options_free(&o);
    setenv("TEDGE_DEVICE_CRYPTOKI_PIN", "env-pin", 1);
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so", NULL),
                     TE_OK);
    assert_string_equal(o.pin, "env-pin");
    srv_options_free(&o);
    /* longer than any token allows: refused without quoting it */
    char long_pin[SRV_PIN_MAX + 2];
    memset(long_pin, '7', sizeof(long_pin) - 1);
    long_pin[sizeof(long_pin) - 1] = '\0';
    setenv("TEDGE_DEVICE_CRYPTOKI_PIN", long_pin, 1);
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", "/m.so", NULL),
                     TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "TEDGE_DEVICE_CRYPTOKI_PIN"));
    assert_null(strstr(err.msg, "7777"));
    unsetenv("TEDGE_DEVICE_CRYPTOKI_PIN");
    unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_pin_flag_is_wiped_from_argv(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};
    char a0[] = "tedge-p11-server", a1[] = "--config-dir", a3[] = "--module-path", a4[] = "/m.so",
         a5[] = "--pin", a6[] = "hunter2";
    char *argv[] = {a0, a1, f->dir, a3, a4, a5, a6, NULL};
    bool exit_now;

    assert_int_equal(srv_options_load(7, argv, &o, &exit_now, &err), TE_OK);
    assert_string_equal(o.pin, "hunter2");
    assert_string_equal(o.pin_from, "--pin");
    assert_int_equal(a6[0], '\0');
    assert_null(memmem(a6, sizeof(a6), "hunter2", 7));
    srv_options_free(&o);
}

static void test_bad_options_are_explained(void **state)
{
    struct fixture *f = *state;
    struct srv_options o;
    struct te_error err = {0};

    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--bogus", NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "--bogus"));
    assert_int_equal(load(&o, &err, "--config-dir", f->dir, "--module-path", NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "needs a value"));
    assert_int_equal(load(&o, &err, "--module-path", "/m", "--max-clients", "0", NULL),
                     TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "--max-clients"));
    assert_int_equal(load(&o, &err, "--module-path", "/m", "--allow-uid", "no-such-user-xyz",
                          NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "no-such-user-xyz"));
    assert_int_equal(load(&o, &err, "--module-path", "/m", "--log-level", "loud", NULL),
                     TE_ERR_CONFIG);
    assert_int_equal(load(&o, &err, "--module-path", "/m", "extra", NULL), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "extra"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parser),
        cmocka_unit_test(test_mode_and_id_parsers),
        cmocka_unit_test_setup_teardown(test_defaults_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence_flag_env_toml, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_module_path_names_every_source, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_broken_toml_only_matters_when_needed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_toml_value_names_its_origin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pin_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_flag_is_wiped_from_argv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options_are_explained, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
