/* Internal to proto/: the "result" object of a successful reply, one shape per operation
 * (PROTOCOL.md). The envelope around it is in msg_response.c. */
#ifndef TEDGE_PROTO_RESULT_INTERNAL_H
#define TEDGE_PROTO_RESULT_INTERNAL_H

#include <cjson/cJSON.h>

struct proto_response;
struct te_error;

/* Adds resp->op's result members to the empty object result. TE_ERR_INVALID when a string is
 * over its limit or a value is out of range, TE_ERR_TOO_LARGE for lists over PROTO_LIST_MAX,
 * TE_ERR_NOMEM. */
int proto_result_encode(cJSON *result, const struct proto_response *resp, struct te_error *err);

/* Reads resp->op's result from the object result into resp (allocating tokens/keys).
 * Unknown members are ignored; missing or wrong-typed ones give TE_ERR_PROTOCOL. */
int proto_result_decode(const cJSON *result, struct proto_response *resp, struct te_error *err);

#endif
