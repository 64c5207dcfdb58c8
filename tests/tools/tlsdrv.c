/* Test driver for tedge-cli/tls (tests/integration/test_tls_relay.py): direct TLS handshakes, and
 * MQTT through libmosquitto -> relay -> mbedTLS with the device key held by a signer. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/pk.h>
#include <mosquitto.h>

#include "common/log.h"
#include "tedge-cli/key/signer.h"
#include "tedge-cli/tls/relay.h"
#include "tedge-cli/tls/tls_client.h"

#define DRV_DEFAULT_WAIT_S 30            /* per phase: connect, acknowledgements, echoes */
#define DRV_KEEPALIVE_S 60               /* MQTT keepalive towards the cloud broker */
#define DRV_MAX_PAYLOAD (16 * 1024 * 1024) /* --size upper bound */
#define DRV_MAX_COUNT 1000000            /* --count and handshakes upper bound */
#define DRV_POLL_MS 50                   /* how often waits re-check the relay's last error */
#define DRV_PEM_MAX 4096                 /* PEM of an RSA-4096 public key is ~800 bytes */

static const char usage[] =
    "usage: tlsdrv --host H --port P --ca CAFILE|DIR --cert CERT\n"
    "              (--key-file K | --module SO --uri URI [--pin PIN] |\n"
    "               --socket PATH [--uri URI] [--pin PIN])\n"
    "              [--server-name N] [--suite S[,S...]] [--timeout MS] [--wait S] [--verbose] CMD\n"
    "       tlsdrv (--key-file K | --module SO --uri URI [--pin PIN]) public-key\n"
    "commands:\n"
    "  public-key                   print the device key's public key (PEM)\n"
    "  handshake                    one direct TLS handshake; prints suite=, cv_hash=, signatures=\n"
    "  handshakes N                 N fresh connections; prints handshakes= and signatures=\n"
    "  publish TOPIC MSG            MQTT through the relay: [--count N] [--qos Q] [--size BYTES]\n"
    "                               [--echo] (subscribe to TOPIC and check every message comes back)\n"
    "                               [--hold] (print socket=, then connected, then wait for a line\n"
    "                               on stdin before publishing); prints acked=, received=, ...\n";

struct opts {
    struct tls_client_config tls;
    struct signer_config key;
    int wait_s;
    int count;
    int qos;
    long size;
    bool echo;
    bool hold;
};

struct mqtt_state {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool connected;
    int connects;
    int connack_rc;
    int acked;
    int subscribed;
    int received;
    int mismatched;
    const unsigned char *payload;
    size_t payload_len;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static void tls_stats_print(struct tls_client *c)
{
    struct tls_key_stats st;

    tls_client_key_stats(c, &st);
    printf("signatures=%lu\n", st.signatures);
    if (st.have_last_hash)
        printf("cv_hash=%s\n", sig_hash_name(st.last_hash));
}

/* The signer's public key as PEM, to make a certificate for a token key. */
static int cmd_public_key(struct signer *sig)
{
    struct te_error err = {0};
    mbedtls_pk_context pk;
    unsigned char pem[DRV_PEM_MAX];
    uint8_t *der = NULL;
    size_t der_len = 0;
    int ret = 1;

    mbedtls_pk_init(&pk);
    if (signer_public_key(sig, &der, &der_len, &err) != TE_OK) {
        fail("%s", te_error_message(&err));
        goto exit;
    }
    if (mbedtls_pk_parse_public_key(&pk, der, der_len) != 0 ||
        mbedtls_pk_write_pubkey_pem(&pk, pem, sizeof(pem)) != 0) {
        fail("The signer's public key cannot be encoded.");
        goto exit;
    }
    fputs((const char *)pem, stdout);
    ret = 0;
exit:
    mbedtls_pk_free(&pk);
    free(der);
    return ret;
}

/* ---- direct handshakes ------------------------------------------------------------------- */

static int cmd_handshakes(struct tls_client *c, long n, bool one)
{
    struct te_error err = {0};
    struct tls_session *s;

    for (long i = 0; i < n; i++) {
        if (tls_session_open(c, NULL, &s, &err) != TE_OK)
            return fail("%s", te_error_message(&err));
        if (one)
            printf("suite=%s\n", tls_session_suite(s));
        tls_session_close(s, true);
    }
    if (!one)
        printf("handshakes=%ld\n", n);
    tls_stats_print(c);
    return 0;
}

/* ---- MQTT through the relay -------------------------------------------------------------- */

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct mqtt_state *st = obj;
    (void)m;
    pthread_mutex_lock(&st->lock);
    st->connack_rc = rc;
    if (rc == 0) {
        st->connected = true;
        st->connects++;
    }
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    struct mqtt_state *st = obj;
    (void)m;
    (void)rc;
    pthread_mutex_lock(&st->lock);
    st->connected = false;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct mqtt_state *st = obj;
    (void)m;
    (void)mid;
    pthread_mutex_lock(&st->lock);
    st->acked++;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    struct mqtt_state *st = obj;
    (void)m;
    (void)mid;
    (void)n;
    (void)granted;
    pthread_mutex_lock(&st->lock);
    st->subscribed++;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct mqtt_state *st = obj;
    (void)m;
    pthread_mutex_lock(&st->lock);
    st->received++;
    if ((size_t)msg->payloadlen != st->payload_len ||
        memcmp(msg->payload, st->payload, st->payload_len) != 0)
        st->mismatched++;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

enum wait_for { W_CONNECTED, W_SUBSCRIBED, W_ACKED, W_RECEIVED };

static bool reached(const struct mqtt_state *st, enum wait_for what, int n)
{
    switch (what) {
    case W_CONNECTED: return st->connected;
    case W_SUBSCRIBED: return st->subscribed >= n;
    case W_ACKED: return st->acked >= n;
    case W_RECEIVED: return st->received >= n;
    }
    return false;
}

/* Waits for the condition; gives up early when the broker refused CONNECT or, before the
 * first connection, when the relay could not open the TLS session (its error explains why). */
static int wait_mqtt(struct mqtt_state *st, struct relay *r, enum wait_for what, int n, int wait_s,
                     struct te_error *err)
{
    struct timespec until, now, end;
    int ret = TE_OK;

    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += wait_s;

    pthread_mutex_lock(&st->lock);
    while (!reached(st, what, n)) {
        if (st->connack_rc != 0) {
            ret = te_error_set(err, TE_ERR_PERMISSION, "The cloud broker refused the MQTT connection: %s.",
                               mosquitto_connack_string(st->connack_rc));
            break;
        }
        if (st->connects == 0 && relay_last_error(r, err)) {
            ret = err->code;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) {
            ret = te_error_set(err, TE_ERR_TIMEOUT, "Timed out after %d s waiting for the %s.", wait_s,
                               what == W_CONNECTED ? "MQTT connection" :
                               what == W_SUBSCRIBED ? "subscription" :
                               what == W_ACKED ? "acknowledgements" : "messages to come back");
            break;
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += DRV_POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st->cond, &st->lock, &until);
    }
    pthread_mutex_unlock(&st->lock);
    return ret;
}

static unsigned char *make_payload(const struct opts *o, const char *msg, size_t *len)
{
    unsigned char *p;

    if (o->size < 0) {
        *len = strlen(msg);
        return (unsigned char *)strdup(msg);
    }
    *len = (size_t)o->size;
    if ((p = malloc(*len + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < *len; i++)
        p[i] = (unsigned char)(i % 251); /* a prime period: misplaced chunks show */
    return p;
}

static int cmd_publish(struct tls_client *c, const struct opts *o, const char *topic, const char *msg)
{
    struct mqtt_state st = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    struct te_error err = {0};
    struct relay *r = NULL;
    struct relay_stats rs;
    struct mosquitto *m = NULL;
    unsigned char *payload = NULL;
    char id[64], line[64];
    int ret = 1, rc;

    if ((payload = make_payload(o, msg, &st.payload_len)) == NULL)
        return fail("%s", "Out of memory.");
    st.payload = payload;
    if (relay_start(c, NULL, &r, &err) != TE_OK) {
        fail("%s", te_error_message(&err));
        goto exit;
    }
    if (o->hold) {
        printf("socket=%s\n", relay_socket_path(r));
        fflush(stdout);
    }
    snprintf(id, sizeof(id), "tlsdrv-%d", (int)getpid());
    if ((m = mosquitto_new(id, true, &st)) == NULL) {
        fail("%s", "Cannot create the MQTT client.");
        goto exit;
    }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    mosquitto_reconnect_delay_set(m, 1, 2, false);
    /* port 0: libmosquitto connects to the Unix socket; no mosquitto_tls_set, the relay does TLS */
    if ((rc = mosquitto_connect(m, relay_socket_path(r), 0, DRV_KEEPALIVE_S)) != MOSQ_ERR_SUCCESS ||
        (rc = mosquitto_loop_start(m)) != MOSQ_ERR_SUCCESS) {
        fail("Cannot connect libmosquitto to the relay: %s.", mosquitto_strerror(rc));
        goto exit;
    }
    if (wait_mqtt(&st, r, W_CONNECTED, 1, o->wait_s, &err) != TE_OK) {
        fail("%s", te_error_message(&err));
        goto exit;
    }
    if (o->hold) {
        printf("connected\n");
        fflush(stdout);
        if (fgets(line, sizeof(line), stdin) == NULL)
            line[0] = '\0';
        /* the test may have restarted the broker meanwhile: libmosquitto reconnects */
        if (wait_mqtt(&st, r, W_CONNECTED, 1, o->wait_s, &err) != TE_OK) {
            fail("%s", te_error_message(&err));
            goto exit;
        }
    }
    if (o->echo) {
        if ((rc = mosquitto_subscribe(m, NULL, topic, o->qos)) != MOSQ_ERR_SUCCESS) {
            fail("Cannot subscribe: %s.", mosquitto_strerror(rc));
            goto exit;
        }
        if (wait_mqtt(&st, r, W_SUBSCRIBED, 1, o->wait_s, &err) != TE_OK) {
            fail("%s", te_error_message(&err));
            goto exit;
        }
    }
    for (int i = 0; i < o->count; i++) {
        rc = mosquitto_publish(m, NULL, topic, (int)st.payload_len, payload, o->qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fail("Cannot publish: %s.", mosquitto_strerror(rc));
            goto exit;
        }
    }
    ret = 0;
    if (wait_mqtt(&st, r, W_ACKED, o->count, o->wait_s, &err) != TE_OK ||
        (o->echo && wait_mqtt(&st, r, W_RECEIVED, o->count, o->wait_s, &err) != TE_OK)) {
        fail("%s", te_error_message(&err));
        ret = 1;
    }
    pthread_mutex_lock(&st.lock);
    printf("acked=%d\nreceived=%d\nmismatched=%d\nconnects=%d\n", st.acked, st.received,
           st.mismatched, st.connects);
    ret = ret || st.mismatched != 0;
    pthread_mutex_unlock(&st.lock);
    relay_get_stats(r, &rs);
    printf("sessions=%llu\nfailures=%llu\nrejected=%llu\nbytes_up=%llu\nbytes_down=%llu\n",
           (unsigned long long)rs.sessions, (unsigned long long)rs.failures,
           (unsigned long long)rs.rejected_peers, (unsigned long long)rs.bytes_up,
           (unsigned long long)rs.bytes_down);
    tls_stats_print(c);
exit:
    if (m != NULL) {
        mosquitto_disconnect(m);
        mosquitto_loop_stop(m, false);
        mosquitto_destroy(m);
    }
    relay_stop(r);
    free(payload);
    return ret;
}

/* ---- options ----------------------------------------------------------------------------- */

static long parse_num(const char *s, long lo, long hi, const char *what)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "tlsdrv: %s must be a number from %ld to %ld, not '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"host", 1, NULL, 'h'},     {"port", 1, NULL, 'p'},    {"ca", 1, NULL, 'a'},
        {"cert", 1, NULL, 'c'},     {"key-file", 1, NULL, 'k'}, {"module", 1, NULL, 'm'},
        {"uri", 1, NULL, 'u'},      {"pin", 1, NULL, 'P'},     {"server-name", 1, NULL, 'n'},
        {"suite", 1, NULL, 's'},    {"timeout", 1, NULL, 't'}, {"wait", 1, NULL, 'w'},
        {"count", 1, NULL, 'N'},    {"qos", 1, NULL, 'q'},     {"size", 1, NULL, 'S'},
        {"echo", 0, NULL, 'e'},     {"hold", 0, NULL, 'H'},    {"verbose", 0, NULL, 'v'},
        {"socket", 1, NULL, 'o'},   {"help", 0, NULL, '?'},    {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct opts){.wait_s = DRV_DEFAULT_WAIT_S, .count = 1, .qos = 1, .size = -1};
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'h': o->tls.host = optarg; break;
        case 'p': o->tls.port = (uint16_t)parse_num(optarg, 1, 65535, "--port"); break;
        case 'a': o->tls.ca_path = optarg; break;
        case 'c': o->tls.cert_path = optarg; break;
        case 'k': o->key.kind = SIGNER_FILE; o->key.key_path = optarg; break;
        case 'm': o->key.kind = SIGNER_MODULE; o->key.module_path = optarg; break;
        case 'o': o->key.kind = SIGNER_SOCKET; o->key.socket_path = optarg; break;
        case 'u': o->key.key_uri = optarg; break;
        case 'P': o->key.pin = optarg; break; /* tests only: production never takes a PIN on argv */
        case 'n': o->tls.server_name = optarg; break;
        case 's': o->tls.ciphersuites = optarg; break;
        case 't':
            o->tls.connect_timeout_ms = o->tls.handshake_timeout_ms =
                (int)parse_num(optarg, 1, 3600000, "--timeout");
            break;
        case 'w': o->wait_s = (int)parse_num(optarg, 1, 3600, "--wait"); break;
        case 'N': o->count = (int)parse_num(optarg, 0, DRV_MAX_COUNT, "--count"); break;
        case 'q': o->qos = (int)parse_num(optarg, 0, 2, "--qos"); break;
        case 'S': o->size = parse_num(optarg, 0, DRV_MAX_PAYLOAD, "--size"); break;
        case 'e': o->echo = true; break;
        case 'H': o->hold = true; break;
        case 'v': log_set_level(LOG_LVL_DEBUG); break;
        default: fputs(usage, stderr); exit(2);
        }
    }
    if ((o->key.key_path == NULL && o->key.module_path == NULL && o->key.socket_path == NULL) ||
        optind >= argc ||
        (strcmp(argv[optind], "public-key") != 0 &&
         (o->tls.host == NULL || o->tls.port == 0 || o->tls.ca_path == NULL ||
          o->tls.cert_path == NULL))) {
        fputs(usage, stderr);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    struct te_error err = {0};
    struct signer *sig = NULL;
    struct tls_client *c = NULL;
    const char *cmd;
    int ret = 1;

    log_init("tlsdrv");
    /* libmosquitto writes to its socket too; nothing here should die of a closed peer */
    signal(SIGPIPE, SIG_IGN);
    parse_opts(argc, argv, &o);
    cmd = argv[optind];
    if (signer_open(&o.key, &sig, &err) != TE_OK) {
        ret = fail("%s", te_error_message(&err));
        goto exit;
    }
    o.tls.signer = sig;
    if (strcmp(cmd, "public-key") == 0 && optind + 1 == argc) {
        ret = cmd_public_key(sig);
        goto exit;
    }
    if (tls_client_new(&o.tls, &c, &err) != TE_OK) {
        ret = fail("%s", te_error_message(&err));
        goto exit;
    }
    if (strcmp(cmd, "handshake") == 0 && optind + 1 == argc) {
        ret = cmd_handshakes(c, 1, true);
    } else if (strcmp(cmd, "handshakes") == 0 && optind + 2 == argc) {
        ret = cmd_handshakes(c, parse_num(argv[optind + 1], 1, DRV_MAX_COUNT, "N"), false);
    } else if (strcmp(cmd, "publish") == 0 && optind + 3 == argc) {
        mosquitto_lib_init();
        ret = cmd_publish(c, &o, argv[optind + 1], argv[optind + 2]);
        mosquitto_lib_cleanup();
    } else {
        fputs(usage, stderr);
        ret = 2;
    }
exit:
    fflush(stdout);
    tls_client_free(c);
    signer_close(sig);
    return ret;
}
