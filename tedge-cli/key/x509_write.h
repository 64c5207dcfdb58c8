/* Device certificates and certificate signing requests for any x509_key (a signer or a key in
 * memory), DER-encoded here because mbedTLS 2.28's x509write puts a NULL into ECDSA algorithm
 * identifiers (RFC 5758 forbids it) and cannot write the public key of a signer-backed RSA key. */
#ifndef TEDGE_CLI_X509_WRITE_H
#define TEDGE_CLI_X509_WRITE_H

#include <time.h>

#include "common/err.h"
#include "tedge-cli/key/x509_key.h"

#define X509_CN_MAX 64            /* upstream's max_cn_size: longest device id */
#define X509_NAME_FIELD_MAX 128   /* longest organization / unit we put in a name */

/* Subject (and, self-signed, issuer): CN=<common_name>, O=<organization>, OU=<unit>, each a
 * UTF8String. */
struct x509_subject {
    const char *common_name;
    const char *organization;
    const char *unit;
};

/* Checks a device id the way upstream does (1..64 characters of A-Z a-z 0-9 ' = ( ) , - . ? % *
 * _ ! @); TE_ERR_INVALID with upstream's message otherwise. */
int x509_check_device_id(const char *id, struct te_error *err);

/* A PKCS#10 request (PEM, malloc'd) without attributes, signed by key: ecdsa-with-SHA256/384/512
 * for P-256/384/521 (no parameters), sha256WithRSAEncryption (NULL parameters) for RSA. */
int x509_write_csr(struct x509_key *key, const struct x509_subject *subject, char **pem,
                   struct te_error *err);

/* A self-signed X.509 v3 certificate (PEM, malloc'd) valid from not_before for days days,
 * with a random positive 128-bit serial, upstream's extensions (basicConstraints CA:TRUE,
 * critical, which Cumulocity requires of a self-signed device certificate; a subject key
 * identifier) and the signature algorithm of x509_write_csr. */
int x509_write_self_signed(struct x509_key *key, const struct x509_subject *subject,
                           time_t not_before, unsigned days, char **pem, struct te_error *err);

#endif
