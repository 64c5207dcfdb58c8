/* libFuzzer target for the protocol decoders: raw bytes -> proto_decode_request and
 * proto_decode_response; whatever decodes must re-encode and decode to the same struct. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/msg.h"

#define CHECK(expr)                                                             \
    do {                                                                        \
        if (!(expr)) {                                                          \
            fprintf(stderr, "fuzz_proto_decode: %s failed at line %d\n", #expr, \
                    __LINE__);                                                  \
            abort();                                                            \
        }                                                                       \
    } while (0)

static void check_request(const uint8_t *data, size_t size, struct buf *b)
{
    struct proto_request req, again;
    struct te_error err = {0}, err2 = {0};
    int r = proto_decode_request(data, size, &req, &err);

    if (r != TE_OK) {
        /* every rejection has a message and can be answered */
        CHECK(err.code == r && err.msg[0] != '\0');
        CHECK(r == TE_ERR_MALFORMED || r == TE_ERR_PROTOCOL || r == TE_ERR_TOO_LARGE ||
              r == TE_ERR_INVALID);
        CHECK(proto_encode_error(b, &req, &err, NULL, &err2) == TE_OK);
        proto_request_free(&req);
        return;
    }
    CHECK(req.op < PROTO_OP_COUNT);
    CHECK(proto_encode_request(b, &req, &err2) == TE_OK);
    CHECK(proto_decode_request(buf_data(b), buf_len(b), &again, &err2) == TE_OK);
    /* the id may be absent in the input; everything else must survive unchanged */
    CHECK(memcmp(&again, &req, sizeof(req)) == 0);
    proto_request_free(&again);
    proto_request_free(&req);
}

static bool same_response(const struct proto_response *a, const struct proto_response *b)
{
    static struct proto_response x, y;
    if (a->token_count != b->token_count || a->key_count != b->key_count)
        return false;
    if (a->token_count && memcmp(a->tokens, b->tokens, a->token_count * sizeof(*a->tokens)))
        return false;
    if (a->key_count && memcmp(a->keys, b->keys, a->key_count * sizeof(*a->keys)))
        return false;
    x = *a;
    y = *b;
    x.tokens = y.tokens = NULL;
    x.keys = y.keys = NULL;
    return memcmp(&x, &y, sizeof(x)) == 0;
}

static void check_response(const uint8_t *data, size_t size, struct buf *b)
{
    static struct proto_response resp, again;
    struct te_error err = {0};
    enum proto_op op = (enum proto_op)(size % PROTO_OP_COUNT);
    int r = proto_decode_response(data, size, op, &resp, &err);

    if (r != TE_OK) {
        CHECK(err.code == r && err.msg[0] != '\0');
        proto_response_free(&resp);
        return;
    }
    r = proto_encode_response(b, &resp, &err);
    /* an unknown key type/curve or a reply that grows past the frame cannot be re-sent */
    CHECK(r == TE_OK || r == TE_ERR_INVALID || r == TE_ERR_TOO_LARGE);
    if (r == TE_OK) {
        CHECK(proto_decode_response(buf_data(b), buf_len(b), op, &again, &err) == TE_OK);
        CHECK(same_response(&resp, &again));
        proto_response_free(&again);
    }
    proto_response_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct buf *b;

    if (b == NULL && (b = buf_new(64 * 1024)) == NULL)
        abort();
    check_request(data, size, b);
    check_response(data, size, b);
    return 0;
}
