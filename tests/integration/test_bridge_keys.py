"""`tedge-mapper c8y` with the device key in an HSM: SoftHSM2 in-process (device.cryptoki.mode
module) for EC and RSA keys, a wrong PIN (exit EX_CONFIG at once, never retried: tokens lock), a
token key that does not match the certificate, and tedge-p11-server (mode socket), also when the
daemon starts late or restarts while the mapper runs."""

import re

import pytest

from fixtures.bridge import DOWN, EXIT_CONFIG, UP, bridge_settings, read_health, wait_health
from fixtures.bridge import c8y_standin, mapper, standin_cert  # noqa: F401 (fixtures)
from fixtures.mqtt import mqtt_publish
from fixtures.p11server import P11Server
from fixtures.util import wait_until

PIN = "123456"


def module_settings(softhsm, key, pin=PIN):
    return {"device.cryptoki.mode": "module", "device.cryptoki.module_path": softhsm.module,
            "device.key_uri": key.uri, "device.key_pin": pin}


def assert_bridges_both_ways(local_broker, c8y_standin, mqtt_subscriber, tag):
    mqtt_publish(local_broker.host, local_broker.port, "c8y/s/us", f"up-{tag}")
    c8y_standin.wait_for_message("s/us", f"up-{tag}")
    sub = mqtt_subscriber(local_broker.host, local_broker.port, ["c8y/s/ds"])
    c8y_standin.publish("s/ds", f"down-{tag}")
    sub.wait_for_message("c8y/s/ds", f"down-{tag}")


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048"])
def test_module_mode(pki, cloud_broker, local_broker, c8y_standin, mapper, softhsm,
                     mqtt_subscriber, key_type):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, key_type)
    cn = f"dev-hsm-{key_type}"
    cert = pki.device_cert(cn, key.public_pem)
    settings = bridge_settings(cloud_broker, local_broker, cert, **{
        k.replace(".", "__"): v for k, v in module_settings(softhsm, key).items()})
    m = mapper(settings, env=softhsm.env)
    wait_health(local_broker, UP)
    cloud_broker.wait_for_log(rf"New client connected from \S+ as {cn} .*u'{cn}'")
    c8y_standin.wait_for_smartrest("102", lambda f: f[1].startswith(cn + ":") and f[-1] == "up")
    assert_bridges_both_ways(local_broker, c8y_standin, mqtt_subscriber, key_type)
    assert "key=module" in m.log()
    assert PIN not in m.log()


def test_module_mode_with_the_pin_from_cryptoki_pin(pki, cloud_broker, local_broker, c8y_standin,
                                                    mapper, softhsm):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    cert = pki.device_cert("dev-default-pin", key.public_pem)
    settings = bridge_settings(cloud_broker, local_broker, cert, device__cryptoki__mode="module",
                               device__cryptoki__module_path=softhsm.module,
                               device__key_uri=key.uri, device__cryptoki__pin=PIN)
    mapper(settings, env=softhsm.env)
    wait_health(local_broker, UP)


def test_wrong_pin_is_not_retried(pki, cloud_broker, local_broker, mapper, softhsm):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    cert = pki.device_cert("dev-wrong-pin", key.public_pem)
    settings = bridge_settings(cloud_broker, local_broker, cert, **{
        k.replace(".", "__"): v for k, v in module_settings(softhsm, key, pin="999999").items()})
    m = mapper(settings, env=softhsm.env)
    assert m.proc.wait(30) == EXIT_CONFIG
    log = m.log()
    assert re.search(r"PIN.*incorrect|incorrect.*PIN", log, re.I), log
    assert "not retrying" in log
    # the PIN failed once (here already when the key was checked against the certificate) and
    # no further attempt was scheduled
    assert "retry_in=" not in log, "a wrong PIN was retried"
    assert len(re.findall(r"cloud: connecting to", log)) <= 1
    assert "999999" not in log


def test_token_key_that_does_not_match_the_certificate(pki, cloud_broker, local_broker, mapper,
                                                       softhsm):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    _, other_cert = pki.device_key_and_cert("dev-other", "ec-p256", variant="other")
    settings = bridge_settings(cloud_broker, local_broker, other_cert, **{
        k.replace(".", "__"): v for k, v in module_settings(softhsm, key).items()})
    m = mapper(settings, env=softhsm.env)
    assert m.proc.wait(30) == EXIT_CONFIG
    assert "does not match the certificate" in m.log()
    assert "New client connected" not in cloud_broker.log_text()


def test_module_path_missing(pki, cloud_broker, local_broker, mapper):
    key, cert = pki.device_key_and_cert("dev-nomodule", "ec-p256")
    m = mapper(bridge_settings(cloud_broker, local_broker, cert, device__cryptoki__mode="module"))
    assert m.proc.wait(20) == EXIT_CONFIG
    assert "device.cryptoki.module_path" in m.log()


def test_socket_mode(pki, cloud_broker, local_broker, c8y_standin, mapper, softhsm, short_tmp_dir,
                     tmp_path, mqtt_subscriber):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    cert = pki.device_cert("dev-socket", key.public_pem)
    srv_config = tmp_path / "p11-server-config"
    srv_config.mkdir()
    srv = P11Server(softhsm, short_tmp_dir, srv_config).start(pin=PIN)
    try:
        settings = bridge_settings(cloud_broker, local_broker, cert,
                                   device__cryptoki__mode="socket",
                                   device__cryptoki__socket_path=str(srv.socket_path),
                                   device__key_uri=key.uri)
        mapper(settings)
        wait_health(local_broker, UP, timeout=20)
        cloud_broker.wait_for_log(r"New client connected from \S+ as dev-socket ")
        assert_bridges_both_ways(local_broker, c8y_standin, mqtt_subscriber, "socket")
        assert srv.requests("sign"), "the daemon signed nothing"
    finally:
        srv.stop()


def socket_settings(cloud_broker, local_broker, cert, socket_path, key, pin=None):
    extra = {"device__cryptoki__mode": "socket", "device__cryptoki__socket_path": str(socket_path),
             "device__key_uri": key.uri}
    if pin is not None:
        extra["device__key_pin"] = pin
    return bridge_settings(cloud_broker, local_broker, cert, **extra)


def test_socket_daemon_unreachable_is_retried_until_it_serves(pki, cloud_broker, local_broker,
                                                               c8y_standin, mapper, softhsm,
                                                               short_tmp_dir, tmp_path):
    """tedge-p11-server not running yet: each attempt logs why, and the bridge connects once the
    daemon serves (a boot-order race must not need a restart)."""
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    cert = pki.device_cert("dev-socket-late", key.public_pem)
    srv_config = tmp_path / "p11-server-config"
    srv_config.mkdir()
    srv = P11Server(softhsm, short_tmp_dir, srv_config)
    m = mapper(socket_settings(cloud_broker, local_broker, cert, srv.socket_path, key))
    wait_until(lambda: len(re.findall(r"cloud: connection attempt \d+ failed", m.log())) >= 2,
               timeout=30, what="two failed attempts")
    causes = re.findall(r"cloud: connection attempt \d+ failed: (.*) retry_in=", m.log())
    assert all(str(srv.socket_path) in c or "tedge-p11-server" in c for c in causes), causes
    srv.start(pin=PIN)
    try:
        wait_health(local_broker, UP, timeout=30)
    finally:
        srv.stop()


def test_socket_mode_wrong_pin_is_not_retried(pki, cloud_broker, local_broker, mapper, softhsm,
                                              short_tmp_dir, tmp_path):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    cert = pki.device_cert("dev-socket-pin", key.public_pem)
    srv_config = tmp_path / "p11-server-config"
    srv_config.mkdir()
    srv = P11Server(softhsm, short_tmp_dir, srv_config).start()  # no PIN of its own
    try:
        m = mapper(socket_settings(cloud_broker, local_broker, cert, srv.socket_path, key,
                                   pin="999999"))
        assert m.proc.wait(30) == EXIT_CONFIG
        log = m.log()
        assert re.search(r"PIN.*incorrect|incorrect.*PIN", log, re.I), log
        assert "retry_in=" not in log and "not retrying" in log
        assert "999999" not in log
    finally:
        srv.stop()


def test_socket_mode_survives_a_daemon_restart(pki, cloud_broker, local_broker, c8y_standin,
                                               mapper, softhsm, short_tmp_dir, tmp_path,
                                               mqtt_subscriber):
    """tedge-p11-server stops while the bridge is up (the TLS session needs no signature, so it
    stays up); a cloud restart forces a new handshake, which fails while the daemon is away,
    with the socket named; once the daemon is back the bridge reconnects by itself and messages
    flow. The new daemon's first request is the signer's ping before the handshake, not a
    signature in the middle of one."""
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    cert = pki.device_cert("dev-socket-restart", key.public_pem)
    srv_config = tmp_path / "p11-server-config"
    srv_config.mkdir()
    srv = P11Server(softhsm, short_tmp_dir, srv_config).start(pin=PIN)
    try:
        m = mapper(socket_settings(cloud_broker, local_broker, cert, srv.socket_path, key))
        wait_health(local_broker, UP, timeout=20)
        assert_bridges_both_ways(local_broker, c8y_standin, mqtt_subscriber, "before")

        assert srv.stop() == 0
        mark = len(m.log())
        cloud_broker.restart()
        wait_until(lambda: re.search(r"cloud: connection attempt \d+ failed: .*"
                                     + re.escape(str(srv.socket_path)), m.log()[mark:]),
                   timeout=30, what="a failed attempt that names the daemon's socket")
        assert read_health(local_broker) == DOWN
        assert m.running

        srv.start(pin=PIN)
        wait_health(local_broker, UP, timeout=30)
        c8y_standin.wait_connected(30)
        assert_bridges_both_ways(local_broker, c8y_standin, mqtt_subscriber, "after")
        ops = [r["op"] for r in srv.requests()]
        assert ops and ops[0] == "ping", srv.log()
        assert any(r["op"] == "sign" and r["result"] == "ok" for r in srv.requests()), srv.log()
    finally:
        srv.stop()
