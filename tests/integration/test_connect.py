"""`tedge connect|reconnect|disconnect c8y` end to end: a SoftHSM2 key (in process or behind
tedge-p11-server), a real TLS mosquitto "cloud" with the Cumulocity stand-in, the real local
broker, and the real tedge-mapper run by the test init system (tests/demo/svcctl.py) that
tedge drives through <config-dir>/system.toml. Also the service steps around the bridge: the
tedge-agent step, and disconnect restarting a mosquitto that the init system runs.
"""

import re
import shutil

import pytest

from fixtures.demo import ConnectEnv
from fixtures.util import require_commands

KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-4096"]
MODES = ["module", "socket"]
MAPPER = "tedge-mapper-c8y"
STEPS_OK = [
    "Creating device in Cumulocity cloud... ✓",
    "Restarting mosquitto... ✓",
    "Waiting for mosquitto to be listening for connections... ✓",
    f"Enabling {MAPPER}... ✓",
    "Verifying device is connected to cloud... ✓",
    "Checking Cumulocity is connected to intended tenant... ✓",
]


@pytest.fixture
def device(tmp_path, softhsm, pki, cloud_broker, local_broker):
    """A ConnectEnv (fixtures/demo.py); every service, daemon and stand-in is stopped at the end
    and the daemon must have exited cleanly."""
    env = ConnectEnv(tmp_path / "device", softhsm, pki, cloud_broker, local_broker)
    yield env
    problems = env.close()
    assert not problems, "\n\n".join(problems)


def setup_device(env, mode, key_type="ec-p256", **config):
    env.add_device_key(key_type)
    if mode == "socket":
        env.start_p11_server()
    env.configure(mode=mode, **config)
    env.start_standin()
    return env


def summary(text):
    """The summary block as {name: value}."""
    return dict(m.groups() for m in re.finditer(r"^\t([a-z ]+): (.*)$", text, re.M))


def assert_connected(env, cp):
    assert cp.returncode == 0, cp.stderr
    for line in STEPS_OK:
        assert line in cp.stderr, cp.stderr
    assert "✗" not in cp.stderr
    assert env.marker.exists()
    assert env.marker.read_text().startswith("# This file is left empty as the built-in bridge")
    assert env.service_pid(MAPPER) is not None, env.service_log(MAPPER)
    assert env.service_enabled(MAPPER)
    # the cloud saw the device creation from the device itself (direct connection)
    assert ["100", env.device_id, "thin-edge.io"] in env.standin.smartrest("100")
    env.cloud.wait_for_log(rf"as {re.escape(env.device_id)} .*u'{re.escape(env.device_id)}'")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_connect_test_reconnect_disconnect(device, mode, key_type):
    setup_device(device, mode, key_type)

    cp = device.tedge("connect", "c8y")
    assert cp.stderr.startswith("Connecting to Cumulocity with config:\n")
    s = summary(cp.stderr)
    assert s["cryptoki"] == f"{mode} (key: {device.key.uri})"
    assert_connected(device, cp)
    assert s["device id"] == device.device_id
    assert s["cloud profile"] == "<none>"
    assert s["cloud host"] == f"{device.cloud.host}:{device.cloud.port}"
    assert s["auth type"] == "Certificate"
    assert s["certificate file"] == str(device.cert)
    assert s["bridge"] == "built-in"
    assert s["service manager"] == "svcctl"
    # upstream's order of service actions
    assert device.actions()[:6] == ["is_available", "stop mosquitto", "restart mosquitto",
                                    "enable mosquitto", f"start {MAPPER}", f"enable {MAPPER}"]

    # the bridge carries traffic: the JWT request went through it and was answered
    assert device.standin.jwt_requests >= 1
    if mode == "socket":
        # the daemon signed the handshakes: tedge's own (device creation) and the mapper's
        signs = device.p11.requests("sign")
        assert len(signs) >= 2 and all(r["result"] == "ok" for r in signs), device.p11.log()

    cp = device.tedge("connect", "c8y", "--test")
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.startswith("Testing connection to Cumulocity with config:\n")
    assert "Verifying device is connected to cloud... ✓" in cp.stderr
    assert cp.stderr.rstrip().endswith("Connection check to Cumulocity cloud is successful.")

    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 1
    assert ("Connection is already established. To remove the existing connection, run "
            "`tedge disconnect c8y` and try again.") in cp.stderr
    assert "Creating device" not in cp.stderr

    mapper_pid = device.service_pid(MAPPER)
    cp = device.tedge("reconnect", "c8y")
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.startswith("Disconnecting from Cumulocity\nRemoving bridge config file... ✓\n")
    assert f"Disabling {MAPPER}... ✓" in cp.stderr
    assert "Reconnecting to Cumulocity with config:" in cp.stderr
    assert_connected(device, cp)
    assert device.service_pid(MAPPER) != mapper_pid  # a new mapper process

    cp = device.tedge("disconnect", "c8y")
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.splitlines() == ["Removing bridge config file... ✓",
                                      f"Disabling {MAPPER}... ✓"]
    assert not device.marker.exists()
    assert device.service_pid(MAPPER) is None
    assert not device.service_enabled(MAPPER)

    cp = device.tedge("disconnect", "c8y")
    assert cp.returncode == 0, cp.stderr
    assert "Bridge doesn't exist. Device is already disconnected from Cumulocity." in cp.stderr
    cp = device.tedge("connect", "c8y", "--test")
    assert cp.returncode == 1
    assert "Device is not connected to Cumulocity cloud" in cp.stderr


def test_key_file_mode(device):
    """Mode off (a key file) goes through the same flow."""
    setup_device(device, "off")
    cp = device.tedge("connect", "c8y")
    assert_connected(device, cp)
    assert summary(cp.stderr)["cryptoki"] == "off"


def test_messages_flow_both_ways_after_connect(device, mqtt_subscriber):
    setup_device(device, "module")
    assert_connected(device, device.tedge("connect", "c8y"))
    local = mqtt_subscriber(device.local.host, device.local.port, ["c8y/s/ds"])
    local.publish("c8y/measurement/measurements/create", '{"temp":{"T":{"value":21}}}')
    msg = device.standin.wait_for_message("measurement/measurements/create")
    assert b'"value":21' in msg.payload
    device.standin.publish("s/ds", "510,tedge-hsm-device")
    assert local.wait_for_message("c8y/s/ds", b"510,tedge-hsm-device").qos == 1


def test_tenant_mismatch_is_a_warning(device):
    device.add_device_key("ec-p256")
    device.configure(mode="module", tenant_url="t1.configured.example")
    device.start_standin(tenant="t2.other.example")
    cp = device.tedge("connect", "c8y")
    assert cp.returncode == 0, cp.stderr
    assert "Checking Cumulocity is connected to intended tenant... ✓" in cp.stderr
    assert ("warning: The device is connected to t2.other.example, but the configured URL is "
            f"(mqtt={device.cloud.host}:{device.cloud.port}, http=t1.configured.example).") in cp.stderr
    assert "remove the device certificate from t2.other.example, and then run `tedge reconnect c8y`" in cp.stderr


def test_profile(device):
    device.add_device_key("ec-p256")
    device.start_standin()
    c = device.cloud
    device.write_tedge_toml({
        "device.cryptoki.mode": "module",
        "device.cryptoki.module_path": device.softhsm.module,
        "device.cryptoki.pin": device.token.pin,
        "c8y.profiles.second.url": c.host,
        "c8y.profiles.second.mqtt": f"{c.host}:{c.port}",
        "c8y.profiles.second.root_cert_path": c.ca_cert,
        "c8y.profiles.second.bridge.topic_prefix": "c8y-second",
        "c8y.profiles.second.device.cert_path": device.cert,
        "c8y.profiles.second.device.key_uri": device.key.uri,
        "mqtt.client.host": device.local.host,
        "mqtt.client.port": device.local.port,
        "mqtt.bridge.reconnect_policy.initial_interval": "1s",
    })
    service = device.manage_mapper(profile="second")
    cp = device.tedge("connect", "c8y", "--profile", "second")
    assert cp.returncode == 0, cp.stderr
    assert summary(cp.stderr)["cloud profile"] == "second"
    assert f"Enabling {service}... ✓" in cp.stderr
    marker = device.config_dir / "mosquitto-conf" / "c8y@second-bridge.conf"
    assert marker.exists() and not device.marker.exists()
    assert device.service_pid(service) is not None
    cp = device.tedge("connect", "c8y", "--profile", "second")
    assert "run `tedge disconnect c8y --profile second` and try again" in cp.stderr
    cp = device.tedge("disconnect", "c8y", "--profile", "second")
    assert cp.returncode == 0, cp.stderr
    assert f"Disabling {service}... ✓" in cp.stderr
    assert not marker.exists()
    assert device.service_pid(service) is None


AGENT = "tedge-agent"
AGENT_ABSENT_INFO = ("info: Software management is not installed. So, skipping enabling related "
                     "components.")


def path_with(directory):
    """PATH for tedge: `directory` first, then only the system's bin dirs."""
    return f"{directory}:/usr/bin:/bin"


def test_tedge_agent_is_enabled_when_installed(device, tmp_path):
    """An executable tedge-agent on PATH: connect starts and enables it through the service
    manager (and svcctl really runs it)."""
    setup_device(device, "module")
    bindir = tmp_path / "agent-bin"
    bindir.mkdir()
    agent = bindir / AGENT
    agent.write_text("#!/bin/sh\nexec sleep 600\n")
    agent.chmod(0o755)
    device.manage_service(AGENT, [agent])
    cp = device.tedge("connect", "c8y", env=dict(device.env, PATH=path_with(bindir)))
    assert_connected(device, cp)
    assert f"Enabling {AGENT}... ✓" in cp.stderr
    assert AGENT_ABSENT_INFO not in cp.stderr
    actions = device.actions()
    # after the mapper, as upstream does it
    assert actions.index(f"start {AGENT}") > actions.index(f"enable {MAPPER}")
    assert actions.index(f"enable {AGENT}") > actions.index(f"start {AGENT}")
    assert device.service_enabled(AGENT)
    assert device.service_pid(AGENT) is not None, device.service_log(AGENT)


def test_tedge_agent_absent_is_upstreams_info_line(device, tmp_path):
    setup_device(device, "module")
    empty = tmp_path / "no-agent-bin"
    empty.mkdir()
    path = path_with(empty)
    assert shutil.which(AGENT, path=path) is None  # what "absent" means for this test
    cp = device.tedge("connect", "c8y", env=dict(device.env, PATH=path))
    assert_connected(device, cp)
    assert AGENT_ABSENT_INFO in cp.stderr
    assert f"Enabling {AGENT}" not in cp.stderr
    assert not any(a.endswith(f" {AGENT}") for a in device.actions()), device.actions()
    assert not device.service_enabled(AGENT)


def test_disconnect_restarts_a_running_mosquitto(device):
    """mosquitto run by the init system: connect restarts it, and disconnect asks whether it is
    active and restarts it ("Restarting mosquitto to apply configuration"); the init system's
    log and the broker's own log both show the restart, and the broker serves afterwards."""
    mosquitto = require_commands("mosquitto")["mosquitto"]
    local = device.local
    local.stop()  # the init system runs it from now on, same config and port
    device.manage_service("mosquitto", [mosquitto, "-c", local.conf_path])
    setup_device(device, "module")
    assert_connected(device, device.tedge("connect", "c8y"))
    before = device.service_pid("mosquitto")
    assert before is not None, device.service_log("mosquitto")
    mark = len(device.actions())
    broker_mark = local.log_mark()

    cp = device.tedge("disconnect", "c8y")
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.splitlines() == ["Removing bridge config file... ✓",
                                      "Restarting mosquitto to apply configuration... ✓",
                                      f"Disabling {MAPPER}... ✓"]
    actions = device.actions()[mark:]
    assert actions.index("is_active mosquitto") < actions.index("restart mosquitto"), actions
    after = device.service_pid("mosquitto")
    assert after is not None and after != before, device.service_log("mosquitto")
    # connect's restart and disconnect's restart: two starts in the init system's log
    assert device.service_log("mosquitto").count("--- svcctl: start") == 2
    local.wait_for_log(r"mosquitto version \S+ terminating", since=broker_mark)
    local.wait_for_log(r"mosquitto version \S+ running", since=broker_mark)
    assert device.service_pid(MAPPER) is None
    assert not device.service_enabled(MAPPER)


def test_help():
    from fixtures.util import bin_path, run
    cp = run([bin_path("tedge"), "connect", "c8y", "--help"])
    assert "Create connection to Cumulocity" in cp.stdout
    assert "--test" in cp.stdout and "--profile <PROFILE>" in cp.stdout
    cp = run([bin_path("tedge"), "--help"])
    for verb in ("connect", "disconnect", "reconnect"):
        assert re.search(rf"^  {verb} ", cp.stdout, re.M)
    cp = run([bin_path("tedge"), "connect", "c8y", "--bogus"], check=False)
    assert cp.returncode == 2 and "unexpected argument '--bogus'" in cp.stderr
