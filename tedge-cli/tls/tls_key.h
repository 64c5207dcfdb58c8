/* The device key as an mbedTLS private key: a signer wrapped in an mbedtls_pk_context (RSA
 * through rsa_alt, EC through a pk_info table of ours), checked against its certificate. */
#ifndef TEDGE_CLI_TLS_KEY_H
#define TEDGE_CLI_TLS_KEY_H

#include <stdbool.h>

#include <mbedtls/pk.h>

#include "common/err.h"
#include "common/sigscheme.h"
#include "tedge-cli/key/signer.h"

struct tls_key;

struct tls_key_stats {
    unsigned long signatures;   /* signatures the signer made for mbedTLS */
    unsigned long failures;     /* sign calls that failed */
    bool have_last_hash;
    enum sig_hash last_hash;    /* hash of the last signature (the CertificateVerify hash) */
};

/* Wraps signer (borrowed: it must outlive the key) as an mbedTLS private key for the public
 * key cert_pk, after checking that the signer's public key is exactly cert_pk (DER SPKI);
 * cert_path only names the certificate in messages. */
int tls_key_new(struct signer *signer, mbedtls_pk_context *cert_pk, const char *cert_path,
                struct tls_key **out, struct te_error *err);
void tls_key_free(struct tls_key *k);

/* The private key to hand to mbedtls_ssl_conf_own_cert / mbedtls_pk_sign. */
mbedtls_pk_context *tls_key_pk(struct tls_key *k);

/* Moves the error of the last failed signature into err (when not NULL) and forgets it.
 * Returns false when no signature failed since the last call. mbedTLS reports a failed
 * signature with a generic code: this is how callers get the signer's own explanation. */
bool tls_key_take_error(struct tls_key *k, struct te_error *err);

void tls_key_get_stats(struct tls_key *k, struct tls_key_stats *out);

/* Checks once per process that the installed mbedTLS library has the pk_info layout this
 * code was compiled against (the EC key depends on it). tls_key_new runs it for EC keys. */
int tls_key_check_layout(struct te_error *err);

#endif
