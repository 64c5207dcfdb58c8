/* Signature scheme names and properties (see sigscheme.h). The names are part of the
 * wire protocol: never rename one. */
#include "common/sigscheme.h"
#include "common/err.h"

#include <string.h>

static const char *const scheme_names[SIG_SCHEME_COUNT] = {
    "ecdsa_sha256",     "ecdsa_sha384",     "ecdsa_sha512",
    "rsa_pkcs1_sha256", "rsa_pkcs1_sha384", "rsa_pkcs1_sha512",
    "rsa_pss_sha256",   "rsa_pss_sha384",   "rsa_pss_sha512",
};

bool sig_scheme_valid(int s) { return s >= 0 && s < SIG_SCHEME_COUNT; }

const char *sig_scheme_name(enum sig_scheme s)
{
    return sig_scheme_valid((int)s) ? scheme_names[s] : "unknown";
}

int sig_scheme_from_name(const char *name, enum sig_scheme *out)
{
    if (name == NULL)
        return TE_ERR_INVALID;
    for (int i = 0; i < SIG_SCHEME_COUNT; i++) {
        if (strcmp(name, scheme_names[i]) == 0) {
            *out = (enum sig_scheme)i;
            return TE_OK;
        }
    }
    return TE_ERR_INVALID;
}

enum sig_alg sig_scheme_alg(enum sig_scheme s) { return (enum sig_alg)(s / 3); }
enum sig_hash sig_scheme_hash(enum sig_scheme s) { return (enum sig_hash)(s % 3); }

enum sig_scheme sig_scheme_make(enum sig_alg alg, enum sig_hash hash)
{
    return (enum sig_scheme)((int)alg * 3 + (int)hash);
}

size_t sig_hash_len(enum sig_hash h)
{
    switch (h) {
    case SIG_HASH_SHA256: return 32;
    case SIG_HASH_SHA384: return 48;
    case SIG_HASH_SHA512: return 64;
    }
    return 0;
}

const char *sig_hash_name(enum sig_hash h)
{
    switch (h) {
    case SIG_HASH_SHA256: return "sha256";
    case SIG_HASH_SHA384: return "sha384";
    case SIG_HASH_SHA512: return "sha512";
    }
    return "unknown";
}
