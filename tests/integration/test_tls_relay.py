"""The mbedTLS client with a signer-held key, and the relay that carries libmosquitto's MQTT over it.

Drives tests/tools/tlsdrv against a real TLS mosquitto (`cloud_broker`, client certificates
required, CN as username): key files and SoftHSM2 keys of every type, both CertificateVerify
hashes, the failure messages, the relay's peer check, large messages both ways, reconnects.
"""

import os
import re
import socket
import stat

import pytest

from fixtures.util import Proc, free_port, mock_module_path, run, tool_path

KEY_TYPES = ["ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096"]
# mbedTLS 2.28 signs the TLS 1.2 CertificateVerify with the suite's hash: forcing the suite picks
# the hash. Both server key types are listed so the same option works against any broker.
SUITES = {
    "sha256": "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256,TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
    "sha384": "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384,TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
}
PIN = "123456"
# The fault-injecting mock module (tests/mock): one token "mock" with a fixed P-256 key, PIN 1234.
MOCK_URI = "pkcs11:token=mock;object=mock-ec;type=private"
MOCK_PIN = "1234"


def kv(text):
    """key=value lines of the driver's stdout as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def drv_args(broker, cert, key_args, host=None, ca=None, extra=()):
    return [tool_path("tlsdrv"), "--host", host or broker.host, "--port", str(broker.port),
            "--ca", ca or broker.ca_cert, "--cert", cert, *key_args, *extra]


def assert_no_sanitizer_report(text):
    """Under an ASan/UBSan build, an expected failure must still be a clean one."""
    assert "Sanitizer" not in text and "runtime error:" not in text, text


def tlsdrv(broker, cert, key_args, *cmd, host=None, ca=None, extra=(), env=None, check=True, timeout=90):
    r = run([*drv_args(broker, cert, key_args, host, ca, extra), *cmd], env=env, check=check,
            timeout=timeout)
    assert_no_sanitizer_report(r.stderr)
    return r


def file_key(key):
    return ["--key-file", key]


def module_key(softhsm, key, pin=PIN):
    return ["--module", softhsm.module, "--uri", key.uri, "--pin", pin]


def assert_connected_as(broker, cn):
    broker.wait_for_log(rf"New client connected from \S+ as tlsdrv-\d+ .*u'{re.escape(cn)}'")


def assert_no_client_connected(broker):
    assert "New client connected" not in broker.log_text()


# ---- the happy path: every key type, both CertificateVerify hashes ---------------------------

@pytest.mark.parametrize("hash_name", sorted(SUITES))
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_file_key_publishes_through_relay(pki, cloud_broker, key_type, hash_name):
    cn = f"dev-file-{key_type}-{hash_name}"
    key, cert = pki.device_key_and_cert(cn, key_type)
    out = kv(tlsdrv(cloud_broker, cert, file_key(key), "publish", "te/test", "hello",
                    extra=["--suite", SUITES[hash_name]]).stdout)
    assert out["acked"] == "1"
    assert out["cv_hash"] == hash_name
    assert out["sessions"] == "1" and out["signatures"] == "1"
    assert_connected_as(cloud_broker, cn)
    cloud_broker.wait_for_log(r"Received PUBLISH from tlsdrv-\d+ .*'te/test'")


@pytest.mark.parametrize("hash_name", sorted(SUITES))
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_module_key_publishes_through_relay(pki, cloud_broker, softhsm, key_type, hash_name):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, key_type)
    cn = f"dev-hsm-{key_type}-{hash_name}"
    cert = pki.device_cert(cn, key.public_pem)
    out = kv(tlsdrv(cloud_broker, cert, module_key(softhsm, key), "publish", "te/test", "hello",
                    extra=["--suite", SUITES[hash_name]], env=softhsm.env).stdout)
    assert out["acked"] == "1"
    assert out["cv_hash"] == hash_name
    assert out["signatures"] == "1"
    assert_connected_as(cloud_broker, cn)


def socket_key(server, key):
    return ["--socket", str(server.socket_path), "--uri", key.uri]


@pytest.mark.parametrize("hash_name", sorted(SUITES))
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_socket_key_publishes_through_relay(pki, cloud_broker, softhsm, p11_server, key_type,
                                            hash_name):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, key_type)
    p11_server.start(pin=PIN)
    cn = f"dev-sock-{key_type}-{hash_name}"
    cert = pki.device_cert(cn, key.public_pem)
    # no SOFTHSM2_CONF for the client: only the daemon opens the token
    out = kv(tlsdrv(cloud_broker, cert, socket_key(p11_server, key), "publish", "te/test",
                    "hello", extra=["--suite", SUITES[hash_name]]).stdout)
    assert out["acked"] == "1"
    assert out["cv_hash"] == hash_name
    assert out["signatures"] == "1"
    assert_connected_as(cloud_broker, cn)
    assert len(p11_server.requests("sign")) == 1


def test_socket_mode_one_handshake_is_one_sign_request(pki, cloud_broker, softhsm, p11_server):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    p11_server.start(pin=PIN)
    cert = pki.device_cert("dev-sock-count", key.public_pem)
    out = kv(tlsdrv(cloud_broker, cert, socket_key(p11_server, key), "handshakes", "5").stdout)
    assert out["handshakes"] == "5" and out["signatures"] == "5"
    signs = p11_server.requests("sign")
    assert len(signs) == 5, p11_server.log()
    assert all(r["result"] == "ok" for r in signs)


def test_socket_mode_without_a_daemon_names_the_socket(pki, cloud_broker, short_tmp_dir):
    key, cert = pki.device_key_and_cert("dev-nodaemon", "ec-p256")
    sock = short_tmp_dir / "absent.sock"
    r = tlsdrv(cloud_broker, cert, ["--socket", str(sock), "--uri", "pkcs11:object=x"],
               "handshake", check=False)
    assert r.returncode != 0
    assert f"Failed to connect to tedge-p11-server UNIX socket at '{sock}'" in r.stderr
    assert_no_client_connected(cloud_broker)


@pytest.mark.parametrize("suite,hash_name", [
    ("TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256", "sha256"),
    ("TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384", "sha384"),
    ("TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256", "sha256"),
])
def test_direct_handshake_reports_the_forced_suite(pki, cloud_broker, suite, hash_name):
    key, cert = pki.device_key_and_cert("dev-hs", "rsa-2048")
    out = kv(tlsdrv(cloud_broker, cert, file_key(key), "handshake", extra=["--suite", suite]).stdout)
    assert out["suite"] == suite
    assert out["cv_hash"] == hash_name
    assert out["signatures"] == "1"


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_ecdsa_server_certificate_and_default_suites(pki, make_cloud_broker, key_type):
    broker = make_cloud_broker(server_key_type="ec-p256")
    key, cert = pki.device_key_and_cert("dev-ecsrv", key_type)
    out = kv(tlsdrv(broker, cert, file_key(key), "handshake").stdout)
    assert out["suite"].startswith("TLS-ECDHE-ECDSA-WITH-")
    assert re.search(r"-(AES-(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305-SHA256)$", out["suite"])


def test_host_name_with_sni_and_trust_directory(pki, cloud_broker, tmp_path):
    """Connect by DNS name (SNI + DNS SAN check) trusting a directory like /etc/ssl/certs."""
    roots = tmp_path / "roots"
    roots.mkdir()
    (roots / "unrelated.pem").write_text(pki.other_ca().ca_cert.read_text())
    (roots / "ours.crt").write_text(pki.ca_cert.read_text())
    (roots / "README").write_text("not a certificate\n")
    key, cert = pki.device_key_and_cert("dev-dns", "ec-p256")
    out = kv(tlsdrv(cloud_broker, cert, file_key(key), "handshake", host="localhost", ca=roots).stdout)
    assert out["signatures"] == "1"


def test_one_signature_per_handshake(pki, cloud_broker):
    key, cert = pki.device_key_and_cert("dev-many", "ec-p256")
    out = kv(tlsdrv(cloud_broker, cert, file_key(key), "handshakes", "5").stdout)
    assert out["handshakes"] == "5"
    assert out["signatures"] == "5"


def test_many_messages_share_one_session(pki, cloud_broker):
    key, cert = pki.device_key_and_cert("dev-burst", "ec-p256")
    out = kv(tlsdrv(cloud_broker, cert, file_key(key), "publish", "te/burst", "x" * 100,
                    "--count", "2000").stdout)
    assert out["acked"] == "2000"
    assert out["sessions"] == "1" and out["signatures"] == "1"


# ---- failures explain themselves ------------------------------------------------------------

def test_key_that_does_not_match_the_certificate(pki, cloud_broker):
    _, cert = pki.device_key_and_cert("dev-a", "ec-p256")
    other_key, _ = pki.device_key_and_cert("dev-b", "ec-p256", variant="another-device")
    for cmd in (["handshake"], ["publish", "te/x", "m"]):
        r = tlsdrv(cloud_broker, cert, file_key(other_key), *cmd, check=False)
        assert r.returncode != 0
        assert (f"The device key (key file '{other_key}') does not match the certificate '{cert}': "
                "both are EC P-256 keys, but the public keys differ") in r.stderr
    rsa_key, _ = pki.device_key_and_cert("dev-c", "rsa-2048")
    r = tlsdrv(cloud_broker, cert, file_key(rsa_key), "handshake", check=False)
    assert r.returncode != 0
    assert (f"does not match the certificate '{cert}': the certificate is for an EC P-256 key, "
            "the device key is RSA 2048-bit") in r.stderr
    assert_no_client_connected(cloud_broker)


def test_module_key_that_does_not_match_the_certificate(pki, cloud_broker, softhsm):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256", variant=7)
    _, cert = pki.device_key_and_cert("dev-x", "ec-p256")
    r = tlsdrv(cloud_broker, cert, module_key(softhsm, key), "handshake", env=softhsm.env, check=False)
    assert r.returncode != 0
    assert "The device key (PKCS#11 key 'pkcs11:token=tedge;object=tedge-key;type=private') does " \
           f"not match the certificate '{cert}'" in r.stderr


@pytest.mark.parametrize("cmd", [["handshake"], ["publish", "te/x", "m"]])
def test_untrusted_server(pki, cloud_broker, cmd):
    other = pki.other_ca()
    key, cert = pki.device_key_and_cert("dev-untrusted", "ec-p256")
    r = tlsdrv(cloud_broker, cert, file_key(key), *cmd, ca=other.ca_cert, check=False)
    assert r.returncode != 0
    assert f"The server's certificate is not trusted by the CA certificates in '{other.ca_cert}'" in r.stderr
    assert "not correctly signed by the trusted CA" in r.stderr


@pytest.mark.parametrize("cmd", [["handshake"], ["publish", "te/x", "m"]])
def test_wrong_server_name(pki, cloud_broker, cmd):
    key, cert = pki.device_key_and_cert("dev-name", "ec-p256")
    r = tlsdrv(cloud_broker, cert, file_key(key), *cmd, extra=["--server-name", "wrong.example"],
               check=False)
    assert r.returncode != 0
    assert "The server's certificate is not valid for host 'wrong.example'" in r.stderr
    assert "not trusted" not in r.stderr


def test_ip_literal_checked_against_ip_sans(pki, make_cloud_broker):
    """mbedTLS 2.28 ignores IP SANs: we check them, and an IP the certificate lacks is refused."""
    broker = make_cloud_broker(sans=("DNS:localhost",))
    key, cert = pki.device_key_and_cert("dev-ip", "ec-p256")
    r = tlsdrv(broker, cert, file_key(key), "handshake", host="127.0.0.1", check=False)
    assert r.returncode != 0
    assert "The server's certificate is not valid for host '127.0.0.1'" in r.stderr
    # the same broker by its DNS name is fine, and so is an IP that the certificate lists
    assert kv(tlsdrv(broker, cert, file_key(key), "handshake", host="localhost").stdout)["signatures"] == "1"
    good = make_cloud_broker(name="ip-broker", sans=("IP:127.0.0.1",))
    assert kv(tlsdrv(good, cert, file_key(key), "handshake", host="127.0.0.1").stdout)["signatures"] == "1"


@pytest.mark.parametrize("cmd", [["handshake"], ["publish", "te/x", "m"]])
def test_device_certificate_rejected_by_server(pki, cloud_broker, cmd):
    key, cert = pki.other_ca().device_key_and_cert("dev-stranger", "ec-p256")
    r = tlsdrv(cloud_broker, cert, file_key(key), *cmd, check=False)
    assert r.returncode != 0
    assert f"The server rejected the device certificate '{cert}'" in r.stderr


def test_wrong_pin_passes_the_signer_error_through(pki, cloud_broker, softhsm):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    cert = pki.device_cert("dev-pin", key.public_pem)
    r = tlsdrv(cloud_broker, cert, module_key(softhsm, key, pin="999999"), "handshake",
               env=softhsm.env, check=False)
    assert r.returncode != 0
    assert re.search(r"PIN.*incorrect|incorrect.*PIN", r.stderr, re.I), r.stderr
    assert "TLS" not in r.stderr and "PK hardware" not in r.stderr
    assert "999999" not in r.stderr


@pytest.fixture
def mock_cert(pki, tmp_path):
    """A device certificate for the mock module's EC key (its public key read through the signer)."""
    pub = tmp_path / "mock-ec.pub.pem"
    pub.write_text(run([tool_path("tlsdrv"), *mock_key_args(), "public-key"]).stdout)
    return pki.device_cert("dev-mock", pub)


def mock_key_args():
    return ["--module", mock_module_path(), "--uri", MOCK_URI, "--pin", MOCK_PIN]


@pytest.mark.parametrize("cmd", [["handshake"], ["publish", "te/x", "m"]])
def test_token_failure_during_the_handshake_is_the_signer_error(cloud_broker, mock_cert, cmd):
    """The key matched (self-test passed); the token then fails C_Sign inside the handshake: the
    message is the PKCS#11 core's, not mbedTLS's generic one."""
    assert kv(tlsdrv(cloud_broker, mock_cert, mock_key_args(), "handshake").stdout)["signatures"] == "1"
    env = dict(os.environ, MOCK_P11_FAIL_SIGN_AFTER="1", MOCK_P11_FAIL_TIMES="1000000",
               MOCK_P11_FAIL_RV="CKR_DEVICE_ERROR")
    r = tlsdrv(cloud_broker, mock_cert, mock_key_args(), *cmd, env=env, check=False)
    assert r.returncode != 0
    assert "CKR_DEVICE_ERROR" in r.stderr
    assert "hardware accelerator" not in r.stderr and "TLS handshake" not in r.stderr


def test_slow_token_and_the_handshake_deadline(cloud_broker, mock_cert):
    env = dict(os.environ, MOCK_P11_SIGN_DELAY_MS="1500")
    r = tlsdrv(cloud_broker, mock_cert, mock_key_args(), "handshake", extra=["--timeout", "1000"],
               env=env, check=False)
    assert r.returncode != 0
    assert "The TLS handshake with 127.0.0.1:" in r.stderr and "did not finish within 1 s" in r.stderr
    # a deadline that leaves room for the slow signature is fine
    out = kv(tlsdrv(cloud_broker, mock_cert, mock_key_args(), "handshake", extra=["--timeout", "20000"],
                    env=env).stdout)
    assert out["signatures"] == "1"


@pytest.fixture
def nowhere():
    """A host:port where nothing listens."""
    return type("Nowhere", (), {"host": "127.0.0.1", "port": free_port()})


@pytest.mark.parametrize("cmd", [["handshake"], ["publish", "te/x", "m"]])
def test_nothing_listening(pki, nowhere, cmd):
    """Through the relay, the unreachable cloud closes libmosquitto's connection and
    relay_last_error() says why."""
    key, cert = pki.device_key_and_cert("dev-refused", "ec-p256")
    r = tlsdrv(nowhere, cert, file_key(key), *cmd, ca=pki.ca_cert, check=False)
    assert r.returncode != 0
    assert f"Cannot connect to 127.0.0.1:{nowhere.port}: Connection refused" in r.stderr


def test_handshake_timeout_against_a_silent_server(pki):
    """A server that accepts and never answers: the handshake deadline ends the wait."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    silent = type("Silent", (), {"host": "127.0.0.1", "port": port})
    key, cert = pki.device_key_and_cert("dev-slow", "ec-p256")
    try:
        r = tlsdrv(silent, cert, file_key(key), "handshake", ca=pki.ca_cert,
                   extra=["--timeout", "1000"], check=False)
    finally:
        srv.close()
    assert r.returncode != 0
    assert f"The TLS handshake with 127.0.0.1:{port} did not finish within 1 s" in r.stderr


# ---- the relay ------------------------------------------------------------------------------

def start_held(broker, cert, key, env=None, extra=(), cmd=("publish", "te/held", "after-hold")):
    proc = Proc([*drv_args(broker, cert, file_key(key), extra=extra), *cmd, "--hold"],
                env=env, name="tlsdrv", stdin=True).start()
    path = proc.wait_for_output(r"socket=(\S+)", timeout=30).group(1)
    proc.wait_for_output(r"(?m)^connected$", timeout=30)
    return proc, path


def finish_held(proc):
    proc.send("go\n")
    proc.close_stdin()
    assert proc.wait(timeout=60) == 0, proc.output()
    assert_no_sanitizer_report(proc.stderr_text())
    return kv(proc.stdout_text())


def test_foreign_process_is_refused_during_a_session(pki, cloud_broker):
    key, cert = pki.device_key_and_cert("dev-peer", "ec-p256")
    proc, path = start_held(cloud_broker, cert, key)
    for _ in range(2):  # the session is live: the relay still watches its listening socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            try:  # the relay may already have closed it: then the write fails, which is fine
                s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")  # an MQTT CONNECT
                assert s.recv(100) == b""  # EOF, no CONNACK
            except (BrokenPipeError, ConnectionResetError):
                pass
    out = finish_held(proc)
    assert out["acked"] == "1"
    assert out["rejected"] == "2"
    assert out["sessions"] == "1" and out["signatures"] == "1"
    assert proc.output().count("refused a connection from pid=") == 2


def test_relay_socket_is_private_and_removed(pki, cloud_broker, short_tmp_dir):
    key, cert = pki.device_key_and_cert("dev-sock", "ec-p256")
    env = dict(os.environ, XDG_RUNTIME_DIR=str(short_tmp_dir))
    proc, path = start_held(cloud_broker, cert, key, env=env)
    sock_dir = os.path.dirname(path)
    assert os.path.dirname(sock_dir) == str(short_tmp_dir)
    assert stat.S_IMODE(os.stat(sock_dir).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert finish_held(proc)["acked"] == "1"
    assert not os.path.exists(sock_dir)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_large_messages_both_ways(pki, cloud_broker, key_type):
    key, cert = pki.device_key_and_cert(f"dev-large-{key_type}", key_type)
    size = 256 * 1024
    out = kv(tlsdrv(cloud_broker, cert, file_key(key), "publish", "te/large", "-", "--size", str(size),
                    "--count", "3", "--echo").stdout)
    assert out["acked"] == "3"
    assert out["received"] == "3" and out["mismatched"] == "0"
    assert int(out["bytes_up"]) > 3 * size and int(out["bytes_down"]) > 3 * size


def test_reconnect_is_a_new_handshake_and_one_new_signature(pki, cloud_broker):
    key, cert = pki.device_key_and_cert("dev-reconnect", "ec-p256")
    proc, _ = start_held(cloud_broker, cert, key)
    mark = cloud_broker.log_mark()
    cloud_broker.restart()
    cloud_broker.wait_for_log(r"New client connected .*u'dev-reconnect'", timeout=30, since=mark)
    out = finish_held(proc)
    assert out["acked"] == "1"
    assert out["connects"] == "2"
    assert out["sessions"] == "2" and out["signatures"] == "2"
