"""The socket signer in a long-lived TLS client (tests/tools/tlsdrv: libmosquitto -> relay ->
mbedTLS, as in the bridge) across tedge-p11-server restarts: before every handshake the signer
pings the daemon, so a stopped daemon fails before the cloud sees a connection, and a restarted or
socket-activated one is reached (and started) before the handshake, not in the middle of it.

`tlsdrv publish --hold` keeps one signer for the whole run: it connects (handshake 1), waits while
the test restarts the daemon and then the cloud broker (forcing handshake 2), and publishes when
told to.
"""

import re

import pytest

from fixtures.p11server import REQUEST_RE, SANITIZER_MARKERS
from fixtures.util import Proc, require_commands, tool_path, wait_for_unix_socket, wait_until

PIN = "123456"
ACTIVATED_LINE = "Server listening on the socket passed by systemd"


@pytest.fixture
def token_key_cert(softhsm, pki):
    token = softhsm.init_token(pin=PIN)
    key = softhsm.add_key(token, "ec-p256")
    return token, key, pki.device_cert("dev-sock-wake", key.public_pem)


def kv(text):
    """key=value lines of the driver's stdout as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def requests(text):
    """The daemon's request log lines in `text`, in order (dicts as P11Server.requests())."""
    return [m.groupdict() for m in REQUEST_RE.finditer(text)]


def assert_clean(proc):
    out = proc.output()
    for marker in SANITIZER_MARKERS:
        assert marker not in out, out


def start_held(cloud, cert, socket_path, key):
    """tlsdrv in socket mode, connected through the relay (one handshake done), waiting for a
    line on stdin before it publishes."""
    proc = Proc([tool_path("tlsdrv"), "--host", cloud.host, "--port", str(cloud.port),
                 "--ca", cloud.ca_cert, "--cert", cert, "--socket", socket_path, "--uri", key.uri,
                 "publish", "te/held", "after-restart", "--hold"],
                name="tlsdrv", stdin=True).start()
    proc.wait_for_output(r"^connected$", timeout=30)
    return proc


def finish_held(proc):
    proc.send("go\n")
    proc.close_stdin()
    assert proc.wait(timeout=60) == 0, proc.output()
    assert_clean(proc)
    return kv(proc.stdout_text())


def socket_activated(server, path, pin):
    """systemd-socket-activate listening on `path`; the daemon starts at the first connection.
    The daemon gets only the variables named with -E (the values come from our environment, so
    the PIN is not on a command line)."""
    tool = require_commands("systemd-socket-activate")["systemd-socket-activate"]
    env = server.env(pin=pin)
    passed = [a for name in ("SOFTHSM2_CONF", "TEDGE_DEVICE_CRYPTOKI_PIN") if name in env
              for a in ("-E", name)]
    proc = Proc([tool, "-l", path, *passed, *server.command(socket=False)], env=env,
                name="socket-activate").start()
    wait_for_unix_socket(path, proc=proc, connect=False)
    return proc


def test_a_restarted_socket_activated_daemon_is_woken_before_the_handshake(
        cloud_broker, p11_server, token_key_cert, short_tmp_dir):
    token, key, cert = token_key_cert
    path = short_tmp_dir / "activated.sock"
    first = socket_activated(p11_server, path, token.pin)
    assert ACTIVATED_LINE not in first.output()
    drv = start_held(cloud_broker, cert, path, key)
    try:
        first.wait_for_output(ACTIVATED_LINE, timeout=10)  # started by the signer's open
        assert requests(first.output())[0]["op"] == "ping"
        assert first.stop() == 0
        assert_clean(first)

        second = socket_activated(p11_server, path, token.pin)
        assert ACTIVATED_LINE not in second.output()  # nothing has connected yet
        cloud_broker.restart()  # the relay needs a new session: a new handshake
        second.wait_for_output(ACTIVATED_LINE, timeout=30)
        wait_until(lambda: any(r["op"] == "sign" for r in requests(second.output())),
                   timeout=30, what="a signature from the woken daemon")
        ops = [r["op"] for r in requests(second.output())]
        assert ops[0] == "ping", second.output()  # woken by the ping, not by the handshake
        assert all(r["result"] == "ok" for r in requests(second.output())), second.output()

        out = finish_held(drv)
        assert out["acked"] == "1"
        assert out["sessions"] == "2" and out["signatures"] == "2"
        assert second.stop() == 0
        assert_clean(second)
    finally:
        drv.stop()


def test_a_stopped_daemon_fails_before_the_cloud_sees_a_connection(
        cloud_broker, p11_server, token_key_cert):
    """While the daemon is away every attempt fails with the daemon's socket named, and no TCP
    connection reaches the cloud; once it is back the same signer reconnects and publishes."""
    token, key, cert = token_key_cert
    p11_server.start(pin=token.pin)
    drv = start_held(cloud_broker, cert, p11_server.socket_path, key)
    try:
        assert p11_server.stop() == 0
        mark = cloud_broker.log_mark()
        cloud_broker.restart()
        drv.wait_for_output(r"relay: Failed to connect to tedge-p11-server UNIX socket at '"
                            + re.escape(str(p11_server.socket_path)) + "'", timeout=30)
        assert "New connection from" not in cloud_broker.log_text(mark)

        p11_server.start(pin=token.pin)
        out = finish_held(drv)
        assert out["acked"] == "1"
        assert out["sessions"] == "2"
        # exactly one TCP connection since the restart: the session that succeeded
        assert len(re.findall(r"New connection from", cloud_broker.log_text(mark))) == 1, \
            cloud_broker.log_text(mark)
        assert [r["op"] for r in p11_server.requests()][0] == "ping", p11_server.log()
    finally:
        drv.stop()
