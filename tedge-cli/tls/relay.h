/* The relay: a private Unix socket, served by one thread in this process, that turns each
 * accepted connection (from our own pid only) into one mbedTLS session to the cloud. */
#ifndef TEDGE_CLI_RELAY_H
#define TEDGE_CLI_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "tedge-cli/tls/tls_client.h"

/* libmosquitto only does TLS through OpenSSL. So MQTT to the cloud is libmosquitto connected
 * to relay_socket_path() with mosquitto_connect(m, path, 0, keepalive) and no
 * mosquitto_tls_set(): libmosquitto keeps all of MQTT (QoS, keepalive, reconnect), the relay
 * does all of TLS. A new MQTT connection is a new handshake (one signature); when the cloud
 * cannot be reached the relay closes the Unix connection and libmosquitto retries by itself. */
struct relay;

struct relay_stats {
    uint64_t sessions;          /* TLS sessions opened */
    uint64_t failures;          /* TLS sessions that could not be opened */
    uint64_t rejected_peers;    /* connections from other processes, closed at once */
    uint64_t bytes_up;          /* Unix -> cloud */
    uint64_t bytes_down;        /* cloud -> Unix */
};

/* Creates a fresh 0700 directory under runtime_dir (NULL: $XDG_RUNTIME_DIR, else /tmp), a 0600
 * socket in it, and starts the relay thread. tls is borrowed and must outlive the relay. */
int relay_start(struct tls_client *tls, const char *runtime_dir, struct relay **out,
                struct te_error *err);
/* Stops the thread (closing any session with close_notify), removes the socket and its
 * directory, frees. NULL is a no-op. */
void relay_stop(struct relay *r);

const char *relay_socket_path(const struct relay *r);
/* The error of the last cloud connection that failed, unless a later one succeeded: why
 * libmosquitto's connection was closed. Returns false when there is none. */
bool relay_last_error(struct relay *r, struct te_error *out);
void relay_get_stats(struct relay *r, struct relay_stats *out);

#endif
