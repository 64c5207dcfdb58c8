/* Unit tests for tedge-cli/service: system.toml [init] parsing, systemd defaults, placeholder
 * substitution, running real commands (exit codes, missing programs), and config errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "tedge-cli/service/service_manager.h"
#include "unit_helpers.h"

struct fixture {
    char dir[64];
    char toml[128];
    char witness[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/te-svc-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->toml, sizeof(f->toml), "%s/system.toml", f->dir);
    snprintf(f->witness, sizeof(f->witness), "%s/witness", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->toml);
    unlink(f->witness);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_missing_file_is_systemd(void **state)
{
    struct fixture *f = *state;
    struct svc_manager *m = NULL;
    struct te_error err = {0};
    char **argv = NULL;

    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_OK);
    assert_string_equal(svc_manager_name(m), "systemd");
    assert_int_equal(svc_manager_argv(m, SVC_RESTART, "mosquitto", &argv, &err), TE_OK);
    assert_string_equal(argv[0], "/bin/systemctl");
    assert_string_equal(argv[1], "restart");
    assert_string_equal(argv[2], "mosquitto");
    assert_null(argv[3]);
    free(argv);
    assert_int_equal(svc_manager_argv(m, SVC_IS_AVAILABLE, NULL, &argv, &err), TE_OK);
    assert_string_equal(argv[1], "--version");
    free(argv);
    svc_manager_free(m);
}

static void test_custom_init_runs_commands_with_service_name(void **state)
{
    struct fixture *f = *state;
    struct svc_manager *m = NULL;
    struct te_error err = {0};
    char text[1024];
    bool active = true;

    snprintf(text, sizeof(text),
             "# custom init\n[init]\nname = \"dummy\"\nis_available = [\"true\"]\n"
             "restart = [\"sh\", \"-c\", \"echo restart $0 >> %s\", \"{}\"]\n"
             "start = [\"sh\", \"-c\", \"echo start $0 >> %s\", \"{}\"]\n"
             "enable = [\"sh\", \"-c\", \"echo enable $0 >> %s\", \"{}\"]\n"
             "stop = [\"false\", \"{}\"]\n"
             "is_active = [\"sh\", \"-c\", \"test $0 = up\", \"{}\"]\n"
             "reload = [\"true\", \"{}\"]\n", f->witness, f->witness, f->witness);
    unit_write_file(f->toml, text, 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_OK);
    assert_string_equal(svc_manager_name(m), "dummy");
    assert_int_equal(svc_manager_check_operational(m, &err), TE_OK);
    assert_int_equal(svc_manager_run(m, SVC_RESTART, "mosquitto", &err), TE_OK);
    assert_int_equal(svc_manager_start_and_enable(m, "tedge-mapper-c8y@p1", &err), TE_OK);
    assert_string_equal(unit_read_file(f->witness), "restart mosquitto\nstart tedge-mapper-c8y@p1\n"
                                                    "enable tedge-mapper-c8y@p1\n");
    /* a non-zero exit is an error with the command and its code */
    assert_int_equal(svc_manager_run(m, SVC_STOP, "mosquitto", &err), TE_ERR_IO);
    assert_string_equal(err.msg, "Service command <\"false mosquitto\"> failed with code: 1.");
    assert_int_equal(svc_manager_stop_and_disable(m, "x", &err), TE_ERR_IO);
    /* is_active: exit status only */
    assert_int_equal(svc_manager_is_active(m, "up", &active, &err), TE_OK);
    assert_true(active);
    assert_int_equal(svc_manager_is_active(m, "down", &active, &err), TE_OK);
    assert_false(active);
    svc_manager_free(m);
}

static void test_missing_key_keeps_systemd_command(void **state)
{
    struct fixture *f = *state;
    struct svc_manager *m = NULL;
    struct te_error err = {0};
    char **argv = NULL;

    unit_write_file(f->toml, "[init]\nname = \"OpenRC\"\nrestart = [\"/sbin/rc-service\", \"{}\", "
                             "\"restart\"]\n", 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_OK);
    assert_string_equal(svc_manager_name(m), "OpenRC");
    assert_int_equal(svc_manager_argv(m, SVC_RESTART, "mosquitto", &argv, &err), TE_OK);
    assert_string_equal(argv[1], "mosquitto");
    assert_string_equal(argv[2], "restart");
    free(argv);
    assert_int_equal(svc_manager_argv(m, SVC_START, "mosquitto", &argv, &err), TE_OK);
    assert_string_equal(argv[0], "/bin/systemctl");
    free(argv);
    svc_manager_free(m);
}

static void test_unavailable_and_unrunnable(void **state)
{
    struct fixture *f = *state;
    struct svc_manager *m = NULL;
    struct te_error err = {0};

    unit_write_file(f->toml, "[init]\nname = \"ghost\"\nis_available = [\"false\"]\n"
                             "start = [\"/nonexistent/te-init\", \"{}\"]\n", 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_OK);
    assert_int_equal(svc_manager_check_operational(m, &err), TE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Service manager 'ghost' is not available"));
    assert_int_equal(svc_manager_run(m, SVC_START, "mosquitto", &err), TE_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/te-init mosquitto"));
    assert_non_null(strstr(err.msg, "could not be run"));
    svc_manager_free(m);
}

static void test_placeholder_required(void **state)
{
    struct fixture *f = *state;
    struct svc_manager *m = NULL;
    struct te_error err = {0};

    unit_write_file(f->toml, "[init]\nstop = [\"/bin/true\", \"all\"]\n", 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_OK);
    assert_int_equal(svc_manager_run(m, SVC_STOP, "mosquitto", &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "no placeholder '{}'"));
    svc_manager_free(m);
}

static void test_bad_types_name_the_place(void **state)
{
    struct fixture *f = *state;
    struct svc_manager *m = NULL;
    struct te_error err = {0};

    unit_write_file(f->toml, "[init]\nname = \"x\"\nrestart = \"systemctl restart {}\"\n", 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_ERR_CONFIG);
    assert_null(m);
    assert_non_null(strstr(err.msg, "system.toml:3:1: `init.restart` must be an array"));

    unit_write_file(f->toml, "[init]\nstart = []\n", 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "non-empty array"));

    unit_write_file(f->toml, "[init]\nstart = [\"a\", 1]\n", 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_ERR_CONFIG);

    unit_write_file(f->toml, "[init\nname = \"x\"\n", 0644);
    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "The init system configuration is invalid"));
    assert_non_null(strstr(err.msg, "system.toml:1:"));
}

static void test_service_name_bounds(void **state)
{
    struct fixture *f = *state;
    struct svc_manager *m = NULL;
    struct te_error err = {0};
    char name[SVC_SERVICE_NAME_MAX + 8];

    assert_int_equal(svc_manager_load(f->dir, &m, &err), TE_OK);
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(svc_manager_run(m, SVC_START, name, &err), TE_ERR_INVALID);
    assert_int_equal(svc_manager_run(m, SVC_START, "", &err), TE_ERR_INVALID);
    svc_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_file_is_systemd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_init_runs_commands_with_service_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_keeps_systemd_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable_and_unrunnable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placeholder_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_types_name_the_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_name_bounds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
