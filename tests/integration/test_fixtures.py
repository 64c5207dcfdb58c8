"""Proves the integration fixtures against the real tools: SoftHSM2 keys, the PKI, mosquitto brokers.

If one of these fails, the tests built on the fixtures cannot be trusted; fix this file's failures first.
"""

import datetime
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from fixtures.keys import KEY_TYPES, key_type_of, public_der
from fixtures.mqtt import MqttClient
from fixtures.pki import utcnow
from fixtures.util import (COMMAND_PACKAGES, CommandError, MissingDependency, Proc, bin_path, free_port,
                           mock_module_path, require_commands, run, tool_path, wait_for_port,
                           wait_for_unix_socket, wait_until)

ALL_KEY_TYPES = sorted(KEY_TYPES)


# ---- the tools the fixtures depend on -------------------------------------------------------

def test_required_commands_are_installed():
    paths = require_commands(*COMMAND_PACKAGES)
    assert all(os.access(p, os.X_OK) for p in paths.values())
    assert os.path.exists("/usr/lib/softhsm/libsofthsm2.so"), "SoftHSM2 missing: run 'make deps'"


def test_missing_command_is_reported_with_make_deps():
    with pytest.raises(MissingDependency, match=r"no-such-tool-x.*make deps"):
        require_commands("openssl", "no-such-tool-x")
    with pytest.raises(MissingDependency, match=r"make deps"):
        run(["no-such-tool-x", "--version"])


def test_run_failure_shows_stdout_and_stderr():
    with pytest.raises(CommandError) as e:
        run(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
    assert e.value.returncode == 3
    assert "to-stdout" in str(e.value) and "to-stderr" in str(e.value)
    assert run(["sh", "-c", "exit 4"], check=False).returncode == 4


# ---- processes and waits --------------------------------------------------------------------

def _is_dead(pid):
    """True when `pid` is gone or a zombie (killed, waiting for init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_proc_stop_escalates_to_sigkill_and_reaps_the_group(tmp_path):
    # The shell ignores SIGTERM and leaves a child behind: both must be gone after stop().
    p = Proc(["sh", "-c", "trap '' TERM; sleep 60 & echo child=$!; wait"], log_dir=tmp_path).start()
    child = int(p.wait_for_output(r"child=(\d+)").group(1))
    assert p.stop(timeout=0.5) == -signal.SIGKILL
    assert p.stop_escalated and not p.running
    wait_until(lambda: _is_dead(child), timeout=5, what=f"child {child} killed")


def test_paths_follow_tedge_build_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TEDGE_BUILD_DIR", str(tmp_path))
    assert bin_path("tedge") == tmp_path / "bin" / "tedge"
    assert tool_path("p11drv") == tmp_path / "tests" / "tools" / "p11drv"
    assert mock_module_path() == tmp_path / "tests" / "libmockp11.so"
    with pytest.raises(MissingDependency, match="has not been built"):
        run([bin_path("tedge"), "--version"])


def test_proc_stdin_and_output(tmp_path):
    p = Proc(["sh", "-c", "echo ready; read line; echo got:$line; echo oops >&2"], stdin=True,
             log_dir=tmp_path).start()
    p.wait_for_output(r"^ready$")  # multi-line: ^ and $ anchor at lines
    p.send("hello\n")
    assert p.wait(5) == 0
    assert "got:hello" in p.stdout_text() and "oops" in p.stderr_text()
    assert "got:hello" in p.output() and "oops" in p.output()


def test_wait_helpers_tcp_and_unix(short_tmp_dir):
    path = short_tmp_dir / "s.sock"
    with socket.socket() as tcp, socket.socket(socket.AF_UNIX) as unix:
        tcp.bind(("127.0.0.1", 0))  # bound, not listening: refused, and no one else can take it
        port = tcp.getsockname()[1]
        with pytest.raises(TimeoutError):
            wait_for_port("127.0.0.1", port, timeout=0.2)
        tcp.listen()
        wait_for_port("127.0.0.1", port, timeout=5)
        unix.bind(str(path))
        unix.listen()
        wait_for_unix_socket(path, timeout=5)
    with pytest.raises(TimeoutError):
        wait_for_unix_socket(short_tmp_dir / "absent.sock", timeout=0.2)


def test_wait_fails_fast_when_the_daemon_exits(tmp_path):
    p = Proc(["sh", "-c", "echo cannot start; exit 2"], log_dir=tmp_path).start()
    with pytest.raises(RuntimeError, match="cannot start"):
        wait_for_port("127.0.0.1", free_port(), timeout=30, proc=p)


def test_failed_test_shows_broker_log_and_leftover_processes_are_stopped(tmp_path):
    # A child pytest using this conftest: a failing test's report must carry the broker log, and
    # a daemon a test forgot to stop must be gone when the test ends.
    pids = tmp_path / "pids"
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(f"""
        from fixtures.util import Proc

        def test_fails(local_broker):
            open({str(pids)!r}, "a").write(f"{{local_broker.proc.pid}}\\n")
            assert local_broker.port == 0

        def test_forgets_to_stop_its_daemon():
            p = Proc(["sleep", "300"]).start()
            open({str(pids)!r}, "a").write(f"{{p.pid}}\\n")

        def test_earlier_processes_are_gone():
            import os, pytest
            for pid in open({str(pids)!r}).read().split():
                with pytest.raises(ProcessLookupError):
                    os.kill(int(pid), 0)
    """))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    cp = run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q",
              "-p", "no:xdist", str(tmp_path / "test_inner.py")], env=env, cwd=tmp_path, check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "1 failed, 2 passed" in cp.stdout
    assert "local-broker log" in cp.stdout
    assert "mosquitto version 2.0.11 running" in cp.stdout
    started = [int(x) for x in pids.read_text().split()]
    assert len(started) == 2
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# ---- SoftHSM2 ------------------------------------------------------------------------------

def _sign_and_verify_on_token(softhsm, key, tmp_path):
    """Sign with the token key (pkcs11-tool) and verify with openssl against key.public_pem."""
    data = tmp_path / "data.bin"
    data.write_bytes(b"tedge-hsm fixture check\n")
    sig = tmp_path / "sig.bin"
    if key.key_type.startswith("rsa"):
        mech, signed = "SHA256-RSA-PKCS", data
    else:
        # SoftHSM 2.6 has no CKM_ECDSA_SHA256: hash on the host, sign the digest with CKM_ECDSA.
        mech, signed = "ECDSA", tmp_path / "digest.bin"
        signed.write_bytes(run(["openssl", "dgst", "-sha256", "-binary", data], text=False).stdout)
    softhsm.pkcs11_tool(key.token, "--sign", "--mechanism", mech, "--label", key.label,
                        "--signature-format", "openssl", "--input-file", signed, "--output-file", sig)
    out = run(["openssl", "dgst", "-sha256", "-verify", key.public_pem, "-signature", sig, data])
    assert "Verified OK" in out.stdout


@pytest.mark.parametrize("key_type", ALL_KEY_TYPES)
def test_imported_key_public_part_matches_file(softhsm, key_type, tmp_path):
    token = softhsm.init_token(label="imp")
    key = softhsm.add_key(token, key_type, label="k", id="a1")
    assert key.key_file is not None and key.uri == "pkcs11:token=imp;object=k;type=private"
    exported = softhsm.export_public_key(key, tmp_path / "exported.pem")
    assert public_der(exported) == public_der(key.key_file, private=True)
    assert key_type_of(exported, private=False) == key_type
    # softhsm2-util --import creates both objects (the core must also cope with private-only).
    objects = softhsm.list_objects(token)
    assert "Private Key Object" in objects and "Public Key Object" in objects
    _sign_and_verify_on_token(softhsm, key, tmp_path)


@pytest.mark.parametrize("key_type", ALL_KEY_TYPES)
def test_generated_key_signs_and_exports(softhsm, key_type, tmp_path):
    token = softhsm.init_token(label="gen")
    key = softhsm.generate_key(token, key_type, label="g", id="02")
    assert key.key_file is None
    assert key_type_of(key.public_pem, private=False) == key_type
    _sign_and_verify_on_token(softhsm, key, tmp_path)


def test_private_only_import_and_token_lifecycle(softhsm):
    t1 = softhsm.init_token(label="one", pin="1111")
    t2 = softhsm.init_token(label="two")
    assert t1.serial != t2.serial
    ec = softhsm.add_key(t1, "ec-p256", label="ec-private", id="01", public_object=False)
    rsa = softhsm.add_key(t1, "rsa-2048", label="rsa-private", id="02", public_object=False)
    objects = softhsm.list_objects(t1)
    assert objects.count("Private Key Object") == 2 and "Public Key Object" not in objects
    # SoftHSM's EC private object has no EC point, so the token cannot give its public key ...
    with pytest.raises(CommandError, match="not available"):
        softhsm.export_public_key(ec)
    # ... public_pem then comes from the key file; an RSA private object still exports.
    assert public_der(ec.public_pem) == public_der(ec.key_file, private=True)
    assert public_der(softhsm.export_public_key(rsa)) == public_der(rsa.key_file, private=True)
    softhsm.delete_token(t2)
    labels = softhsm.softhsm2_util("--show-slots").stdout
    assert "two" not in labels and "one" in labels


def test_key_variants_are_distinct_and_cached(softhsm, key_cache):
    token = softhsm.init_token()
    a = softhsm.add_key(token, "ec-p256", label="a", id="01")
    b = softhsm.add_key(token, "ec-p256", label="b", id="02", variant=1)
    assert public_der(a.public_pem) != public_der(b.public_pem)
    assert key_cache.get("ec-p256") == a.key_file  # same file: generated once per run
    assert a.id_uri == "pkcs11:token=tedge;id=%01;type=private"


def test_softhsm_is_private_to_the_test(softhsm):
    assert softhsm.env["SOFTHSM2_CONF"] == str(softhsm.conf)
    assert "/etc" not in softhsm.conf.read_text()
    softhsm.init_token(label="mine")
    out = softhsm.softhsm2_util("--show-slots").stdout
    assert out.count("Initialized:      yes") == 1


# ---- PKI -----------------------------------------------------------------------------------

def test_device_cert_for_token_key_has_exactly_that_key(softhsm, pki, tmp_path):
    key = softhsm.add_key(softhsm.init_token(), "ec-p384")
    cert = pki.device_cert("token-device", key.public_pem)
    assert public_der(pki.public_key_of_cert(cert, tmp_path / "p.pem")) == public_der(key.public_pem)
    assert pki.verify(cert).returncode == 0
    assert pki.subject_cn(cert) == "token-device"
    assert pki.other_ca().verify(cert).returncode != 0


def test_expired_and_future_certs_have_valid_signatures(pki):
    now = utcnow()
    _, old = pki.device_key_and_cert("old", not_before=now - datetime.timedelta(days=9),
                                     not_after=now - datetime.timedelta(days=1))
    _, future = pki.device_key_and_cert("future", not_before=now + datetime.timedelta(days=1))
    # error 10/9 (dates), not 7 (signature failure): the re-signed certificate is genuine.
    assert "error 10 " in pki.verify(old).stderr
    assert "error 9 " in pki.verify(future).stderr


# ---- brokers -------------------------------------------------------------------------------

def test_cloud_broker_accepts_device_cert_and_uses_cn_as_username(cloud_broker, pki, mqtt_subscriber):
    key, cert = pki.device_key_and_cert("fixture-device-1")
    skey, scert = pki.device_key_and_cert("fixture-watcher", variant="watcher")
    sub = mqtt_subscriber(cloud_broker.host, cloud_broker.port, "c8y/#",
                          tls={"ca_cert": cloud_broker.ca_cert, "cert": scert, "key": skey})
    cp = cloud_broker.mosquitto_pub("c8y/s/us", "200,c8y_Test,T,1", cert=cert, key=key, qos=1)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "received PUBACK" in cp.stdout
    cloud_broker.wait_for_log(r"New client connected .* u'fixture-device-1'\)")
    assert sub.wait_for_message("c8y/s/us").payload == b"200,c8y_Test,T,1"


def test_cloud_broker_refuses_cert_from_another_ca(cloud_broker, pki):
    key, cert = pki.other_ca().device_key_and_cert("intruder")
    mark = cloud_broker.log_mark()
    cp = cloud_broker.mosquitto_pub("c8y/s/us", "x", cert=cert, key=key)
    assert cp.returncode != 0
    cloud_broker.wait_for_log(r"OpenSSL Error.*certificate verify failed", since=mark)
    assert "u'intruder'" not in cloud_broker.log_text()


def test_cloud_broker_refuses_client_without_cert(cloud_broker):
    mark = cloud_broker.log_mark()
    cp = cloud_broker.mosquitto_pub("c8y/s/us", "x")
    assert cp.returncode != 0
    cloud_broker.wait_for_log(r"peer did not return a certificate", since=mark)


def test_cloud_broker_refuses_expired_cert(cloud_broker, pki):
    key, cert = pki.device_key_and_cert("expired", not_after=utcnow() - datetime.timedelta(hours=1))
    mark = cloud_broker.log_mark()
    assert cloud_broker.mosquitto_pub("c8y/s/us", "x", cert=cert, key=key).returncode != 0
    cloud_broker.wait_for_log(r"OpenSSL Error.*certificate (has expired|verify failed)", since=mark)


def test_local_broker_pub_reaches_paho_subscriber(local_broker, mqtt_subscriber):
    sub = mqtt_subscriber(local_broker.host, local_broker.port, ["te/#", "other/+"])
    cp = local_broker.mosquitto_pub("te/device/main///m/", '{"temp": 21}', qos=1)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    msg = sub.wait_for_message("te/#")
    assert msg.topic == "te/device/main///m/" and msg.payload == b'{"temp": 21}' and msg.qos == 1
    assert sub.received("other/+") == []


def test_queue_limit_is_above_mosquitto_default(local_broker):
    # 1500 QoS1 messages queued for an offline persistent session (mosquitto's default keeps 1000).
    with MqttClient(local_broker.host, local_broker.port, client_id="slow", clean_session=False) as sub:
        sub.connect().subscribe("bulk/#")
    with MqttClient(local_broker.host, local_broker.port) as pub:
        pub.connect()
        for i in range(1500):
            pub.publish("bulk/x", str(i), qos=1)
    with MqttClient(local_broker.host, local_broker.port, client_id="slow", clean_session=False) as sub:
        sub.connect()
        got = sub.wait_for(1500, "bulk/#", timeout=30)
        assert [m.payload for m in got] == [str(i).encode() for i in range(1500)]


def test_cloud_broker_restarts_on_the_same_port(cloud_broker, pki):
    key, cert = pki.device_key_and_cert("restart-device")
    port = cloud_broker.port
    cloud_broker.stop()
    assert not cloud_broker.running
    with pytest.raises(OSError):
        socket.create_connection((cloud_broker.host, port), timeout=2).close()
    assert cloud_broker.mosquitto_pub("a", "down", cert=cert, key=key).returncode != 0
    cloud_broker.start()
    assert cloud_broker.port == port and cloud_broker.starts == 2
    cp = cloud_broker.mosquitto_pub("a", "up", cert=cert, key=key)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    mark = cloud_broker.log_mark()
    cloud_broker.restart()
    assert cloud_broker.port == port
    assert cloud_broker.mosquitto_pub("a", "again", cert=cert, key=key).returncode == 0
    cloud_broker.wait_for_log(r"u'restart-device'", since=mark)


def test_two_cloud_brokers_with_other_options(make_cloud_broker, pki):
    strict = make_cloud_broker(tls_version="tlsv1.2")
    other = make_cloud_broker(client_ca=pki.other_ca().ca_cert)
    assert strict.port != other.port and "tls_version tlsv1.2" in strict.conf_path.read_text()
    key, cert = pki.device_key_and_cert("both")
    assert strict.mosquitto_pub("t", "m", cert=cert, key=key).returncode == 0
    # `other` trusts only the other CA for clients: our device is refused there.
    assert other.mosquitto_pub("t", "m", cert=cert, key=key).returncode != 0


def test_tedge_dir_is_an_empty_private_directory(tedge_dir, tmp_path):
    assert tedge_dir.is_dir() and list(tedge_dir.iterdir()) == []
    assert tmp_path in tedge_dir.parents


def test_subprocess_sees_softhsm_token(softhsm):
    token = softhsm.init_token(label="visible")
    out = subprocess.run(["pkcs11-tool", "--module", softhsm.module, "-L"], env=softhsm.env,
                         capture_output=True, text=True, check=True).stdout
    assert "visible" in out and token.serial in out
