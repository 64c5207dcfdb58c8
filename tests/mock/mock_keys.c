/* Mock PKCS#11 module: the token's objects (an EC P-256 pair, an RSA-2048 pair, optionally a
 * second EC pair with the same label), their entry points (attributes, find), real signing. */
#include "mock_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#define MOCK_EC_COORD 32          /* P-256 */
#define MOCK_HANDLE_BASE 0x100    /* first object handle; not 1, to catch index/handle mixups */

/* A fixed RSA-2048 test key (generated once with `openssl genrsa -traditional 2048`; it
 * protects nothing). Embedded because generating one at every C_Initialize takes seconds. */
static const char mock_rsa_pem[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAodVEfGyecbyr7loENhaduXgGMzJ+7BZhdnIiqdvmG+guA7a+\n"
    "/7s3rA7edoo5x2TbaW4kVTbCgR+pXjTBexSctiUMPqda4S/xUt3OB2y5er87J/lk\n"
    "dKluDE3OkqN1o3L6w914yTi7Nfjos++fEZkgmtSiU2iWyzda9urTHjpa+r05dWO6\n"
    "Xrp8HD3ud5po6CwfbhXY3HZpV2CyF/LknYH3WVfXyt89AL83JMCdkOOJDRABNucT\n"
    "PrK34EJM/eKyxm8T+KUXiJCsh4wNN0XMUGuT+3ehgDVQbYvkknRfi27egmR6bFPd\n"
    "VXO7uQrPlgduy2nA4gmlZYAeWW37Yv77V6m95wIDAQABAoIBABsPG8pqJvwBfgX2\n"
    "iym4EltGlFLPKKW1AErbvqwEFq+n3LnGPp1n4mEkg1HyvsJ2PLGeNvkAlPkeICWe\n"
    "UJOR2Loj6642MV3htEoUyDQ5m7HIc821R3SyN7Ja+CVQq4TO3tsNFvsePz9BBTfA\n"
    "4yoAHpGE6DdmD4CfGtiaXv5452lxIgGwEARbofRsIS0ZPOSvLmiEZI+ziOX7XH+o\n"
    "TJmhbUFITaH40oKnXNPvRMt++jjQRJe3PR6YFDOGGqvwR02TtbqvoagklO1dYGrQ\n"
    "1hPhAI9O+/KpgyLi8OG1VLo/Xto7ED7VPIK8n8RHFD46XnnG0RJzmm38nPllWEYp\n"
    "cKIgElECgYEA2s6pAPnAhsp+7WAJXMPJArgDwqT1Kgk8PrKPp0MQ6NTvqGos2sBS\n"
    "2oYR+fSUN0u9or62+5QlZHO/BP0n/PWVOwpnOvXoGjirMCRy0vj0sohMXRSvqxgW\n"
    "BWoDUluVJiheDHK0fIzViScpC3SkKc1SGwn3oNqIEmSc2W6EuLt4wE0CgYEAvVdk\n"
    "AvmFDEJrMOiZdTnU5+uY9A86Bq/t6a1S4VsMZJDkfvEoBfADtmSOMhm41BKoEw68\n"
    "bm+y347ZA9TtSHxB0vzJpsCVHAErZKlixOaZ3dhKQzakrNjYmskqrNooGNiCMKEL\n"
    "1ub2Qp8triPBop+uFC0XjqsLOk5hDMD+nDyT8QMCgYBXWnH2Rb8rEOSjd9fFBRTW\n"
    "1QgLSTfnVFCM51SafhfeHEShg+HsYyOwwh2jIJWbjc1jj6gVwAs9k0gLgdXZE2JE\n"
    "c97KlynWbhFJ4wNEXseyDuANuRh4weDowG4bDxz4Yt1JMvIDV2ZYnx2vyR1Q4vuI\n"
    "d+44dYYlca180LaD2bRXcQKBgQCjIPf52CDZPyA7MyuD5B+a8VEGdVf5CvpfqgUO\n"
    "Q/OZcXxsIjnpY7DPJDOe1qp3jNtiEAAo5fOmyNwQgRMusF/F+CWElcfiKN/KCmYe\n"
    "Xs+SYxcYcavPf8SfF1K9Offx8Be67gXVUYg6PgqNTiE2i3zfxTnWoWc7BOx4oI68\n"
    "7TRJIQKBgAFwrsRkqR+j3CAqJFpM6RrNf2rk9iYsgq2oraGwRDZTSCvgZ7yfxhCU\n"
    "rZnva/LS8a24ugC8yjvTh0jVRYsQrhHHxZ9Sh7ZOt65VeE5XWNsEOPcUDGEgYB4V\n"
    "sY/4AXF9TAnCxrw8Vur9I8BCDEsXq5CrFZPMAx6FLGsjg0dvHBok\n"
    "-----END RSA PRIVATE KEY-----\n";

static const uint8_t p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

static mbedtls_ecp_keypair ec_keys[2];   /* MOCK_KEY_EC, MOCK_KEY_EC2 */
static mbedtls_pk_context rsa_pk;
static bool keys_ready;

static CK_RV attr_add(struct mock_object *o, CK_ATTRIBUTE_TYPE type, const void *v, size_t len)
{
    struct mock_attr *a;

    if (o->nattrs >= MOCK_MAX_ATTRS)
        return CKR_HOST_MEMORY;
    a = &o->attrs[o->nattrs];
    if ((a->value = malloc(len ? len : 1)) == NULL)
        return CKR_HOST_MEMORY;
    memcpy(a->value, v, len);
    a->type = type;
    a->len = len;
    o->nattrs++;
    return CKR_OK;
}

static CK_RV attr_ulong(struct mock_object *o, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
    return attr_add(o, type, &v, sizeof(v));
}

static CK_RV attr_bool(struct mock_object *o, CK_ATTRIBUTE_TYPE type, bool v)
{
    CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
    return attr_add(o, type, &b, sizeof(b));
}

/* A deterministic P-256 key from a seed: d = SHA-256(seed) mod (n - 1) + 1, Q = d * G. */
static int ec_key_from_seed(mbedtls_ecp_keypair *kp, const char *seed)
{
    unsigned char h[32];
    mbedtls_mpi n1;
    int r;

    mbedtls_ecp_keypair_init(kp);
    mbedtls_mpi_init(&n1);
    mbedtls_sha256_ret((const unsigned char *)seed, strlen(seed), h, 0);
    if ((r = mbedtls_ecp_group_load(&kp->grp, MBEDTLS_ECP_DP_SECP256R1)) != 0 ||
        (r = mbedtls_mpi_read_binary(&kp->d, h, sizeof(h))) != 0 ||
        (r = mbedtls_mpi_sub_int(&n1, &kp->grp.N, 1)) != 0 ||
        (r = mbedtls_mpi_mod_mpi(&kp->d, &kp->d, &n1)) != 0 ||
        (r = mbedtls_mpi_add_int(&kp->d, &kp->d, 1)) != 0 ||
        (r = mbedtls_ecp_mul(&kp->grp, &kp->Q, &kp->d, &kp->grp.G, mock_random, NULL)) != 0)
        goto exit;
exit:
    mbedtls_mpi_free(&n1);
    return r;
}

static CK_RV add_ec_pair(size_t *next, enum mock_key_kind kind, const char *label,
                         uint8_t id, bool always_auth)
{
    mbedtls_ecp_keypair *kp = &ec_keys[kind == MOCK_KEY_EC ? 0 : 1];
    uint8_t point[2 + 1 + 2 * MOCK_EC_COORD];
    size_t plen = 0;
    struct mock_object *priv = &mock.objects[(*next)++], *pub;
    CK_RV rv = CKR_OK;

    if (mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &plen,
                                       point + 2, sizeof(point) - 2) != 0)
        return CKR_GENERAL_ERROR;
    point[0] = 0x04; /* CKA_EC_POINT is a DER OCTET STRING around the point */
    point[1] = (uint8_t)plen;
    priv->used = true;
    priv->cls = CKO_PRIVATE_KEY;
    priv->kind = kind;
    priv->is_private = !mock.cfg.no_login;
    priv->always_auth = always_auth;
    rv |= attr_ulong(priv, CKA_CLASS, CKO_PRIVATE_KEY);
    rv |= attr_ulong(priv, CKA_KEY_TYPE, CKK_EC);
    rv |= attr_bool(priv, CKA_TOKEN, true);
    rv |= attr_bool(priv, CKA_PRIVATE, priv->is_private);
    rv |= attr_bool(priv, CKA_SIGN, true);
    rv |= attr_bool(priv, CKA_SENSITIVE, true);
    rv |= attr_bool(priv, CKA_ALWAYS_AUTHENTICATE, always_auth);
    rv |= attr_add(priv, CKA_LABEL, label, strlen(label));
    rv |= attr_add(priv, CKA_ID, &id, 1);
    rv |= attr_add(priv, CKA_EC_PARAMS, p256_oid, sizeof(p256_oid));
    /* Empty, like SoftHSM's default: it restricts nothing. */
    rv |= attr_add(priv, CKA_ALLOWED_MECHANISMS, "", 0);
    if (mock.cfg.no_public) {
        /* Some tokens keep no public object but answer CKA_EC_POINT on the private key. */
        rv |= attr_add(priv, CKA_EC_POINT, point, plen + 2);
        return rv;
    }
    pub = &mock.objects[(*next)++];
    pub->used = true;
    pub->cls = CKO_PUBLIC_KEY;
    pub->kind = kind;
    rv |= attr_ulong(pub, CKA_CLASS, CKO_PUBLIC_KEY);
    rv |= attr_ulong(pub, CKA_KEY_TYPE, CKK_EC);
    rv |= attr_bool(pub, CKA_TOKEN, true);
    rv |= attr_bool(pub, CKA_PRIVATE, false);
    rv |= attr_bool(pub, CKA_VERIFY, true);
    rv |= attr_add(pub, CKA_LABEL, label, strlen(label));
    rv |= attr_add(pub, CKA_ID, &id, 1);
    rv |= attr_add(pub, CKA_EC_PARAMS, p256_oid, sizeof(p256_oid));
    rv |= attr_add(pub, CKA_EC_POINT, point, plen + 2);
    return rv;
}

static CK_RV add_rsa_pair(size_t *next)
{
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(rsa_pk);
    uint8_t n[256], e[3];
    CK_MECHANISM_TYPE allowed = CKM_RSA_PKCS;
    struct mock_object *priv = &mock.objects[(*next)++], *pub;
    CK_RV rv = CKR_OK;

    if (mbedtls_rsa_export_raw(rsa, n, sizeof(n), NULL, 0, NULL, 0, NULL, 0, e, sizeof(e)) != 0)
        return CKR_GENERAL_ERROR;
    priv->used = true;
    priv->cls = CKO_PRIVATE_KEY;
    priv->kind = MOCK_KEY_RSA;
    priv->is_private = !mock.cfg.no_login;
    rv |= attr_ulong(priv, CKA_CLASS, CKO_PRIVATE_KEY);
    rv |= attr_ulong(priv, CKA_KEY_TYPE, CKK_RSA);
    rv |= attr_bool(priv, CKA_TOKEN, true);
    rv |= attr_bool(priv, CKA_PRIVATE, priv->is_private);
    rv |= attr_bool(priv, CKA_SIGN, true);
    rv |= attr_bool(priv, CKA_ALWAYS_AUTHENTICATE, false);
    rv |= attr_add(priv, CKA_LABEL, "mock-rsa", 8);
    rv |= attr_add(priv, CKA_ID, "\x02", 1);
    rv |= attr_add(priv, CKA_MODULUS, n, sizeof(n));
    rv |= attr_add(priv, CKA_PUBLIC_EXPONENT, e, sizeof(e));
    if (mock.cfg.rsa_pkcs_only)
        rv |= attr_add(priv, CKA_ALLOWED_MECHANISMS, &allowed, sizeof(allowed));
    if (mock.cfg.no_public)
        return rv;
    pub = &mock.objects[(*next)++];
    pub->used = true;
    pub->cls = CKO_PUBLIC_KEY;
    pub->kind = MOCK_KEY_RSA;
    rv |= attr_ulong(pub, CKA_CLASS, CKO_PUBLIC_KEY);
    rv |= attr_ulong(pub, CKA_KEY_TYPE, CKK_RSA);
    rv |= attr_bool(pub, CKA_TOKEN, true);
    rv |= attr_bool(pub, CKA_PRIVATE, false);
    rv |= attr_add(pub, CKA_LABEL, "mock-rsa", 8);
    rv |= attr_add(pub, CKA_ID, "\x02", 1);
    rv |= attr_add(pub, CKA_MODULUS, n, sizeof(n));
    rv |= attr_add(pub, CKA_PUBLIC_EXPONENT, e, sizeof(e));
    rv |= attr_ulong(pub, CKA_MODULUS_BITS, 2048);
    return rv;
}

CK_RV mock_keys_init(void)
{
    size_t next = 0;
    CK_RV rv;

    if (!keys_ready) {
        mbedtls_pk_init(&rsa_pk);
        if (ec_key_from_seed(&ec_keys[0], "tedge-hsm mock P-256 key") != 0 ||
            ec_key_from_seed(&ec_keys[1], "tedge-hsm mock second P-256 key") != 0 ||
            mbedtls_pk_parse_key(&rsa_pk, (const unsigned char *)mock_rsa_pem,
                                 sizeof(mock_rsa_pem), NULL, 0) != 0)
            return CKR_GENERAL_ERROR;
        keys_ready = true;
    }
    memset(mock.objects, 0, sizeof(mock.objects));
    mock.handle_base = MOCK_HANDLE_BASE;
    rv = add_ec_pair(&next, MOCK_KEY_EC, "mock-ec", 0x01, mock.cfg.always_auth);
    rv |= add_rsa_pair(&next);
    if (mock.cfg.dup_label)
        rv |= add_ec_pair(&next, MOCK_KEY_EC2, "mock-ec", 0x03, false);
    return rv == CKR_OK ? CKR_OK : CKR_HOST_MEMORY;
}

void mock_keys_free(void)
{
    for (size_t i = 0; i < MOCK_MAX_OBJECTS; i++)
        for (size_t k = 0; k < mock.objects[i].nattrs; k++)
            free(mock.objects[i].attrs[k].value);
    memset(mock.objects, 0, sizeof(mock.objects));
    if (keys_ready) {
        mbedtls_ecp_keypair_free(&ec_keys[0]);
        mbedtls_ecp_keypair_free(&ec_keys[1]);
        mbedtls_pk_free(&rsa_pk);
        keys_ready = false;
    }
}

struct mock_object *mock_object_at(size_t i) { return &mock.objects[i]; }

CK_OBJECT_HANDLE mock_object_handle(size_t i) { return mock.handle_base + i + 1; }

bool mock_object_visible(const struct mock_object *o)
{
    return o->used && (!o->is_private || mock.logged_in);
}

long mock_object_index(CK_OBJECT_HANDLE h)
{
    if (h <= mock.handle_base || h > mock.handle_base + MOCK_MAX_OBJECTS)
        return -1;
    size_t i = h - mock.handle_base - 1;
    return mock_object_visible(&mock.objects[i]) ? (long)i : -1;
}

const struct mock_attr *mock_object_attr(const struct mock_object *o, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < o->nattrs; i++)
        if (o->attrs[i].type == type)
            return &o->attrs[i];
    return NULL;
}

bool mock_object_matches(const struct mock_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        const struct mock_attr *a = mock_object_attr(o, tmpl[i].type);
        if (a == NULL || a->len != tmpl[i].ulValueLen ||
            (a->len > 0 && memcmp(a->value, tmpl[i].pValue, a->len) != 0))
            return false;
    }
    return true;
}

bool mock_key_allows(const struct mock_object *o, CK_MECHANISM_TYPE mech)
{
    const struct mock_attr *a = mock_object_attr(o, CKA_ALLOWED_MECHANISMS);
    if (a == NULL || a->len == 0)
        return true; /* an empty list restricts nothing (as in SoftHSM) */
    for (size_t i = 0; i + sizeof(CK_MECHANISM_TYPE) <= a->len; i += sizeof(CK_MECHANISM_TYPE)) {
        CK_MECHANISM_TYPE m;
        memcpy(&m, a->value + i, sizeof(m));
        if (m == mech)
            return true;
    }
    return false;
}

size_t mock_key_sig_len(size_t i)
{
    return mock.objects[i].kind == MOCK_KEY_RSA ? mbedtls_pk_get_len(&rsa_pk) : 2 * MOCK_EC_COORD;
}

static mbedtls_md_type_t md_of(CK_MECHANISM_TYPE hash)
{
    switch (hash) {
    case CKM_SHA256: return MBEDTLS_MD_SHA256;
    case CKM_SHA384: return MBEDTLS_MD_SHA384;
    case CKM_SHA512: return MBEDTLS_MD_SHA512;
    }
    return MBEDTLS_MD_NONE;
}

static CK_RV sign_ec(mbedtls_ecp_keypair *kp, const uint8_t *data, size_t len, uint8_t *sig)
{
    mbedtls_mpi r, s;
    CK_RV rv = CKR_GENERAL_ERROR;

    /* Strict on purpose: a P-256 token gets at most 32 bytes, so a longer digest proves that
     * the caller forgot to truncate it. */
    if (len == 0 || len > MOCK_EC_COORD)
        return CKR_DATA_LEN_RANGE;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecdsa_sign(&kp->grp, &r, &s, &kp->d, data, len, mock_random, NULL) == 0 &&
        mbedtls_mpi_write_binary(&r, sig, MOCK_EC_COORD) == 0 &&
        mbedtls_mpi_write_binary(&s, sig + MOCK_EC_COORD, MOCK_EC_COORD) == 0)
        rv = CKR_OK;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rv;
}

CK_RV mock_key_sign(size_t i, CK_MECHANISM_TYPE mech, CK_MECHANISM_TYPE pss_hash,
                    unsigned long pss_salt, const uint8_t *data, size_t len, uint8_t *sig,
                    size_t *sig_len)
{
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(rsa_pk);
    size_t need = mock_key_sig_len(i);
    int r;

    if (*sig_len < need)
        return CKR_BUFFER_TOO_SMALL;
    *sig_len = need;
    if (mock.objects[i].kind != MOCK_KEY_RSA)
        return sign_ec(&ec_keys[mock.objects[i].kind == MOCK_KEY_EC ? 0 : 1], data, len, sig);
    if (mech == CKM_RSA_PKCS) {
        if (len + 11 > need)
            return CKR_DATA_LEN_RANGE;
        r = mbedtls_rsa_rsassa_pkcs1_v15_sign(rsa, mock_random, NULL, MBEDTLS_RSA_PRIVATE,
                                              MBEDTLS_MD_NONE, (unsigned)len, data, sig);
        return r == 0 ? CKR_OK : CKR_FUNCTION_FAILED;
    }
    /* CKM_RSA_PKCS_PSS signs a digest of the parameters' hash. */
    mbedtls_md_type_t md = md_of(pss_hash);
    if (md == MBEDTLS_MD_NONE || len != mbedtls_md_get_size(mbedtls_md_info_from_type(md)))
        return CKR_DATA_LEN_RANGE;
    mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md);
    r = mbedtls_rsa_rsassa_pss_sign_ext(rsa, mock_random, NULL, md, (unsigned)len, data,
                                        (int)pss_salt, sig);
    mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V15, MBEDTLS_MD_NONE);
    return r == 0 ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV mock_C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                                      CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    const struct mock_object *o;
    CK_RV rv = CKR_OK;
    long i;

    MOCK_ENTER(C_GetAttributeValue);
    if (mock_session_get(h) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if ((i = mock_object_index(obj)) < 0)
        MOCK_RETURN(CKR_OBJECT_HANDLE_INVALID);
    o = mock_object_at((size_t)i);
    for (CK_ULONG k = 0; k < n; k++) {
        const struct mock_attr *a = mock_object_attr(o, tmpl[k].type);
        if (a == NULL) {
            tmpl[k].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (tmpl[k].pValue == NULL) {
            tmpl[k].ulValueLen = a->len;
        } else if (tmpl[k].ulValueLen < a->len) {
            tmpl[k].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            memcpy(tmpl[k].pValue, a->value, a->len);
            tmpl[k].ulValueLen = a->len;
        }
    }
    MOCK_RETURN(rv);
}

CK_RV mock_C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    struct mock_session *s;

    MOCK_ENTER(C_FindObjectsInit);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if (s->find_active)
        MOCK_RETURN(CKR_OPERATION_ACTIVE);
    s->nfound = s->findpos = 0;
    for (size_t i = 0; i < MOCK_MAX_OBJECTS; i++) {
        const struct mock_object *o = mock_object_at(i);
        if (mock_object_visible(o) && mock_object_matches(o, tmpl, n))
            s->found[s->nfound++] = i;
    }
    s->find_active = true;
    MOCK_RETURN(CKR_OK);
}

CK_RV mock_C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                                CK_ULONG_PTR count)
{
    struct mock_session *s;

    MOCK_ENTER(C_FindObjects);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if (!s->find_active)
        MOCK_RETURN(CKR_OPERATION_NOT_INITIALIZED);
    *count = 0;
    while (*count < max && s->findpos < s->nfound)
        out[(*count)++] = mock_object_handle(s->found[s->findpos++]);
    MOCK_RETURN(CKR_OK);
}

CK_RV mock_C_FindObjectsFinal(CK_SESSION_HANDLE h)
{
    struct mock_session *s;

    MOCK_ENTER(C_FindObjectsFinal);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if (!s->find_active)
        MOCK_RETURN(CKR_OPERATION_NOT_INITIALIZED);
    s->find_active = false;
    MOCK_RETURN(CKR_OK);
}
