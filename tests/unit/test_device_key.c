/* Unit tests for tedge-cli/key/device_key: which tedge.toml keys give the device key and
 * certificate per mode, cloud and profile, the fallbacks to device.*, and the errors. */
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
#include "tedge-cli/key/device_key.h"
#include "unit_helpers.h"

struct fixture {
    char dir[64];
    char file[96];
    char path[160];      /* scratch for expected default paths */
    struct cfg *cfg;
    struct device_key_config *key;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_device_key.XXXXXX");
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

    device_key_free(f->key);
    cfg_free(f->cfg);
    unit_clear_tedge_env();
    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Writes tedge.toml and (re)loads it. */
static void load(struct fixture *f, const char *toml)
{
    struct te_error err = {0};
    FILE *fp = fopen(f->file, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(toml, 1, strlen(toml), fp), strlen(toml));
    assert_int_equal(fclose(fp), 0);
    cfg_free(f->cfg);
    f->cfg = NULL;
    assert_int_equal(cfg_load(f->dir, &f->cfg, &err), TE_OK);
}

/* device_key_load into f->key (freeing the previous one); returns its result. */
static int resolve(struct fixture *f, const char *cloud, const char *profile,
                   struct te_error *err)
{
    device_key_free(f->key);
    f->key = NULL;
    return device_key_load(f->cfg, cloud, profile, &f->key, err);
}

static const char *in_dir(struct fixture *f, const char *rel)
{
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, rel);
    return f->path;
}

static void test_defaults_are_mode_off_with_key_file(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "");
    assert_int_equal(resolve(f, NULL, NULL, &err), TE_OK);
    assert_int_equal(f->key->mode, CFG_CRYPTOKI_OFF);
    assert_false(device_key_in_hsm(f->key));
    assert_string_equal(f->key->prefix, "device.");
    assert_string_equal(f->key->key_path, in_dir(f, "device-certs/tedge-private-key.pem"));
    assert_string_equal(f->key->cert_path, in_dir(f, "device-certs/tedge-certificate.pem"));
    assert_string_equal(f->key->csr_path, in_dir(f, "device-certs/tedge.csr"));
    assert_int_equal(f->key->signer.kind, SIGNER_FILE);
    assert_string_equal(f->key->signer.key_path, f->key->key_path);
    assert_null(f->key->signer.module_path);
    assert_null(f->key->signer.key_uri);
    assert_null(f->key->key_uri);
    assert_null(f->key->pin);
}

static void test_cloud_paths_fall_back_to_device_paths(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "[device]\nkey_path = \"/d/key.pem\"\ncert_path = \"/d/cert.pem\"\n"
            "csr_path = \"/d/req.csr\"\n"
            "[c8y.device]\nkey_path = \"/c8y/key.pem\"\ncert_path = \"/c8y/cert.pem\"\n");
    assert_int_equal(resolve(f, "c8y", NULL, &err), TE_OK);
    assert_string_equal(f->key->prefix, "c8y.device.");
    assert_string_equal(f->key->key_path, "/c8y/key.pem");
    assert_string_equal(f->key->cert_path, "/c8y/cert.pem");
    assert_string_equal(f->key->csr_path, "/d/req.csr"); /* not set for c8y: device.csr_path */
    assert_string_equal(f->key->signer.key_path, "/c8y/key.pem");
    /* another cloud without its own keys gets the device.* values */
    assert_int_equal(resolve(f, "az", NULL, &err), TE_OK);
    assert_string_equal(f->key->key_path, "/d/key.pem");
    assert_string_equal(f->key->cert_path, "/d/cert.pem");
    /* without a cloud: device.* directly, whatever c8y says */
    assert_int_equal(resolve(f, NULL, NULL, &err), TE_OK);
    assert_string_equal(f->key->key_path, "/d/key.pem");
}

static void test_profile_keys_fall_back_to_device_not_to_the_cloud(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "[device]\ncert_path = \"/d/cert.pem\"\n"
            "[c8y.device]\ncert_path = \"/c8y/cert.pem\"\nkey_uri = \"pkcs11:token=c8y\"\n"
            "[c8y.profiles.second.device]\ncert_path = \"/second/cert.pem\"\n"
            "[device.cryptoki]\nmode = \"socket\"\n");
    assert_int_equal(resolve(f, "c8y", "second", &err), TE_OK);
    assert_string_equal(f->key->prefix, "c8y.profiles.second.device.");
    assert_string_equal(f->key->cert_path, "/second/cert.pem");
    assert_null(f->key->key_uri); /* neither the profile nor device.* has one */
    assert_int_equal(resolve(f, "c8y", "third", &err), TE_OK);
    assert_string_equal(f->key->cert_path, "/d/cert.pem");
    assert_int_equal(resolve(f, "c8y", "", &err), TE_OK); /* "" is the default profile */
    assert_string_equal(f->key->cert_path, "/c8y/cert.pem");
    assert_string_equal(f->key->key_uri, "pkcs11:token=c8y");
}

static void test_module_mode_reads_module_scope_uri_and_pins(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "[device]\nkey_uri = \"pkcs11:object=dev\"\nkey_pin = \"1111\"\n"
            "[device.cryptoki]\nmode = \"module\"\nmodule_path = \"/usr/lib/m.so\"\n"
            "uri = \"pkcs11:token=scope\"\npin = \"9999\"\n"
            "[c8y.device]\nkey_uri = \"pkcs11:object=c8y\"\nkey_pin = \"2222\"\n");
    assert_int_equal(resolve(f, NULL, NULL, &err), TE_OK);
    assert_true(device_key_in_hsm(f->key));
    assert_int_equal(f->key->signer.kind, SIGNER_MODULE);
    assert_string_equal(f->key->signer.module_path, "/usr/lib/m.so");
    assert_string_equal(f->key->signer.scope_uri, "pkcs11:token=scope");
    assert_string_equal(f->key->signer.key_uri, "pkcs11:object=dev");
    assert_string_equal(f->key->signer.pin, "1111");
    assert_string_equal(f->key->signer.default_pin, "9999");
    assert_null(f->key->signer.socket_path);
    assert_int_equal(resolve(f, "c8y", NULL, &err), TE_OK);
    assert_string_equal(f->key->signer.key_uri, "pkcs11:object=c8y");
    assert_string_equal(f->key->signer.pin, "2222");
    assert_string_equal(f->key->signer.default_pin, "9999"); /* the module's, for every cloud */
    assert_int_equal(resolve(f, "aws", NULL, &err), TE_OK);
    assert_string_equal(f->key->signer.key_uri, "pkcs11:object=dev");
    assert_string_equal(f->key->signer.pin, "1111");
}

static void test_module_mode_optional_values_may_be_missing(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "[device.cryptoki]\nmode = \"module\"\nmodule_path = \"/usr/lib/m.so\"\n");
    assert_int_equal(resolve(f, "c8y", NULL, &err), TE_OK);
    assert_string_equal(f->key->signer.module_path, "/usr/lib/m.so");
    assert_null(f->key->signer.scope_uri);
    assert_null(f->key->signer.key_uri);
    assert_null(f->key->signer.pin);
    assert_null(f->key->signer.default_pin);
}

static void test_module_mode_without_module_path_is_an_error(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "[device.cryptoki]\nmode = \"module\"\n");
    assert_int_equal(resolve(f, "c8y", NULL, &err), TE_ERR_CONFIG);
    assert_null(f->key);
    assert_non_null(strstr(err.msg, "device.cryptoki.module_path is not set"));
    assert_non_null(strstr(err.msg, "tedge config set device.cryptoki.module_path"));
}

static void test_socket_mode_reads_socket_key_uri_and_pin_only(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "[device]\nkey_uri = \"pkcs11:object=dev\"\n"
            "[device.cryptoki]\nmode = \"socket\"\nmodule_path = \"/usr/lib/m.so\"\n"
            "uri = \"pkcs11:token=scope\"\npin = \"9999\"\n"
            "[az.device]\nkey_pin = \"3333\"\n");
    assert_int_equal(resolve(f, "az", NULL, &err), TE_OK);
    assert_int_equal(f->key->signer.kind, SIGNER_SOCKET);
    assert_string_equal(f->key->signer.socket_path, "/run/tedge-p11-server/tedge-p11-server.sock");
    assert_string_equal(f->key->signer.key_uri, "pkcs11:object=dev");
    assert_string_equal(f->key->signer.pin, "3333");
    /* the daemon has its own module, scope and default PIN: none of them is sent */
    assert_null(f->key->signer.module_path);
    assert_null(f->key->signer.scope_uri);
    assert_null(f->key->signer.default_pin);
    load(f, "[device.cryptoki]\nmode = \"socket\"\nsocket_path = \"/tmp/p11.sock\"\n");
    assert_int_equal(resolve(f, NULL, NULL, &err), TE_OK);
    assert_string_equal(f->key->signer.socket_path, "/tmp/p11.sock");
}

static void test_environment_overrides_the_file(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "[device.cryptoki]\nmode = \"module\"\nmodule_path = \"/usr/lib/m.so\"\n"
            "[c8y.device]\nkey_uri = \"pkcs11:object=file\"\n");
    setenv("TEDGE_C8Y_DEVICE_KEY_URI", "pkcs11:object=env", 1);
    setenv("TEDGE_DEVICE_CRYPTOKI_MODE", "socket", 1);
    assert_int_equal(resolve(f, "c8y", NULL, &err), TE_OK);
    assert_int_equal(f->key->mode, CFG_CRYPTOKI_SOCKET);
    assert_string_equal(f->key->signer.key_uri, "pkcs11:object=env");
}

static void test_bad_cloud_profile_and_values_are_errors(void **state)
{
    struct fixture *f = *state;
    struct te_error err = {0};

    load(f, "");
    assert_int_equal(resolve(f, "gcp", NULL, &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "Unknown cloud 'gcp'"));
    assert_int_equal(resolve(f, NULL, "second", &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "needs a cloud"));
    assert_int_equal(resolve(f, "c8y", "bad.name", &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "Invalid profile name 'bad.name'"));
    assert_null(f->key);
    /* a configured value that is invalid names its key */
    load(f, "[device.cryptoki]\nmode = \"sometimes\"\n");
    assert_int_not_equal(resolve(f, "c8y", NULL, &err), TE_OK);
    assert_non_null(strstr(err.msg, "device.cryptoki.mode"));
    load(f, "[c8y.device]\nkey_path = \"relative/key.pem\"\n");
    assert_int_not_equal(resolve(f, "c8y", NULL, &err), TE_OK);
    assert_non_null(strstr(err.msg, "c8y.device.key_path"));
    assert_null(f->key);
}

static void test_mode_names_and_free_null(void **state)
{
    (void)state;
    assert_string_equal(device_key_mode_name(CFG_CRYPTOKI_OFF), "off");
    assert_string_equal(device_key_mode_name(CFG_CRYPTOKI_MODULE), "module");
    assert_string_equal(device_key_mode_name(CFG_CRYPTOKI_SOCKET), "socket");
    device_key_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_are_mode_off_with_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cloud_paths_fall_back_to_device_paths, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_profile_keys_fall_back_to_device_not_to_the_cloud,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_mode_reads_module_scope_uri_and_pins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_module_mode_optional_values_may_be_missing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_module_mode_without_module_path_is_an_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_socket_mode_reads_socket_key_uri_and_pin_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_environment_overrides_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cloud_profile_and_values_are_errors, setup,
                                        teardown),
        cmocka_unit_test(test_mode_names_and_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
