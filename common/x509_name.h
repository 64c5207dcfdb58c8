/* The subject Common Name of an X.509 certificate (the device id), read with one set of checks
 * for every caller: the config model (device.id), the bridge, `tedge cert` and `tedge connect`. */
#ifndef TEDGE_COMMON_X509_NAME_H
#define TEDGE_COMMON_X509_NAME_H

#include <stddef.h>

#include <mbedtls/x509_crt.h>

/* Longest CN taken as a device id: it becomes the cloud MQTT client id and part of topics;
 * upstream makes ids of at most 64 characters, 255 leaves room for any issued certificate. */
#define X509_NAME_CN_MAX 255
/* Largest certificate file read: a device certificate chain is a few KiB. */
#define X509_NAME_FILE_MAX (256 * 1024)

/* The first CN attribute of name, NUL-terminated in out. TE_ERR_NOT_FOUND when name has no CN,
 * or when its first CN is empty, longer than X509_NAME_CN_MAX (or than out holds) or contains a
 * control character (NUL included): such a name is no usable device id. */
int x509_name_cn(const mbedtls_x509_name *name, char *out, size_t size);

/* Parses the certificate file at path (PEM or DER) into crt, which the caller initialised and
 * frees. TE_ERR_NOT_FOUND when path cannot be looked up, TE_ERR_PERMISSION when it cannot be
 * read (*detail is errno for both); TE_ERR_MALFORMED when it is not a regular file, is larger
 * than X509_NAME_FILE_MAX or holds no certificate (*detail is mbedTLS's error, or 0 when
 * mbedTLS was not asked). detail may be NULL. */
int x509_crt_load_file(mbedtls_x509_crt *crt, const char *path, int *detail);

/* The CN of the first certificate in path (x509_name_cn's rules), malloc'd into *out.
 * x509_crt_load_file's errors and *detail, TE_ERR_INVALID when the certificate has no usable
 * CN, TE_ERR_NOMEM. Callers word the message: each says what the file is for. */
int x509_file_cn(const char *path, char **out, int *detail);

#endif
