/* Signature schemes: the (algorithm, hash) pairs that a device key can sign with, their
 * stable names (used on the wire and in logs) and their digest sizes. */
#ifndef TEDGE_COMMON_SIGSCHEME_H
#define TEDGE_COMMON_SIGSCHEME_H

#include <stdbool.h>
#include <stddef.h>

enum sig_hash { SIG_HASH_SHA256 = 0, SIG_HASH_SHA384, SIG_HASH_SHA512 };
enum sig_alg { SIG_ALG_ECDSA = 0, SIG_ALG_RSA_PKCS1, SIG_ALG_RSA_PSS };

/* Names: "ecdsa_sha256", "ecdsa_sha384", "ecdsa_sha512", "rsa_pkcs1_sha256", ...,
 * "rsa_pss_sha512". The digest is always computed by the caller (hash on the host). */
enum sig_scheme {
    SIG_ECDSA_SHA256 = 0,
    SIG_ECDSA_SHA384,
    SIG_ECDSA_SHA512,
    SIG_RSA_PKCS1_SHA256,
    SIG_RSA_PKCS1_SHA384,
    SIG_RSA_PKCS1_SHA512,
    SIG_RSA_PSS_SHA256,
    SIG_RSA_PSS_SHA384,
    SIG_RSA_PSS_SHA512,
    SIG_SCHEME_COUNT
};

const char *sig_scheme_name(enum sig_scheme s);
/* 0 and *out set on success; TE_ERR_INVALID for an unknown name. */
int sig_scheme_from_name(const char *name, enum sig_scheme *out);
enum sig_alg sig_scheme_alg(enum sig_scheme s);
enum sig_hash sig_scheme_hash(enum sig_scheme s);
enum sig_scheme sig_scheme_make(enum sig_alg alg, enum sig_hash hash);
/* Digest length in bytes for the scheme's hash (32, 48, 64). */
size_t sig_hash_len(enum sig_hash h);
const char *sig_hash_name(enum sig_hash h);
bool sig_scheme_valid(int s);

#endif
