"""pytest fixtures for the tedge-hsm integration tests (API in tests/integration/README.md).

Declares the fixtures over tests/integration/fixtures/ and the hooks that stop leftover processes
and attach daemon and broker logs to the report of a failed test.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from fixtures import brokers, util
from fixtures.keys import KeyCache
from fixtures.mqtt import mqtt_subscriber as _mqtt_subscriber
from fixtures.p11server import p11_server_fixture
from fixtures.pki import Pki
from fixtures.softhsm import SoftHSM


# ---- hooks ---------------------------------------------------------------------------------

def pytest_report_header(config):
    return [f"tedge build dir (TEDGE_BUILD_DIR): {util.build_dir()}"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (item.rep_setup/rep_call/rep_teardown) and, once per
    failed test, add the logs of the daemons and brokers it used as report sections."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed and not getattr(item, "_tedge_logs_attached", False):
        item._tedge_logs_attached = True
        for title, text in util.failure_sections():
            if text.strip():
                rep.sections.append((title, text))


@pytest.fixture(autouse=True)
def _tedge_test_guard(tmp_path):
    """Forget the previous test's logs and put Proc output under this test's tmp_path; after the
    test, stop every Proc it started and left running."""
    util.begin_test()
    util.set_scratch_dir(tmp_path / "procs")
    before = set(util.live_procs())
    yield
    util.stop_procs([p for p in util.live_procs() if p.autostop and p not in before])


def pytest_sessionfinish(session, exitstatus):
    for p in util.live_procs():
        p.kill()


# ---- session-wide caches -------------------------------------------------------------------

@pytest.fixture(scope="session")
def key_cache(tmp_path_factory):
    """KeyCache shared by all xdist workers of this run (each key type generated once)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's basetemp; workers get <basetemp>/popen-gwN
    return KeyCache(base / "tedge-keycache")


# ---- per-test fixtures ---------------------------------------------------------------------

@pytest.fixture
def softhsm(tmp_path, key_cache):
    """A private SoftHSM2 (own SOFTHSM2_CONF and token dir); see fixtures/softhsm.py."""
    return SoftHSM(tmp_path / "softhsm", key_cache=key_cache)


@pytest.fixture
def pki(tmp_path, key_cache):
    """A throwaway CA with server/device certificate helpers; see fixtures/pki.py."""
    return Pki(tmp_path / "pki", key_cache)


def _broker_factory(tmp_path, build, prefix, **defaults):
    """Body of a broker factory fixture: yields make(**opts) -> a broker from build() in its own
    dir under tmp_path (named prefix, prefix-2, ...); stops every one of them at teardown."""
    made = []

    def make(**opts):
        for key, value in defaults.items():
            opts.setdefault(key, value)
        opts.setdefault("name", f"{prefix}-{len(made) + 1}" if made else prefix)
        broker = build(tmp_path / opts["name"], **opts)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture
def make_cloud_broker(tmp_path, pki):
    """Factory: make_cloud_broker(**opts) -> started TLS Mosquitto; opts as brokers.cloud_broker
    (pki, name, client_ca, require_certificate, use_identity_as_username, server_cn, sans,
    server_key_type, tls_version, ciphers, allow_anonymous, extra_conf, log_type, start).
    All are stopped at teardown."""
    yield from _broker_factory(tmp_path, brokers.cloud_broker, "cloud-broker", pki=pki)


@pytest.fixture
def cloud_broker(make_cloud_broker):
    """A started TLS mosquitto requiring client certificates from `pki` (CN becomes username)."""
    return make_cloud_broker()


@pytest.fixture
def make_local_broker(tmp_path):
    """Factory: make_local_broker(name=..., extra_conf=(), log_type="all", start=True) -> started
    plain MQTT Mosquitto with anonymous access. All are stopped at teardown."""
    yield from _broker_factory(tmp_path, brokers.local_broker, "local-broker")


@pytest.fixture
def local_broker(make_local_broker):
    """A started plain-TCP mosquitto on 127.0.0.1 with allow_anonymous (like tedge's local broker)."""
    return make_local_broker()


@pytest.fixture
def tedge_dir(tmp_path):
    """An empty config directory for `tedge --config-dir` (pathlib.Path)."""
    path = tmp_path / "tedge-config"
    path.mkdir()
    return path


@pytest.fixture
def short_tmp_dir():
    """A fresh directory with a short path under the system temp dir, for Unix sockets
    (sun_path holds at most 107 bytes, and pytest's tmp_path can be long). Removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="te-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mqtt_subscriber():
    """Factory: mqtt_subscriber(host, port, topics, tls=None, qos=1, client_id=None) -> connected
    and subscribed MqttClient (fixtures/mqtt.py). tls = {"ca_cert", "cert", "key"}. All are
    disconnected at teardown."""
    made = []

    def make(host, port, topics, tls=None, **kwargs):
        client = _mqtt_subscriber(host, port, topics, tls=tls, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


@pytest.fixture
def p11_server(softhsm, short_tmp_dir, tmp_path):
    """A tedge-p11-server (fixtures/p11server.py, not started yet) on a short socket path, with
    its own empty config dir; every run is stopped at teardown and must have exited cleanly."""
    config_dir = tmp_path / "p11-server-config"
    config_dir.mkdir()
    yield from p11_server_fixture(softhsm, short_tmp_dir, config_dir)
