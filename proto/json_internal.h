/* Internal to proto/: strict JSON parsing of peer bytes, bounded typed member access, base64
 * and printing into a bounded buffer, shared by the request and response codecs. */
#ifndef TEDGE_PROTO_JSON_INTERNAL_H
#define TEDGE_PROTO_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct buf;
struct te_error;

#define PROTO_JSON_MAX_DEPTH 8     /* deepest message: reply > result > keys > key > schemes */
#define PROTO_JSON_MAX_MEMBERS 64  /* members per object; keeps the duplicate check cheap */
#define PROTO_JSON_NAME_SHOWN 40   /* bytes of a peer's member name quoted in an error */
#define PROTO_JSON_BINARY_MAX 1024 /* the largest binary member: a signature (PROTO_SIG_MAX) */
#define PROTO_JSON_BASE64_TEXT_MAX (((PROTO_JSON_BINARY_MAX + 2) / 3) * 4) /* its base64 text */
#define PROTO_JSON_UINT_MAX 9007199254740991ULL /* 2^53 - 1: integers exact in a double */

/* Parses a frame body that must be exactly one JSON object: valid UTF-8, no NUL (raw or
 * \u0000), no control characters, RFC 8259 numbers, nesting <= PROTO_JSON_MAX_DEPTH and
 * nothing but whitespace after it. TE_ERR_MALFORMED otherwise. Free with proto_json_free(). */
int proto_json_parse(const uint8_t *body, size_t len, cJSON **out, struct te_error *err);

/* Wipes every key and string value (they may be PINs), then deletes. NULL is a no-op. */
void proto_json_free(cJSON *root);

/* Object checks: at most PROTO_JSON_MAX_MEMBERS members and no name twice (duplicates are
 * rejected, not "last wins"). where names the object in the message ("request", "result"). */
int proto_json_check_members(const cJSON *obj, const char *where, struct te_error *err);

/* Copies a peer's member name for an error message: printable ASCII, cut to
 * PROTO_JSON_NAME_SHOWN bytes. */
void proto_json_shown_name(const char *name, char *out, size_t out_size);

/* Typed getters: item may be NULL (missing: TE_ERR_PROTOCOL). name is for the message.
 * Strings longer than max_len bytes give TE_ERR_TOO_LARGE; dst holds max_len + 1 bytes. */
int proto_json_get_string(const cJSON *item, const char *name, char *dst, size_t max_len,
                          struct te_error *err);
/* A non-negative integer <= max (an integral JSON number). */
int proto_json_get_uint(const cJSON *item, const char *name, uint64_t max, uint64_t *out,
                        struct te_error *err);
int proto_json_get_bool(const cJSON *item, const char *name, bool *out, struct te_error *err);
/* Canonical base64 (RFC 4648 alphabet, padded, no whitespace) decoding to at most cap bytes. */
int proto_json_get_base64(const cJSON *item, const char *name, uint8_t *dst, size_t cap,
                          size_t *out_len, struct te_error *err);

/* Adders for encoders: 0 or TE_ERR_NOMEM. */
int proto_json_add_string(cJSON *obj, const char *name, const char *value);
int proto_json_add_uint(cJSON *obj, const char *name, uint64_t value);
int proto_json_add_bool(cJSON *obj, const char *name, bool value);
int proto_json_add_base64(cJSON *obj, const char *name, const uint8_t *data, size_t len);

/* Prints root compactly into out (replaced); TE_ERR_TOO_LARGE past min(buf_max, frame max). */
int proto_json_print(const cJSON *root, struct buf *out, struct te_error *err);

#endif
