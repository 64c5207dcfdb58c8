/* Mock PKCS#11 module: every entry point the mock does not implement answers
 * CKR_FUNCTION_NOT_SUPPORTED (counted as C_Unsupported), so no function pointer is NULL. */
#include "mock_internal.h"

/* The stubs take the real parameter lists and ignore them. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

static CK_RV unsupported(void)
{
    mock_lock();
    mock_count(MOCK_C_Unsupported);
    mock_write_stats();
    mock_unlock();
    return CKR_FUNCTION_NOT_SUPPORTED;
}

#define STUB(name, params) static CK_RV stub_##name params { return unsupported(); }

typedef CK_SESSION_HANDLE S;
typedef CK_OBJECT_HANDLE O;
typedef CK_BYTE_PTR B;
typedef CK_ULONG L;
typedef CK_ULONG_PTR LP;

STUB(C_InitToken, (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, L len, CK_UTF8CHAR_PTR label))
STUB(C_InitPIN, (S s, CK_UTF8CHAR_PTR pin, L len))
STUB(C_SetPIN, (S s, CK_UTF8CHAR_PTR old, L old_len, CK_UTF8CHAR_PTR new_pin, L new_len))
STUB(C_GetOperationState, (S s, B state, LP len))
STUB(C_SetOperationState, (S s, B state, L len, O enc, O auth))
STUB(C_CreateObject, (S s, CK_ATTRIBUTE_PTR t, L n, CK_OBJECT_HANDLE_PTR o))
STUB(C_CopyObject, (S s, O o, CK_ATTRIBUTE_PTR t, L n, CK_OBJECT_HANDLE_PTR out))
STUB(C_DestroyObject, (S s, O o))
STUB(C_GetObjectSize, (S s, O o, LP size))
STUB(C_SetAttributeValue, (S s, O o, CK_ATTRIBUTE_PTR t, L n))
STUB(C_EncryptInit, (S s, CK_MECHANISM_PTR m, O k))
STUB(C_Encrypt, (S s, B in, L in_len, B out, LP out_len))
STUB(C_EncryptUpdate, (S s, B in, L in_len, B out, LP out_len))
STUB(C_EncryptFinal, (S s, B out, LP out_len))
STUB(C_DecryptInit, (S s, CK_MECHANISM_PTR m, O k))
STUB(C_Decrypt, (S s, B in, L in_len, B out, LP out_len))
STUB(C_DecryptUpdate, (S s, B in, L in_len, B out, LP out_len))
STUB(C_DecryptFinal, (S s, B out, LP out_len))
STUB(C_DigestInit, (S s, CK_MECHANISM_PTR m))
STUB(C_Digest, (S s, B in, L in_len, B out, LP out_len))
STUB(C_DigestUpdate, (S s, B in, L in_len))
STUB(C_DigestKey, (S s, O k))
STUB(C_DigestFinal, (S s, B out, LP out_len))
STUB(C_SignUpdate, (S s, B in, L in_len))
STUB(C_SignFinal, (S s, B out, LP out_len))
STUB(C_SignRecoverInit, (S s, CK_MECHANISM_PTR m, O k))
STUB(C_SignRecover, (S s, B in, L in_len, B out, LP out_len))
STUB(C_VerifyInit, (S s, CK_MECHANISM_PTR m, O k))
STUB(C_Verify, (S s, B in, L in_len, B sig, L sig_len))
STUB(C_VerifyUpdate, (S s, B in, L in_len))
STUB(C_VerifyFinal, (S s, B sig, L sig_len))
STUB(C_VerifyRecoverInit, (S s, CK_MECHANISM_PTR m, O k))
STUB(C_VerifyRecover, (S s, B in, L in_len, B out, LP out_len))
STUB(C_DigestEncryptUpdate, (S s, B in, L in_len, B out, LP out_len))
STUB(C_DecryptDigestUpdate, (S s, B in, L in_len, B out, LP out_len))
STUB(C_SignEncryptUpdate, (S s, B in, L in_len, B out, LP out_len))
STUB(C_DecryptVerifyUpdate, (S s, B in, L in_len, B out, LP out_len))
STUB(C_GenerateKey, (S s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, L n, CK_OBJECT_HANDLE_PTR k))
STUB(C_GenerateKeyPair, (S s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt, L pn, CK_ATTRIBUTE_PTR kt,
                         L kn, CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv))
STUB(C_WrapKey, (S s, CK_MECHANISM_PTR m, O wk, O k, B out, LP out_len))
STUB(C_UnwrapKey, (S s, CK_MECHANISM_PTR m, O uk, B in, L in_len, CK_ATTRIBUTE_PTR t, L n,
                   CK_OBJECT_HANDLE_PTR k))
STUB(C_DeriveKey, (S s, CK_MECHANISM_PTR m, O base, CK_ATTRIBUTE_PTR t, L n,
                   CK_OBJECT_HANDLE_PTR k))
STUB(C_SeedRandom, (S s, B seed, L len))
STUB(C_GenerateRandom, (S s, B out, L len))
STUB(C_GetFunctionStatus, (S s))
STUB(C_CancelFunction, (S s))
STUB(C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved))

void mock_fill_unsupported(CK_FUNCTION_LIST *fl)
{
#define SET(name) fl->name = stub_##name
    SET(C_InitToken); SET(C_InitPIN); SET(C_SetPIN); SET(C_GetOperationState);
    SET(C_SetOperationState); SET(C_CreateObject); SET(C_CopyObject); SET(C_DestroyObject);
    SET(C_GetObjectSize); SET(C_SetAttributeValue); SET(C_EncryptInit); SET(C_Encrypt);
    SET(C_EncryptUpdate); SET(C_EncryptFinal); SET(C_DecryptInit); SET(C_Decrypt);
    SET(C_DecryptUpdate); SET(C_DecryptFinal); SET(C_DigestInit); SET(C_Digest);
    SET(C_DigestUpdate); SET(C_DigestKey); SET(C_DigestFinal); SET(C_SignUpdate);
    SET(C_SignFinal); SET(C_SignRecoverInit); SET(C_SignRecover); SET(C_VerifyInit);
    SET(C_Verify); SET(C_VerifyUpdate); SET(C_VerifyFinal); SET(C_VerifyRecoverInit);
    SET(C_VerifyRecover); SET(C_DigestEncryptUpdate); SET(C_DecryptDigestUpdate);
    SET(C_SignEncryptUpdate); SET(C_DecryptVerifyUpdate); SET(C_GenerateKey);
    SET(C_GenerateKeyPair); SET(C_WrapKey); SET(C_UnwrapKey); SET(C_DeriveKey);
    SET(C_SeedRandom); SET(C_GenerateRandom); SET(C_GetFunctionStatus); SET(C_CancelFunction);
    SET(C_WaitForSlotEvent);
#undef SET
}
