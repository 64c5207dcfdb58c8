/* The connection summary printed before `tedge connect` does anything (upstream's config log),
 * the cloud target of a profile (marker file, mapper service) and the certificate's CN. */
#include "tedge-cli/commands/connect_internal.h"

#include "common/p11.h"
#include "common/x509_name.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#define ANSI_BLUE_BOLD "\033[1;34m"
#define ANSI_BLUE "\033[34m"

int connect_target_init(struct connect_target *t, const char *config_dir, const char *profile,
                        struct te_error *err)
{
    memset(t, 0, sizeof(*t));
    if (profile != NULL && profile[0] != '\0') {
        size_t len = strlen(profile);
        if (len >= sizeof(t->profile))
            return te_error_set(err, TE_ERR_INVALID, "The profile name '%.64s...' is too long "
                                "(at most %d characters).", profile, CFG_PROFILE_MAX - 1);
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)profile[i];
            if (!isalnum(ch) && ch != '-' && ch != '_')
                return te_error_set(err, TE_ERR_INVALID,
                                    "Invalid profile name '%s': use letters, digits, '-' and "
                                    "'_' only.", profile);
        }
        snprintf(t->profile, sizeof(t->profile), "%s", profile);
        snprintf(t->mapper_service, sizeof(t->mapper_service), "%s@%s", SVC_MAPPER_C8Y, profile);
        snprintf(t->marker_path, sizeof(t->marker_path), "%s/%s/c8y@%s-bridge.conf", config_dir,
                 CONNECT_BRIDGE_DIR, profile);
        snprintf(t->disconnect_cmd, sizeof(t->disconnect_cmd), "tedge disconnect c8y --profile %s",
                 profile);
    } else {
        snprintf(t->mapper_service, sizeof(t->mapper_service), "%s", SVC_MAPPER_C8Y);
        snprintf(t->marker_path, sizeof(t->marker_path), "%s/%s/c8y-bridge.conf", config_dir,
                 CONNECT_BRIDGE_DIR);
        snprintf(t->disconnect_cmd, sizeof(t->disconnect_cmd), "tedge disconnect c8y");
    }
    return TE_OK;
}

/* A program next to this tedge binary (a build or an install dir), else on PATH. */
bool connect_program_installed(const char *name)
{
    char self[PATH_MAX], path[PATH_MAX + 64];
    const char *env = getenv("PATH");
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/%s", self, name);
            if (access(path, X_OK) == 0)
                return true;
        }
    }
    while (env != NULL && *env != '\0') {
        size_t len = strcspn(env, ":");
        snprintf(path, sizeof(path), "%.*s/%s", (int)(len ? len : 1), len ? env : ".", name);
        if (access(path, X_OK) == 0)
            return true;
        env += len + (env[len] == ':');
    }
    return false;
}

void connect_cloud_key(const struct connect_target *t, const char *rest, char *out, size_t size)
{
    if (t->profile[0] != '\0')
        snprintf(out, size, "c8y.profiles.%s.%s", t->profile, rest);
    else
        snprintf(out, size, "c8y.%s", rest);
}

int connect_cert_cn(const char *path, char *out, size_t size, struct te_error *err)
{
    char *cn = NULL;
    int detail, ret = x509_file_cn(path, &cn, &detail);

    out[0] = '\0';
    if (ret == TE_OK && strlen(cn) >= size)
        ret = TE_ERR_INVALID;
    switch (ret) {
    case TE_OK:
        snprintf(out, size, "%s", cn);
        break;
    case TE_ERR_NOT_FOUND:
        ret = te_error_set(err, TE_ERR_NOT_FOUND, "No certificate at '%s'.", path);
        break;
    case TE_ERR_PERMISSION:
        ret = te_error_set(err, TE_ERR_MALFORMED, "The certificate '%s' cannot be read (%s).",
                           path, strerror(detail));
        break;
    case TE_ERR_MALFORMED:
        if (detail == 0)
            ret = te_error_set(err, TE_ERR_MALFORMED, "'%s' is not a certificate file.", path);
        else
            ret = te_error_set(err, TE_ERR_MALFORMED,
                               "The certificate '%s' cannot be read (mbedTLS error -0x%04x).",
                               path, (unsigned)-detail);
        break;
    case TE_ERR_NOMEM:
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
        break;
    default:
        ret = te_error_set(err, TE_ERR_MALFORMED, "The certificate '%s' has no Common Name (CN): "
                           "the CN is the device id.", path);
        break;
    }
    free(cn);
    return ret;
}

void connect_cryptoki_status(enum cfg_cryptoki_mode mode, const char *key_uri, char *out,
                             size_t size)
{
    char redacted[1024];
    const char *name = mode == CFG_CRYPTOKI_MODULE ? "module"
                       : mode == CFG_CRYPTOKI_SOCKET ? "socket" : "off";

    if (mode == CFG_CRYPTOKI_OFF || key_uri == NULL || key_uri[0] == '\0') {
        snprintf(out, size, "%s", name);
        return;
    }
    p11_uri_redact(key_uri, redacted, sizeof(redacted));
    snprintf(out, size, "%s (key: %s)", name, redacted);
}

static void entry(const char *name, const char *value)
{
    fprintf(stderr, "\n\t%s%s:%s %s%s%s", connect_color(ANSI_BLUE_BOLD), name,
            connect_color(NULL), connect_color(ANSI_BLUE), value, connect_color(NULL));
}

void connect_summary_print(const struct connect_summary *s)
{
    fprintf(stderr, "%s with config:", s->title);
    entry("device id", s->device_id);
    entry("cloud profile", s->profile != NULL && s->profile[0] != '\0' ? s->profile : "<none>");
    entry("cloud host", s->cloud_host);
    entry("auth type", "Certificate");
    entry("certificate file", s->cert_path);
    entry("cryptoki", s->cryptoki);
    entry("bridge", "built-in");
    entry("service manager", s->service_manager);
    fputc('\n', stderr);
    fflush(stderr);
}
