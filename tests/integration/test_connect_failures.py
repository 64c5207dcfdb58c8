"""`tedge connect c8y` failure paths: each fails with a message that says what failed and what to
do, exits non-zero, never shows a PIN, and leaves the device disconnected (no bridge marker, no
mapper started). Real SoftHSM2 token, real brokers, real tedge-p11-server.
"""

import pytest

from fixtures.demo import ConnectEnv
from test_connect import MAPPER, setup_device

WRONG_PIN = "987654"


@pytest.fixture
def device(tmp_path, softhsm, pki, cloud_broker, local_broker):
    env = ConnectEnv(tmp_path / "device", softhsm, pki, cloud_broker, local_broker)
    yield env
    problems = env.close()
    assert not problems, "\n\n".join(problems)


def assert_not_connected(env, cp):
    assert cp.returncode != 0, cp.stderr
    assert not env.marker.exists()
    assert f"start {MAPPER}" not in env.actions()
    assert env.service_pid(MAPPER) is None


def assert_step_failed(cp, step="Creating device in Cumulocity cloud"):
    assert f"{step}... ✗\nerror: " in cp.stderr, cp.stderr


@pytest.mark.parametrize("mode", ["module", "socket"])
@pytest.mark.parametrize("where", ["pin-value", "key_pin"])
def test_wrong_pin(device, mode, where):
    device.add_device_key("ec-p256")
    if mode == "socket":
        device.start_p11_server()
    if where == "pin-value":
        device.configure(mode=mode, key_uri=f"{device.key.uri}?pin-value={WRONG_PIN}")
    else:
        device.configure(mode=mode, key_pin=WRONG_PIN)
    device.start_standin()
    cp = device.tedge("connect", "c8y")
    assert_not_connected(device, cp)
    assert_step_failed(cp)
    assert "incorrect" in cp.stderr.lower()
    assert "tedge config set c8y.device.key_pin <PIN>" in cp.stderr
    assert WRONG_PIN not in cp.stdout + cp.stderr
    # the summary shows the key without its pin-value
    assert f"cryptoki: {mode} (key: {device.key.uri})" in cp.stderr
    # the cloud never saw a connection from the device
    assert f" as {device.device_id} " not in device.cloud.log_text()


def test_daemon_stopped(device):
    setup_device(device, "socket")
    device.p11.stop()
    cp = device.tedge("connect", "c8y")
    assert_not_connected(device, cp)
    assert_step_failed(cp)
    assert "tedge-p11-server" in cp.stderr
    assert str(device.socket_path) in cp.stderr
    assert "Start tedge-p11-server" in cp.stderr or "systemctl start" in cp.stderr


@pytest.mark.parametrize("mode", ["module", "socket"])
def test_key_does_not_match_certificate(device, mode):
    device.add_device_key("ec-p256")
    other = device.softhsm.add_key(device.token, "ec-p256", label="other-key", id="02", variant=1)
    if mode == "socket":
        device.start_p11_server()
    device.configure(mode=mode, key_uri=other.uri)
    device.start_standin()
    cp = device.tedge("connect", "c8y")
    assert_not_connected(device, cp)
    assert_step_failed(cp)
    assert f"does not match the certificate '{device.cert}'" in cp.stderr
    assert f" as {device.device_id} " not in device.cloud.log_text()


def test_no_certificate(device):
    setup_device(device, "module")
    missing = device.dir / "no-such-cert.pem"
    device.configure(mode="module", extra={"device.cert_path": missing})
    cp = device.tedge("connect", "c8y")
    assert_not_connected(device, cp)
    assert cp.stderr.startswith("Error: failed to connect to Cumulocity cloud.\n\nCaused by:\n")
    assert f"No device certificate found at '{missing}'" in cp.stderr
    assert "Run `tedge cert create --device-id <id>`" in cp.stderr


def test_cloud_rejects_device_certificate(device):
    """A certificate from a CA the cloud does not trust: the TLS handshake is refused."""
    device.add_device_key("ec-p256")
    other_ca = device.pki.other_ca()
    device.cert = other_ca.device_cert(device.device_id, device.key.public_pem)
    device.configure(mode="module")
    device.start_standin()
    cp = device.tedge("connect", "c8y")
    assert_not_connected(device, cp)
    assert_step_failed(cp)
    assert "rejected the device certificate" in cp.stderr
    assert "upload it to the tenant's trusted certificates" in cp.stderr
    assert cp.stderr.count("rejected the device certificate") == 1  # no log line repeating it


def test_cloud_unreachable(device):
    device.add_device_key("ec-p256")
    device.configure(mode="module")
    device.cloud.stop()
    cp = device.tedge("connect", "c8y")
    assert_not_connected(device, cp)
    assert_step_failed(cp)
    assert f"Cannot connect to {device.cloud.host}:{device.cloud.port}" in cp.stderr
    assert "The cloud endpoint comes from 'c8y.mqtt'" in cp.stderr
    assert cp.stderr.count("Cannot connect to") == 1


def test_missing_url(device):
    device.add_device_key("ec-p256")
    device.write_tedge_toml({"device.cert_path": device.cert, "device.cryptoki.mode": "module",
                             "device.cryptoki.module_path": device.softhsm.module})
    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 1
    assert ("Required configuration item is not provided 'c8y.url', run 'tedge config set "
            "c8y.url <value>' to add it to config.") in cp.stderr


def test_verification_fails_when_cloud_does_not_answer(device):
    """--test after the cloud stopped answering s/uat: one check, then a clear failure."""
    setup_device(device, "module")
    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 0, cp.stderr
    device.standin.answer_jwt = False
    cp = device.tedge("connect", "c8y", "--test")
    assert cp.returncode == 1
    assert_step_failed(cp, "Verifying device is connected to cloud")
    assert "Connection check failed. Failed to verify device is connected to Cumulocity: " \
           "No reply on c8y/s/dat within 10 s (bridge health: up)." in cp.stderr
    assert "Check that tedge-mapper-c8y runs" in cp.stderr


def test_service_manager_failure_cleans_up(device):
    """A failing `restart mosquitto` removes the marker again (upstream's clean-up)."""
    setup_device(device, "module")
    toml = device.config_dir / "system.toml"
    toml.write_text(toml.read_text().replace('restart = [', 'restart = ["false", "{}", '))
    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 1
    assert "Restarting mosquitto... ✗\nerror: Service command <\"false mosquitto" in cp.stderr
    assert f"Cleaning up {device.marker} due to failure... ✓" in cp.stderr
    assert not device.marker.exists()


def test_service_manager_unavailable(device):
    """Upstream: the device is created and the marker written, then the user starts services."""
    setup_device(device, "module")
    toml = device.config_dir / "system.toml"
    toml.write_text(toml.read_text().replace('is_available = [', 'is_available = ["false", '))
    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 0, cp.stderr
    assert "warning: 'svcctl' service manager is not available on the system." in cp.stderr
    assert "Creating device in Cumulocity cloud... ✓" in cp.stderr
    assert "you will have to start the required services on your own" in cp.stderr
    assert device.marker.exists()
    assert device.service_pid(MAPPER) is None


def test_invalid_system_toml(device):
    setup_device(device, "module")
    (device.config_dir / "system.toml").write_text('[init]\nrestart = "systemctl restart {}"\n')
    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 1
    assert "system.toml:2:1: `init.restart` must be an array" in cp.stderr
    assert not device.marker.exists()


def test_connect_verification_times_out(device):
    """The cloud accepts the device but never answers s/uat: 5 checks with backoff, upstream's
    warning, then a failure that says where to look. The bridge stays configured (as upstream),
    so `tedge reconnect c8y` is the way to retry."""
    device.add_device_key("ec-p256")
    device.configure(mode="module")
    device.start_standin(answer_jwt=False)
    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 1, cp.stderr
    assert cp.stderr.count("Verifying device is connected to cloud... ✗") == 5
    assert "Connection test failed, attempt 4 of 5" in cp.stderr
    assert "warning: Bridge has been configured, but Cumulocity connection check failed." in cp.stderr
    assert "No reply on c8y/s/dat within 10 s (bridge health: up)." in cp.stderr
    assert "Check the mapper's log" in cp.stderr and "`tedge reconnect c8y`" in cp.stderr
    assert "Checking Cumulocity is connected to intended tenant" not in cp.stderr
    assert device.marker.exists()
    assert device.service_pid(MAPPER) is not None
    assert len(device.standin.received("s/uat")) == 5
