"""`tedge-mapper c8y` when things break: 1000 QoS 1 messages across a cloud broker restart (all
arrive, in order per topic), the same with a buffer bound of 50 (the local broker keeps the rest),
the cloud unreachable at start (attempts with their cause and backoff), a device certificate the
cloud rejects, and a local broker restart."""

import json
import re

import pytest

from fixtures.bridge import DOWN, UP, bridge_settings, read_health, wait_health
from fixtures.bridge import c8y_standin, mapper, standin_cert  # noqa: F401 (fixtures)
from fixtures.c8y_standin import C8yStandin
from fixtures.mqtt import MqttClient
from fixtures.util import wait_until

# Three topics of different rules, published round-robin.
TOPICS = [("c8y/s/us", "s/us"), ("c8y/measurement/measurements/create", "measurement/measurements/create"),
          ("c8y/event/events/create/child1", "event/events/create/child1")]
TOTAL = 1000


@pytest.fixture
def durable_cloud(make_cloud_broker, tmp_path, standin_cert):
    """A cloud broker that keeps sessions across a restart (persistence on) and a stand-in with a
    persistent session on it: what the bridge sends while the stand-in reconnects after the
    restart is queued for it, so the test sees every message the broker accepted."""
    store = tmp_path / "cloud-store"
    store.mkdir()
    broker = make_cloud_broker(name="durable-cloud",
                               extra_conf=["persistence true", f"persistence_location {store}/"])
    key, cert = standin_cert
    standin = C8yStandin(broker.host, broker.port, broker.ca_cert, cert, key,
                         client_id="c8y-standin-durable", persistent=True).start()
    yield broker, standin
    standin.stop()


def payload(seq, topic_index):
    return json.dumps({"seq": seq, "topic": topic_index})


def publish_range(client, start, stop):
    for seq in range(start, stop):
        i = seq % len(TOPICS)
        client.publish(TOPICS[i][0], payload(seq, i), qos=1)


def sequence_numbers(standin, cloud_topic):
    """The "seq" of our JSON messages on a cloud topic, in arrival order (the topic s/us also
    carries the bridge's own SmartREST 102 lines, which are skipped)."""
    return [json.loads(m.payload)["seq"] for m in standin.received(cloud_topic)
            if m.payload.startswith(b"{")]


def check_all_in_order(standin):
    """Every sequence number arrived on its topic, and per topic in increasing order (QoS 1 is
    at least once: a message resent after a reconnect may arrive twice, never out of order)."""
    for i, (_, cloud) in enumerate(TOPICS):
        want = [seq for seq in range(TOTAL) if seq % len(TOPICS) == i]
        got = sequence_numbers(standin, cloud)
        first = list(dict.fromkeys(got))  # first occurrences, in arrival order
        assert first == want, f"{cloud}: missing or out of order: " \
                              f"{sorted(set(want) - set(first))[:20]} / {first[:30]}"


def wait_all(standin, timeout=120):
    def done():
        seen = set()
        for _, cloud in TOPICS:
            seen.update(sequence_numbers(standin, cloud))
        return len(seen) >= TOTAL
    wait_until(done, timeout=timeout, what=f"{TOTAL} distinct messages at the stand-in")


def run_restart_scenario(pki, durable_cloud, local_broker, mapper, extra_env=None):
    broker, standin = durable_cloud
    key, cert = pki.device_key_and_cert("dev-restart", "ec-p256")
    m = mapper(bridge_settings(broker, local_broker, cert, key), extra_env=extra_env)
    wait_health(local_broker, UP)
    standin.wait_for_smartrest("102", lambda f: f[-1] == "up")
    with MqttClient(local_broker.host, local_broker.port) as pub:
        pub.connect()
        publish_range(pub, 0, 300)
        broker.stop()                       # mid-stream
        publish_range(pub, 300, 700)        # while Cumulocity is unreachable
        wait_health(local_broker, DOWN)
        broker.start()
        publish_range(pub, 700, TOTAL)
    standin.wait_connected(30)
    wait_all(standin)
    check_all_in_order(standin)
    wait_health(local_broker, UP)
    return m


def test_1000_qos1_messages_across_a_cloud_restart(pki, durable_cloud, local_broker, mapper):
    m = run_restart_scenario(pki, durable_cloud, local_broker, mapper)
    log = m.log()
    assert re.search(r"cloud: connection lost: .* reconnect_in=", log)
    assert "buffer full" not in log  # 1000 messages fit the default bound


def test_buffer_bound_stops_reading_and_loses_nothing(pki, durable_cloud, local_broker, mapper):
    """With a bound of 50 messages the bridge stops reading from the local broker while the cloud
    is away; its persistent session there keeps the rest, and all of it arrives in order."""
    m = run_restart_scenario(pki, durable_cloud, local_broker, mapper,
                             extra_env={"TEDGE_MAPPER_BRIDGE_QUEUE_MESSAGES": "50"})
    log = m.log()
    assert len(re.findall(r"local: buffer full \((5\d|6\d) messages, \d+ bytes\): pausing", log)) >= 1
    assert "local: buffer drained: everything buffered was forwarded" in log


def attempts(log):
    """(attempt number, cause, retry_in seconds) of each failed cloud attempt in the log."""
    return [(int(a), cause, float(w)) for a, cause, w in
            re.findall(r"cloud: connection attempt (\d+) failed: (.*) retry_in=([\d.]+)s", log)]


def test_cloud_unreachable_at_start(pki, cloud_broker, local_broker, c8y_standin, mapper):
    c8y_standin.stop()
    cloud_broker.stop()
    key, cert = pki.device_key_and_cert("dev-late", "ec-p256")
    m = mapper(bridge_settings(cloud_broker, local_broker, cert, key))
    wait_until(lambda: len(attempts(m.log())) >= 3, timeout=30, what="three failed attempts")
    assert read_health(local_broker) == DOWN
    seen = attempts(m.log())
    assert [a for a, _, _ in seen[:3]] == [1, 2, 3]
    for _, cause, _ in seen:
        assert f"Cannot connect to 127.0.0.1:{cloud_broker.port}" in cause, cause
    # 1 s doubling to the 3 s maximum, each +-50%, never above the maximum
    waits = [w for _, _, w in seen]
    assert 0.5 <= waits[0] <= 1.5
    assert all(w <= 3.0 for w in waits)
    cloud_broker.start()
    wait_health(local_broker, UP, timeout=30)
    assert "cloud: connected to" in m.log()


def test_rejected_certificate_is_retried_with_its_cause(pki, make_cloud_broker, local_broker,
                                                         mapper):
    """A cloud that does not trust the device certificate: each attempt fails with the TLS
    explanation, and the bridge keeps trying (it is not a local configuration error)."""
    broker = make_cloud_broker(client_ca=pki.other_ca().ca_cert)
    key, cert = pki.device_key_and_cert("dev-stranger", "ec-p256")
    m = mapper(bridge_settings(broker, local_broker, cert, key))
    wait_until(lambda: len(attempts(m.log())) >= 2, timeout=30, what="two failed attempts")
    for _, cause, _ in attempts(m.log()):
        assert f"The server rejected the device certificate '{cert}'" in cause, cause
    assert m.running
    assert read_health(local_broker) == DOWN


def test_local_broker_restart(pki, cloud_broker, make_local_broker, c8y_standin, mapper, tmp_path):
    """The local broker goes away and comes back: the bridge reconnects, republishes its health,
    and a message that came from the cloud meanwhile is delivered after the restart."""
    store = tmp_path / "local-store"
    store.mkdir()
    local = make_local_broker(extra_conf=["persistence true", f"persistence_location {store}/"])
    key, cert = pki.device_key_and_cert("dev-local", "ec-p256")
    m = mapper(bridge_settings(cloud_broker, local, cert, key))
    wait_health(local, UP)
    c8y_standin.wait_for_smartrest("102", lambda f: f[-1] == "up")
    # a persistent subscriber: the restarted broker keeps its session and queues for it
    sub = MqttClient(local.host, local.port, client_id="op-listener", clean_session=False)
    sub.connect().subscribe("c8y/s/ds")
    local.stop()
    wait_until(lambda: "local: connection lost" in m.log(), timeout=10, what="local loss logged")
    c8y_standin.publish("s/ds", "510,dev-local")  # arrives while the local broker is down
    local.start()
    try:
        sub.wait_for_message("c8y/s/ds", "510,dev-local", timeout=30)
    finally:
        sub.stop()
    wait_health(local, UP)
    assert m.running


def test_refused_connection_is_retried_with_the_brokers_reason(pki, make_cloud_broker,
                                                                local_broker, mapper):
    """A CONNACK refusal (Cumulocity: a device not registered yet) is retried: registering the
    device in the tenant must not need a restart of the mapper."""
    broker = make_cloud_broker(extra_conf=["clientid_prefixes registered-"])
    key, cert = pki.device_key_and_cert("dev-unregistered", "ec-p256")
    m = mapper(bridge_settings(broker, local_broker, cert, key))
    wait_until(lambda: len(attempts(m.log())) >= 2, timeout=30, what="two failed attempts")
    for _, cause, _ in attempts(m.log()):
        assert "Cumulocity refused the MQTT connection: Connection Refused: not authorised" \
            in cause, cause
    assert m.running
