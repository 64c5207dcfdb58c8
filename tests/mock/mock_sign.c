/* Mock PKCS#11 module: signing entry points (C_SignInit, C_Sign with the PSS parameters and the
 * slow-token delay) and the fault injection of MOCK_P11_FAIL_* (README.md). */
#include "mock_internal.h"

#include <string.h>
#include <time.h>

/* A new fault setting counts calls from now on; the same setting seen again at a module
 * reload keeps counting (and does not fire again). */
void mock_arm_fault(void)
{
    const struct mock_config *c = &mock.cfg;

    if (c->fail_after == mock.armed_after && c->fail_times == mock.armed_times &&
        c->fail_rv == mock.armed_rv && c->fail_fn == mock.armed_fn)
        return;
    mock.armed_after = c->fail_after;
    mock.armed_times = c->fail_times;
    mock.armed_rv = c->fail_rv;
    mock.armed_fn = c->fail_fn;
    mock.fault_base = c->fail_fn == MOCK_C_Sign ? mock.sign_attempts : mock.signinit_attempts;
    mock.faults_left = c->fail_times;
}

/* Applies an injected fault the way the real event would leave the token, and says whether
 * this call should fail. */
static bool fault_fires(enum mock_fn fn, struct mock_session *s, unsigned long attempt)
{
    CK_RV rv = mock.cfg.fail_rv;

    if (mock.cfg.fail_after == 0 || fn != mock.cfg.fail_fn ||
        attempt - mock.fault_base < mock.cfg.fail_after || mock.faults_left == 0)
        return false;
    mock.faults_left--;
    if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_ERROR ||
        rv == CKR_SLOT_ID_INVALID) {
        mock_sessions_close_all(); /* unplugged and plugged back in */
    } else if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) {
        mock_session_close(s);
    } else if (rv == CKR_USER_NOT_LOGGED_IN) {
        mock.logged_in = false;
    } else if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
        mock.handle_base += MOCK_HANDLE_STEP;
    }
    return true;
}

static CK_RV pss_params(struct mock_session *s, CK_MECHANISM_PTR mech)
{
    const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
    CK_RSA_PKCS_MGF_TYPE want;

    if (p == NULL || mech->ulParameterLen != sizeof(*p))
        return CKR_MECHANISM_PARAM_INVALID;
    want = p->hashAlg == CKM_SHA256 ? CKG_MGF1_SHA256
         : p->hashAlg == CKM_SHA384 ? CKG_MGF1_SHA384
         : p->hashAlg == CKM_SHA512 ? CKG_MGF1_SHA512 : 0;
    if (want == 0 || p->mgf != want)
        return CKR_MECHANISM_PARAM_INVALID;
    s->pss_hash = p->hashAlg;
    s->pss_salt = p->sLen;
    return CKR_OK;
}

CK_RV mock_C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    struct mock_session *s;
    const struct mock_object *o;
    CK_RV rv;
    long i;

    MOCK_ENTER(C_SignInit);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if (s->sign_active)
        MOCK_RETURN(CKR_OPERATION_ACTIVE);
    if (fault_fires(MOCK_C_SignInit, s, ++mock.signinit_attempts))
        MOCK_RETURN(mock.cfg.fail_rv);
    if (!mock.cfg.no_login && !mock.logged_in)
        MOCK_RETURN(CKR_USER_NOT_LOGGED_IN);
    if ((i = mock_object_index(key)) < 0)
        MOCK_RETURN(CKR_KEY_HANDLE_INVALID);
    o = mock_object_at((size_t)i);
    if (o->cls != CKO_PRIVATE_KEY)
        MOCK_RETURN(CKR_KEY_TYPE_INCONSISTENT);
    if (mech == NULL || !mock_key_allows(o, mech->mechanism))
        MOCK_RETURN(CKR_MECHANISM_INVALID);
    if (mech->mechanism == CKM_ECDSA) {
        if (o->kind == MOCK_KEY_RSA)
            MOCK_RETURN(CKR_KEY_TYPE_INCONSISTENT);
    } else if (mech->mechanism == CKM_RSA_PKCS ||
               (mech->mechanism == CKM_RSA_PKCS_PSS && !mock.cfg.no_pss)) {
        if (o->kind != MOCK_KEY_RSA)
            MOCK_RETURN(CKR_KEY_TYPE_INCONSISTENT);
        if (mech->mechanism == CKM_RSA_PKCS_PSS && (rv = pss_params(s, mech)) != CKR_OK)
            MOCK_RETURN(rv);
    } else {
        MOCK_RETURN(CKR_MECHANISM_INVALID);
    }
    s->sign_active = true;
    s->mech = mech->mechanism;
    s->key_index = (size_t)i;
    s->context_login = false;
    MOCK_RETURN(CKR_OK);
}

CK_RV mock_C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                         CK_ULONG_PTR sig_len)
{
    struct mock_session *s;
    size_t cap, need;
    CK_RV rv;

    MOCK_ENTER(C_Sign);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if (!s->sign_active)
        MOCK_RETURN(CKR_OPERATION_NOT_INITIALIZED);
    need = mock_key_sig_len(s->key_index);
    if (sig == NULL) {
        *sig_len = need;
        MOCK_RETURN(CKR_OK);
    }
    if (*sig_len < need) {
        *sig_len = need;
        MOCK_RETURN(CKR_BUFFER_TOO_SMALL);
    }
    if (s->in_use)
        mock.session_conflicts++;
    if (fault_fires(MOCK_C_Sign, s, ++mock.sign_attempts)) {
        s->sign_active = false;
        MOCK_RETURN(mock.cfg.fail_rv);
    }
    if (mock.objects[s->key_index].always_auth && !s->context_login) {
        s->sign_active = false;
        MOCK_RETURN(CKR_USER_NOT_LOGGED_IN);
    }
    if (mock.cfg.sign_delay_ms > 0) {
        /* A slow token: the wait happens outside the lock so other sessions sign meanwhile. */
        struct timespec ts = {mock.cfg.sign_delay_ms / 1000,
                              (long)(mock.cfg.sign_delay_ms % 1000) * 1000000L};
        CK_SESSION_HANDLE keep = s->handle;
        s->in_use = true;
        if (++mock.concurrent_signs > mock.max_concurrent_signs)
            mock.max_concurrent_signs = mock.concurrent_signs;
        mock_unlock();
        nanosleep(&ts, NULL);
        mock_lock();
        mock.concurrent_signs--;
        if ((s = mock_session_get(keep)) == NULL)
            MOCK_RETURN(CKR_SESSION_CLOSED);
        s->in_use = false;
    }
    cap = *sig_len;
    mock.last_sign_len = len;
    rv = mock_key_sign(s->key_index, s->mech, s->pss_hash, s->pss_salt, data, len, sig, &cap);
    if (rv != CKR_BUFFER_TOO_SMALL)
        s->sign_active = false;
    *sig_len = cap;
    MOCK_RETURN(rv);
}
