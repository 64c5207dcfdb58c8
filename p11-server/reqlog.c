/* The one log line per request (op, peer, URI without its PIN, result, duration) and the URI
 * redaction it relies on (common/p11 owns the rules): a pin-value never reaches a log. */
#include "p11-server/server.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/p11.h"

void srv_uri_redact(const char *uri, char *out, size_t cap)
{
    if (cap == 0)
        return;
    if (uri == NULL || uri[0] == '\0') {
        snprintf(out, cap, "-");
        return;
    }
    p11_uri_redact(uri, out, cap);
}

void srv_log_request(const char *op, const struct srv_peer *peer, const char *uri, int result,
                     int64_t start_ms)
{
    char safe_uri[1100];

    srv_uri_redact(uri, safe_uri, sizeof(safe_uri));
    /* Refusals and failures are worth a warning; a successful request is routine. */
    log_emit(result == TE_OK ? LOG_LVL_INFO : LOG_LVL_WARN, __func__,
             "op=%s peer_pid=%ld peer_uid=%lu uri=%s result=%s duration_ms=%ld", op,
             (long)peer->pid, (unsigned long)peer->uid, safe_uri,
             result == TE_OK ? "ok" : te_errcode(result), (long)(te_monotonic_ms() - start_ms));
}
