/* The key that signs device certificates and requests: a signer (key file, PKCS#11 module or
 * tedge-p11-server) or an in-memory mbedTLS key, with its public key, hash and scheme; and the
 * new key file that `tedge cert` makes in mode off. */
#ifndef TEDGE_CLI_X509_KEY_H
#define TEDGE_CLI_X509_KEY_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/md.h>
#include <mbedtls/pk.h>

#include "common/err.h"
#include "common/sigscheme.h"
#include "tedge-cli/key/signer.h"

struct x509_key {
    struct signer *signer;   /* borrowed; NULL for an in-memory key */
    mbedtls_pk_context *priv;/* borrowed in-memory key; NULL for a signer */
    uint8_t *spki;           /* DER SubjectPublicKeyInfo (owned) */
    size_t spki_len;
    mbedtls_pk_context pub;  /* the public key, parsed from spki */
    mbedtls_md_type_t md;    /* SHA-256 (RSA, P-256), SHA-384 (P-384), SHA-512 (P-521) */
    enum sig_scheme scheme;  /* ECDSA or RSA PKCS#1 v1.5 with that hash */
};

/* Reads the signer's public key (a key or token missing from an HSM fails here with the
 * signer's error: TE_ERR_NO_KEY, TE_ERR_NO_TOKEN, ...) and picks the hash and scheme.
 * TE_ERR_UNSUPPORTED for a key that is neither RSA nor EC on P-256/384/521. */
int x509_key_from_signer(struct x509_key *k, struct signer *signer, struct te_error *err);
/* The same for an mbedTLS private key (borrowed). */
int x509_key_from_pk(struct x509_key *k, mbedtls_pk_context *priv, struct te_error *err);
/* Frees what x509_key_from_* allocated; a zeroed struct is fine. */
void x509_key_clear(struct x509_key *k);

/* Hashes data with k->md and signs it: ECDSA as a DER ECDSA-Sig-Value, RSA raw. The signature
 * is verified with the public key before it is returned, so a token that signs with another key
 * than the one it reports is caught here. */
int x509_key_sign(struct x509_key *k, const uint8_t *data, size_t len, uint8_t *sig, size_t cap,
                  size_t *sig_len, struct te_error *err);

/* A new EC P-256 key (upstream's choice) in pk, which must be initialized and empty. */
int x509_new_ec_key(mbedtls_pk_context *pk, struct te_error *err);
/* The private key as unencrypted PKCS#8 PEM ("PRIVATE KEY", what upstream writes); *pem is
 * malloc'd and holds a secret: release it with te_free_secret(). */
int x509_key_to_pkcs8_pem(mbedtls_pk_context *pk, char **pem, struct te_error *err);

#endif
