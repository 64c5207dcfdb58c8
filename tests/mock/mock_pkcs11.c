/* Mock PKCS#11 module: one slot with one token ("mock") for fault injection (README.md).
 * The entry points for the library, slot/token, sessions and login, and the function list. */
#include "mock_internal.h"

#include <stdio.h>
#include <string.h>

static void pad(unsigned char *dst, size_t size, const char *s)
{
    size_t n = strlen(s);
    memset(dst, ' ', size);
    memcpy(dst, s, n < size ? n : size);
}

struct mock_session *mock_session_get(CK_SESSION_HANDLE h)
{
    if (h == 0)
        return NULL;
    for (size_t i = 0; i < MOCK_MAX_SESSIONS; i++)
        if (mock.sessions[i].handle == h)
            return &mock.sessions[i];
    return NULL;
}

size_t mock_session_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < MOCK_MAX_SESSIONS; i++)
        n += mock.sessions[i].handle != 0;
    return n;
}

/* Closing the application's last session ends its login (PKCS#11 v2.40 section 5.6). */
void mock_session_close(struct mock_session *s)
{
    memset(s, 0, sizeof(*s));
    if (mock_session_count() == 0)
        mock.logged_in = false;
}

void mock_sessions_close_all(void)
{
    memset(mock.sessions, 0, sizeof(mock.sessions));
    mock.logged_in = false;
}

static CK_RV slot_check(CK_SLOT_ID slot, bool need_token)
{
    if (slot != MOCK_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (need_token && mock.cfg.no_token)
        return CKR_TOKEN_NOT_PRESENT;
    return CKR_OK;
}

static CK_RV mock_C_Initialize(CK_VOID_PTR args)
{
    CK_C_INITIALIZE_ARGS *ia = args;
    CK_RV rv;

    mock_lock();
    mock_count(MOCK_C_Initialize);
    if (mock.initialized)
        MOCK_RETURN(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    if (ia != NULL && (ia->flags & CKF_OS_LOCKING_OK))
        mock.init_os_locking++;
    /* Read at every C_Initialize, so a test can change the token between module reloads. */
    mock_read_config(&mock.cfg);
    memset(mock.sessions, 0, sizeof(mock.sessions));
    mock.logged_in = false;
    /* A token that another application already gave wrong PINs (its counter survives us). */
    mock.pin_failures = mock.cfg.pin_failures;
    mock_arm_fault();
    if ((rv = mock_keys_init()) != CKR_OK) {
        mock_keys_free();
        MOCK_RETURN(rv);
    }
    mock.initialized = true;
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_Finalize(CK_VOID_PTR reserved)
{
    MOCK_ENTER(C_Finalize);
    if (reserved != NULL)
        MOCK_RETURN(CKR_ARGUMENTS_BAD);
    mock_sessions_close_all();
    mock_keys_free();
    mock.initialized = false;
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_GetInfo(CK_INFO_PTR info)
{
    MOCK_ENTER(C_GetInfo);
    memset(info, 0, sizeof(*info));
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    pad(info->manufacturerID, sizeof(info->manufacturerID), "tedge-hsm tests");
    pad(info->libraryDescription, sizeof(info->libraryDescription), "tedge-hsm mock module");
    info->libraryVersion.major = 1;
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_ULONG n;

    MOCK_ENTER(C_GetSlotList);
    n = (token_present && mock.cfg.no_token) ? 0 : 1;
    if (list != NULL) {
        if (*count < n) {
            *count = n;
            MOCK_RETURN(CKR_BUFFER_TOO_SMALL);
        }
        if (n > 0)
            list[0] = MOCK_SLOT_ID;
    }
    *count = n;
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    MOCK_ENTER(C_GetSlotInfo);
    if (slot != MOCK_SLOT_ID)
        MOCK_RETURN(CKR_SLOT_ID_INVALID);
    memset(info, 0, sizeof(*info));
    pad(info->slotDescription, sizeof(info->slotDescription), "mock slot");
    pad(info->manufacturerID, sizeof(info->manufacturerID), "tedge-hsm tests");
    info->flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT | (mock.cfg.no_token ? 0 : CKF_TOKEN_PRESENT);
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv;

    MOCK_ENTER(C_GetTokenInfo);
    if ((rv = slot_check(slot, true)) != CKR_OK)
        MOCK_RETURN(rv);
    memset(info, 0, sizeof(*info));
    pad(info->label, sizeof(info->label), "mock");
    pad(info->manufacturerID, sizeof(info->manufacturerID), "tedge-hsm tests");
    pad(info->model, sizeof(info->model), "mock");
    pad(info->serialNumber, sizeof(info->serialNumber), "MOCK0001");
    info->flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
    if (!mock.cfg.no_login)
        info->flags |= CKF_LOGIN_REQUIRED;
    if (mock.pin_failures >= 1)
        info->flags |= CKF_USER_PIN_COUNT_LOW;
    if (mock.pin_failures == MOCK_PIN_LOCK_AFTER - 1)
        info->flags |= CKF_USER_PIN_FINAL_TRY;
    if (mock.pin_failures >= MOCK_PIN_LOCK_AFTER)
        info->flags |= CKF_USER_PIN_LOCKED;
    info->ulMaxSessionCount = MOCK_MAX_SESSIONS;
    info->ulSessionCount = mock_session_count();
    info->ulMaxPinLen = MOCK_PIN_MAX;
    info->ulMinPinLen = 4;
    MOCK_RETURN(CKR_OK);
}

static const CK_MECHANISM_TYPE mechanisms[] = {CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS};

static CK_RV mock_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                     CK_ULONG_PTR count)
{
    CK_ULONG n = mock.cfg.no_pss ? 2 : 3;
    CK_RV rv;

    MOCK_ENTER(C_GetMechanismList);
    if ((rv = slot_check(slot, true)) != CKR_OK)
        MOCK_RETURN(rv);
    if (list != NULL) {
        if (*count < n) {
            *count = n;
            MOCK_RETURN(CKR_BUFFER_TOO_SMALL);
        }
        memcpy(list, mechanisms, n * sizeof(list[0]));
    }
    *count = n;
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                     CK_MECHANISM_INFO_PTR info)
{
    CK_RV rv;

    MOCK_ENTER(C_GetMechanismInfo);
    if ((rv = slot_check(slot, true)) != CKR_OK)
        MOCK_RETURN(rv);
    memset(info, 0, sizeof(*info));
    if (type == CKM_ECDSA) {
        info->ulMinKeySize = info->ulMaxKeySize = 256;
        info->flags = CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE;
    } else if (type == CKM_RSA_PKCS || (type == CKM_RSA_PKCS_PSS && !mock.cfg.no_pss)) {
        info->ulMinKeySize = info->ulMaxKeySize = 2048;
        info->flags = CKF_SIGN | CKF_VERIFY;
    } else {
        MOCK_RETURN(CKR_MECHANISM_INVALID);
    }
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app,
                                CK_NOTIFY notify, CK_SESSION_HANDLE_PTR out)
{
    CK_RV rv;

    (void)app;
    (void)notify;
    MOCK_ENTER(C_OpenSession);
    if ((rv = slot_check(slot, true)) != CKR_OK)
        MOCK_RETURN(rv);
    if (!(flags & CKF_SERIAL_SESSION))
        MOCK_RETURN(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    for (size_t i = 0; i < MOCK_MAX_SESSIONS; i++) {
        if (mock.sessions[i].handle == 0) {
            memset(&mock.sessions[i], 0, sizeof(mock.sessions[i]));
            mock.sessions[i].handle = ++mock.next_session;
            mock.sessions[i].flags = flags;
            *out = mock.sessions[i].handle;
            MOCK_RETURN(CKR_OK);
        }
    }
    MOCK_RETURN(CKR_SESSION_COUNT);
}

static CK_RV mock_C_CloseSession(CK_SESSION_HANDLE h)
{
    struct mock_session *s;

    MOCK_ENTER(C_CloseSession);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    mock_session_close(s);
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_CloseAllSessions(CK_SLOT_ID slot)
{
    MOCK_ENTER(C_CloseAllSessions);
    if (slot != MOCK_SLOT_ID)
        MOCK_RETURN(CKR_SLOT_ID_INVALID);
    mock_sessions_close_all();
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
    struct mock_session *s;
    bool rw;

    MOCK_ENTER(C_GetSessionInfo);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    rw = (s->flags & CKF_RW_SESSION) != 0;
    memset(info, 0, sizeof(*info));
    info->slotID = MOCK_SLOT_ID;
    info->flags = s->flags;
    if (mock.logged_in)
        info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    else
        info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
    MOCK_RETURN(CKR_OK);
}

static bool pin_ok(CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    return pin != NULL && len == strlen(mock.cfg.pin) && memcmp(pin, mock.cfg.pin, len) == 0;
}

static CK_RV mock_C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    struct mock_session *s;

    MOCK_ENTER(C_Login);
    if ((s = mock_session_get(h)) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if (user == CKU_CONTEXT_SPECIFIC) {
        mock.login_context++;
        if (!s->sign_active || !mock.objects[s->key_index].always_auth)
            MOCK_RETURN(CKR_OPERATION_NOT_INITIALIZED);
        if (!pin_ok(pin, len)) {
            mock.login_failed++;
            MOCK_RETURN(CKR_PIN_INCORRECT);
        }
        s->context_login = true;
        MOCK_RETURN(CKR_OK);
    }
    if (user != CKU_USER)
        MOCK_RETURN(CKR_USER_TYPE_INVALID);
    mock.login_user++;
    if (mock.pin_failures >= MOCK_PIN_LOCK_AFTER)
        MOCK_RETURN(CKR_PIN_LOCKED);
    /* Like real tokens: login state is per application, and the PIN is not even looked at. */
    if (mock.logged_in)
        MOCK_RETURN(CKR_USER_ALREADY_LOGGED_IN);
    if (!pin_ok(pin, len)) {
        mock.login_failed++;
        mock.pin_failures++;
        MOCK_RETURN(mock.pin_failures >= MOCK_PIN_LOCK_AFTER ? CKR_PIN_LOCKED
                                                                : CKR_PIN_INCORRECT);
    }
    mock.pin_failures = 0;
    mock.logged_in = true;
    MOCK_RETURN(CKR_OK);
}

static CK_RV mock_C_Logout(CK_SESSION_HANDLE h)
{
    MOCK_ENTER(C_Logout);
    if (mock_session_get(h) == NULL)
        MOCK_RETURN(CKR_SESSION_HANDLE_INVALID);
    if (!mock.logged_in)
        MOCK_RETURN(CKR_USER_NOT_LOGGED_IN);
    mock.logged_in = false;
    MOCK_RETURN(CKR_OK);
}

static CK_FUNCTION_LIST function_list = {
    .version = {2, 40},
    .C_Initialize = mock_C_Initialize,
    .C_Finalize = mock_C_Finalize,
    .C_GetInfo = mock_C_GetInfo,
    .C_GetSlotList = mock_C_GetSlotList,
    .C_GetSlotInfo = mock_C_GetSlotInfo,
    .C_GetTokenInfo = mock_C_GetTokenInfo,
    .C_GetMechanismList = mock_C_GetMechanismList,
    .C_GetMechanismInfo = mock_C_GetMechanismInfo,
    .C_OpenSession = mock_C_OpenSession,
    .C_CloseSession = mock_C_CloseSession,
    .C_CloseAllSessions = mock_C_CloseAllSessions,
    .C_GetSessionInfo = mock_C_GetSessionInfo,
    .C_Login = mock_C_Login,
    .C_Logout = mock_C_Logout,
    .C_GetAttributeValue = mock_C_GetAttributeValue,
    .C_FindObjectsInit = mock_C_FindObjectsInit,
    .C_FindObjects = mock_C_FindObjects,
    .C_FindObjectsFinal = mock_C_FindObjectsFinal,
    .C_SignInit = mock_C_SignInit,
    .C_Sign = mock_C_Sign,
};

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    mock_lock();
    if (function_list.C_GetFunctionList == NULL) {
        function_list.C_GetFunctionList = C_GetFunctionList;
        mock_fill_unsupported(&function_list);
    }
    mock_unlock();
    *out = &function_list;
    return CKR_OK;
}
