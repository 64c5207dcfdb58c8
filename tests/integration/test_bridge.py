"""`tedge-mapper c8y` against real brokers: the topic rules both ways with QoS and retain, what is
not forwarded, the health status and SmartREST 102, stopping (SIGTERM, SIGKILL), configuration
errors and the command line. Key file mode here; HSM modes in test_bridge_keys.py, outages in
test_bridge_resilience.py."""

import re
import signal

import pytest

from fixtures.bridge import (DOWN, EXIT_CONFIG, SERVICE, UP, bridge_settings, read_health,
                             wait_health)
from fixtures.bridge import c8y_standin, mapper, standin_cert  # noqa: F401 (fixtures)
from fixtures.c8y_standin import jwt_claims
from fixtures.mqtt import MqttClient, mqtt_publish
from fixtures.util import bin_path, run

# Every local -> cloud rule of upstream's built-in bridge: (local topic, cloud topic).
UPSTREAM = [
    ("c8y/s/us", "s/us"),
    ("c8y/s/us/child01", "s/us/child01"),
    ("c8y/t/us/child01", "t/us/child01"),
    ("c8y/q/us/child01", "q/us/child01"),
    ("c8y/c/us/child01", "c/us/child01"),
    ("c8y/s/uc/tmpl", "s/uc/tmpl"),
    ("c8y/t/uc/tmpl", "t/uc/tmpl"),
    ("c8y/q/uc/tmpl", "q/uc/tmpl"),
    ("c8y/c/uc/tmpl", "c/uc/tmpl"),
    ("c8y/s/ut/tmpl", "s/ut/tmpl"),
    ("c8y/inventory/managedObjects/update/dev1", "inventory/managedObjects/update/dev1"),
    ("c8y/measurement/measurements/create", "measurement/measurements/create"),
    ("c8y/measurement/measurements/createBulk", "measurement/measurements/createBulk"),
    ("c8y/event/events/create", "event/events/create"),
    ("c8y/event/events/createBulk", "event/events/createBulk"),
    ("c8y/alarm/alarms/create", "alarm/alarms/create"),
    ("c8y/alarm/alarms/createBulk", "alarm/alarms/createBulk"),
]
# Every cloud -> local rule: (cloud topic, local topic).
DOWNSTREAM = [
    ("s/dt", "c8y/s/dt"),
    ("s/ds", "c8y/s/ds"),
    ("s/dat", "c8y/s/dat"),
    ("s/e", "c8y/s/e"),
    ("devicecontrol/notifications", "c8y/devicecontrol/notifications"),
    ("error", "c8y/error"),
    ("s/dc/my-template", "c8y/s/dc/my-template"),
]


def device(pki, cn="bridge-dev"):
    """(key, cert) of a device with a key file."""
    return pki.device_key_and_cert(cn, "ec-p256")


def start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin, cn="bridge-dev", **extra):
    key, cert = device(pki, cn)
    m = mapper(bridge_settings(cloud_broker, local_broker, cert, key, **extra))
    wait_health(local_broker, UP)
    c8y_standin.wait_for_smartrest("102", lambda f: f[-1] == "up")
    return m


def cloud_client(cloud_broker, standin_cert):
    """Another TLS client on the cloud broker (with the stand-in's certificate)."""
    key, cert = standin_cert
    return MqttClient(cloud_broker.host, cloud_broker.port,
                      tls={"ca_cert": cloud_broker.ca_cert, "cert": cert, "key": key})


# ---- topic rules ---------------------------------------------------------------------------

def test_every_upstream_rule_qos1(pki, cloud_broker, local_broker, c8y_standin, mapper):
    start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    with MqttClient(local_broker.host, local_broker.port) as pub:
        pub.connect()
        for i, (local, _) in enumerate(UPSTREAM):
            pub.publish(local, f"msg-{i}", qos=1)
    for i, (_, cloud) in enumerate(UPSTREAM):
        m = c8y_standin.wait_for_message(cloud, f"msg-{i}")
        assert m.topic == cloud
        assert m.qos == 1, f"{cloud} arrived with QoS {m.qos}"


def test_qos0_stays_qos0_and_retain_is_kept(pki, cloud_broker, local_broker, c8y_standin, mapper,
                                            standin_cert):
    start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    mqtt_publish(local_broker.host, local_broker.port, "c8y/s/us", "qos0-msg", qos=0)
    assert c8y_standin.wait_for_message("s/us", "qos0-msg").qos == 0
    # a retained message: the cloud broker keeps it, so a new subscriber gets it as retained
    mqtt_publish(local_broker.host, local_broker.port, "c8y/inventory/managedObjects/update/dev",
                 '{"name":"retained"}', qos=1, retain=True)
    c8y_standin.wait_for_message("inventory/managedObjects/update/dev")
    with cloud_client(cloud_broker, standin_cert) as late:
        late.connect().subscribe("inventory/managedObjects/update/dev")
        got = late.wait_for(1, "inventory/managedObjects/update/dev")[0]
    assert got.retain and got.payload == b'{"name":"retained"}'
    # a message that was not retained is not kept by the cloud broker
    with cloud_client(cloud_broker, standin_cert) as late:
        late.connect().subscribe("s/us")
        with pytest.raises(TimeoutError):
            late.wait_for(1, "s/us", timeout=1.0)


def test_retained_before_start_is_forwarded_once(pki, cloud_broker, local_broker, c8y_standin,
                                                 mapper):
    """A message retained locally before the bridge subscribed is forwarded (retain as published);
    after a restart of the bridge its persistent session exists, so it is not sent again."""
    mqtt_publish(local_broker.host, local_broker.port, "c8y/s/us", "114,c8y_Restart", retain=True)
    m = start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    c8y_standin.wait_for_message("s/us", "114,c8y_Restart")
    assert m.stop() == 0
    mark = c8y_standin.mark()
    m.start()
    c8y_standin.wait_for_smartrest("102", lambda f: f[-1] == "up")
    wait_health(local_broker, UP)
    mqtt_publish(local_broker.host, local_broker.port, "c8y/s/us", "sentinel")
    c8y_standin.wait_for_message("s/us", "sentinel", since=mark)
    again = [x for x in c8y_standin.received("s/us")[mark:] if x.payload == b"114,c8y_Restart"]
    assert again == [], "the retained message was forwarded again after a restart"
    assert "session=resumed" in m.log()


def test_every_downstream_rule(pki, cloud_broker, local_broker, c8y_standin, mapper,
                               mqtt_subscriber):
    start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    sub = mqtt_subscriber(local_broker.host, local_broker.port, ["c8y/#"])
    for i, (cloud, _) in enumerate(DOWNSTREAM):
        c8y_standin.publish(cloud, f"down-{i}", qos=1)
    for i, (_, local) in enumerate(DOWNSTREAM):
        m = sub.wait_for_message(local, f"down-{i}")
        assert m.qos == 1
    c8y_standin.publish("s/ds", "qos0-down", qos=0)
    assert sub.wait_for_message("c8y/s/ds", "qos0-down").qos == 0


def test_jwt_request_through_the_bridge(pki, cloud_broker, local_broker, c8y_standin, mapper,
                                        mqtt_subscriber):
    """What `tedge connect c8y` checks: c8y/s/uat -> 71,<jwt> on c8y/s/dat."""
    start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    sub = mqtt_subscriber(local_broker.host, local_broker.port, ["c8y/s/dat"])
    mqtt_publish(local_broker.host, local_broker.port, "c8y/s/uat", "")
    reply = sub.wait_for(1, "c8y/s/dat")[0].payload.decode()
    code, token = reply.split(",", 1)
    assert code == "71"
    claims = jwt_claims(token)
    assert claims["iss"] == c8y_standin.tenant_url and claims["ten"] == c8y_standin.tenant_id
    assert c8y_standin.jwt_requests == 1


def test_retain_from_the_cloud(pki, cloud_broker, local_broker, c8y_standin, mapper, mqtt_subscriber):
    """The cloud side is MQTT 3.1.1: a retained message arrives retained only when it was stored
    before the bridge subscribed; live deliveries have RETAIN cleared (docs/bridge.md)."""
    c8y_standin.publish("s/dc/stored", "stored-before", retain=True)
    start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    c8y_standin.publish("s/dc/live", "live-retained", retain=True)
    probe = mqtt_subscriber(local_broker.host, local_broker.port, ["c8y/s/dc/live"])
    c8y_standin.publish("s/dc/live", "sentinel")
    probe.wait_for_message("c8y/s/dc/live", "sentinel")
    with MqttClient(local_broker.host, local_broker.port) as late:
        late.connect().subscribe(["c8y/s/dc/stored", "c8y/s/dc/live"])
        got = late.wait_for(1, "c8y/s/dc/stored")[0]
        assert got.retain and got.payload == b"stored-before"
        with pytest.raises(TimeoutError):
            late.wait_for(1, "c8y/s/dc/live", timeout=1.0)


def test_topics_outside_the_rules_are_not_forwarded(pki, cloud_broker, local_broker, c8y_standin,
                                                    mapper, mqtt_subscriber):
    start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    local_sub = mqtt_subscriber(local_broker.host, local_broker.port, ["#"])
    for topic in ("c8y/foo/bar", "c8y/s/ds", "c8y/s/uat/extra", "te/device/main///m/", "s/us"):
        mqtt_publish(local_broker.host, local_broker.port, topic, "must-not-pass")
    mqtt_publish(local_broker.host, local_broker.port, "c8y/s/us", "sentinel-up")
    c8y_standin.wait_for_message("s/us", "sentinel-up")
    leaked = [m for m in c8y_standin.received() if m.payload == b"must-not-pass"]
    assert leaked == []
    # and from the cloud: upstream topics and anything else stay in the cloud
    for topic in ("s/us", "foo/bar", "s/uat", "s/dsx"):
        c8y_standin.publish(topic, "must-not-come-down")
    c8y_standin.publish("s/ds", "sentinel-down")
    local_sub.wait_for_message("c8y/s/ds", "sentinel-down")
    assert [m for m in local_sub.received() if m.payload == b"must-not-come-down"] == []


# ---- health and service status ---------------------------------------------------------------

def test_health_up_and_service_102_after_connect(pki, cloud_broker, local_broker, c8y_standin,
                                                 mapper):
    start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin, cn="dev-health",
                 c8y__bridge__keepalive_interval="30s")
    assert read_health(local_broker) == UP
    row = c8y_standin.wait_for_smartrest("102", lambda f: f[-1] == "up")
    assert row == ["102", f"dev-health:device:main:service:{SERVICE}", "service", SERVICE, "up"]
    # cloud: the device id (CN) as client id, MQTT 3.1.1 (p2), clean session, the configured
    # keepalive; local: upstream's client id, MQTT 5, persistent session (c0), no keepalive
    cloud_broker.wait_for_log(r"New client connected from \S+ as dev-health \(p2, c1, k30, u'dev-health'\)")
    local_broker.wait_for_log(rf"New client connected from \S+ as {SERVICE} \(p5, c0, k0\)")


def test_sigkill_leaves_the_last_wills(pki, cloud_broker, local_broker, c8y_standin, mapper):
    m = start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin, cn="dev-will")
    m.proc.kill()
    row = c8y_standin.wait_for_smartrest("102", lambda f: f[-1] == "down", timeout=20)
    assert row == ["102", f"dev-will:device:main:service:{SERVICE}", "service", SERVICE, "down"]
    wait_health(local_broker, DOWN)


def test_sigterm_reports_down_and_exits_0(pki, cloud_broker, local_broker, c8y_standin, mapper):
    m = start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin, cn="dev-term")
    assert m.stop(sig=signal.SIGTERM) == 0
    assert read_health(local_broker) == DOWN
    c8y_standin.wait_for_smartrest("102", lambda f: f[-1] == "down")
    # clean MQTT disconnects on both sides (so neither broker had to send a will)
    cloud_broker.wait_for_log(r"Client dev-term disconnected\.")
    local_broker.wait_for_log(rf"Client {SERVICE} disconnected\.")
    assert "Client dev-term closed its connection" not in cloud_broker.log_text()
    assert f"Client {SERVICE} closed its connection" not in local_broker.log_text()
    assert "stopping on Terminated" in m.log()


def test_sigint_also_stops_cleanly(pki, cloud_broker, local_broker, c8y_standin, mapper):
    m = start_bridge(pki, cloud_broker, local_broker, mapper, c8y_standin)
    assert m.stop(sig=signal.SIGINT) == 0
    assert read_health(local_broker) == DOWN


def test_custom_prefix_and_profile(pki, cloud_broker, local_broker, c8y_standin, mapper,
                                   mqtt_subscriber):
    """A profile reads c8y.profiles.<name>.*; its prefix changes the topics and the service."""
    key, cert = device(pki, "dev-profile")
    settings = bridge_settings(cloud_broker, local_broker, cert, key)
    for k in ("c8y.url", "c8y.mqtt", "c8y.root_cert_path"):
        settings[k.replace("c8y.", "c8y.profiles.eu.")] = settings.pop(k)
    settings["c8y.profiles.eu.bridge.topic_prefix"] = "c8y-eu"
    mapper(settings, args=["--profile", "eu"])
    health = "te/device/main/service/tedge-mapper-bridge-c8y-eu/status/health"
    with MqttClient(local_broker.host, local_broker.port) as c:
        c.connect().subscribe(health)
        c.wait_for_message(health, UP, timeout=20)
    local_broker.wait_for_log(r"as tedge-mapper-bridge-c8y@eu ")
    c8y_standin.wait_for_smartrest("102", lambda f: f[3] == "tedge-mapper-bridge-c8y-eu" and f[-1] == "up")
    mqtt_publish(local_broker.host, local_broker.port, "c8y-eu/s/us", "via-profile")
    c8y_standin.wait_for_message("s/us", "via-profile")
    sub = mqtt_subscriber(local_broker.host, local_broker.port, ["c8y-eu/s/ds"])
    c8y_standin.publish("s/ds", "to-profile")
    sub.wait_for_message("c8y-eu/s/ds", "to-profile")


# ---- configuration errors and the command line --------------------------------------------------

def run_mapper(tedge_dir, *args, timeout=30):
    return run([bin_path("tedge-mapper"), "--config-dir", str(tedge_dir), *args], check=False,
               timeout=timeout)


def test_missing_cloud_url(tedge_dir, pki, local_broker, mapper):
    key, cert = device(pki)
    m = mapper({"device.cert_path": str(cert), "device.key_path": str(key),
                "mqtt.client.port": local_broker.port})
    assert m.proc.wait(20) == EXIT_CONFIG
    assert "tedge config set c8y.url" in m.log()


def test_key_that_does_not_match_the_certificate(pki, cloud_broker, local_broker, mapper):
    _, cert = pki.device_key_and_cert("dev-a", "ec-p256", variant="a")
    other_key, _ = pki.device_key_and_cert("dev-b", "ec-p256", variant="b")
    m = mapper(bridge_settings(cloud_broker, local_broker, cert, other_key))
    assert m.proc.wait(20) == EXIT_CONFIG
    assert "does not match the certificate" in m.log()
    assert "New client connected" not in cloud_broker.log_text()


def test_missing_certificate(tmp_path, pki, cloud_broker, local_broker, mapper):
    key, _ = device(pki)
    m = mapper(bridge_settings(cloud_broker, local_broker, tmp_path / "none.pem", key))
    assert m.proc.wait(20) == EXIT_CONFIG
    assert "Cannot read the device certificate" in m.log()
    assert "tedge cert create" in m.log()


def test_built_in_bridge_disabled(pki, cloud_broker, local_broker, mapper):
    key, cert = device(pki)
    m = mapper(bridge_settings(cloud_broker, local_broker, cert, key,
                               mqtt__bridge__built_in=False))
    assert m.proc.wait(20) == EXIT_CONFIG
    assert "mqtt.bridge.built_in" in m.log()


def test_command_line(tedge_dir):
    r = run_mapper(tedge_dir, "--help")
    assert r.returncode == 0 and "c8y" in r.stdout
    r = run_mapper(tedge_dir, "c8y", "--help")
    assert r.returncode == 0 and "--profile" in r.stdout
    r = run_mapper(tedge_dir, "help", "c8y")
    assert r.returncode == 0 and "--profile" in r.stdout
    r = run_mapper(tedge_dir, "-V")
    assert r.returncode == 0 and re.match(r"tedge-mapper \d+\.\d+\.\d+", r.stdout)
    r = run_mapper(tedge_dir)
    assert r.returncode == 2
    r = run_mapper(tedge_dir, "bogus")
    assert r.returncode == 2 and "unrecognized subcommand 'bogus'" in r.stderr
    r = run_mapper(tedge_dir, "c8y", "extra")
    assert r.returncode == 2 and "unexpected argument 'extra'" in r.stderr
    r = run_mapper(tedge_dir, "c8y", "--profile")
    assert r.returncode == 2
    r = run_mapper(tedge_dir, "--log-level", "loud", "c8y")
    assert r.returncode == 2 and "invalid value 'loud'" in r.stderr
    r = run_mapper(tedge_dir, "az")
    assert r.returncode == 1 and "only c8y" in r.stderr
    r = run_mapper(tedge_dir, "c8y", "--profile", "bad/name")
    assert r.returncode == EXIT_CONFIG and "Invalid profile name" in r.stderr


def test_standin_runs_as_a_script(cloud_broker, standin_cert, pki):
    """The demo runs fixtures/c8y_standin.py as a program: it prints `ready`, then each message,
    and answers a JWT request."""
    import sys
    from pathlib import Path
    from fixtures.util import Proc
    key, cert = standin_cert
    script = Path(__file__).parent / "fixtures" / "c8y_standin.py"
    proc = Proc([sys.executable, str(script), "--host", cloud_broker.host, "--port",
                 str(cloud_broker.port), "--ca", str(cloud_broker.ca_cert), "--cert", str(cert),
                 "--key", str(key), "--tenant-url", "tenant.example"], name="c8y-standin").start()
    proc.wait_for_output(r"^ready$", timeout=20)
    dkey, dcert = pki.device_key_and_cert("dev-script", "ec-p256")
    dev = cloud_client(cloud_broker, (dkey, dcert))
    dev.connect().subscribe("s/dat")
    dev.publish("s/us", "100,dev-script,thin-edge.io")
    proc.wait_for_output(r"^s/us 100,dev-script,thin-edge\.io$", timeout=10)
    dev.publish("s/uat", "")
    token = dev.wait_for(1, "s/dat")[0].payload.decode().split(",", 1)[1]
    assert jwt_claims(token)["iss"] == "tenant.example"
    dev.stop()
    assert proc.stop() == 0
