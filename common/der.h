/* DER and PEM helpers for device keys: ECDSA raw r||s -> DER, SubjectPublicKeyInfo from RSA
 * (n, e) or EC (named-curve params, point), the NIST curves we know, PKCS#1 DigestInfo, PEM. */
#ifndef TEDGE_COMMON_DER_H
#define TEDGE_COMMON_DER_H

#include <stddef.h>
#include <stdint.h>

#include "common/sigscheme.h"

#define DER_EC_COORD_MAX 66       /* P-521: 521 bits round up to 66 bytes per coordinate */
#define DER_ECDSA_SIG_MAX 141     /* 66-byte halves: 3-byte SEQUENCE header + 2 * (2 + 1 + 66) */
#define DER_DIGEST_INFO_MAX 83    /* SHA-512 DigestInfo: 19-byte prefix + 64-byte digest */
#define DER_SPKI_MAX 1100         /* RSA 8192 SPKI is ~1060 bytes; bigger is not a device key */

/* A named curve we recognise in CKA_EC_PARAMS. */
struct der_curve {
    const char *name;             /* "P-256", "P-384", "P-521" */
    unsigned bits;                /* size of the field and the group order */
    size_t coord_len;             /* bytes per coordinate, and per ECDSA r and s */
    const uint8_t *oid;           /* the DER OBJECT IDENTIFIER, tag and length included */
    size_t oid_len;
};

/* The curve whose namedCurve OID equals params (CKA_EC_PARAMS), or NULL. */
const struct der_curve *der_curve_from_params(const uint8_t *params, size_t len);

/* ECDSA raw r||s (each half the same length, at most DER_EC_COORD_MAX) to a DER
 * ECDSA-Sig-Value with minimal positive INTEGERs. TE_ERR_MALFORMED for an empty, odd or
 * oversized input, TE_ERR_TOO_LARGE when cap is too small. */
int der_ecdsa_sig_from_raw(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap,
                           size_t *out_len);

/* The uncompressed EC point inside CKA_EC_POINT, which tokens return either wrapped in a DER
 * OCTET STRING (the standard) or raw; coord_len (0 = unknown) tells the raw form apart.
 * *point points into in. TE_ERR_MALFORMED when neither form fits. */
int der_ec_point_unwrap(const uint8_t *in, size_t len, size_t coord_len, const uint8_t **point,
                        size_t *point_len);

/* SubjectPublicKeyInfo (DER, malloc'd) for an RSA key from its big-endian modulus and exponent. */
int der_spki_rsa(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len, uint8_t **der,
                 size_t *der_len);

/* SubjectPublicKeyInfo (DER, malloc'd) for an EC key: params is the ECParameters DER
 * (CKA_EC_PARAMS, usually a namedCurve OID), point the uncompressed point 04||X||Y. */
int der_spki_ec(const uint8_t *params, size_t params_len, const uint8_t *point, size_t point_len,
                uint8_t **der, size_t *der_len);

/* PKCS#1 v1.5 DigestInfo for a digest made with hash (what CKM_RSA_PKCS signs).
 * TE_ERR_INVALID when digest_len does not match the hash. */
int der_digest_info(enum sig_hash hash, const uint8_t *digest, size_t digest_len, uint8_t *out,
                    size_t cap, size_t *out_len);

/* PEM text ("-----BEGIN <label>-----" ...) for DER bytes; *pem is malloc'd and NUL-terminated. */
int der_to_pem(const char *label, const uint8_t *der, size_t der_len, char **pem);
/* The DER bytes of the first PEM block with this label in the NUL-terminated text pem
 * (malloc'd). TE_ERR_NOT_FOUND without such a block, TE_ERR_MALFORMED for bad base64. */
int der_from_pem(const char *pem, const char *label, uint8_t **der, size_t *der_len);

#endif
