"""tedge-p11-server start-up and shutdown with the real binary: option precedence (flag > env >
tedge.toml), missing and broken configuration, PIN sources, the lock against a second
instance, stale-socket reclaim after kill -9, systemd socket activation and the unit files."""

import base64
import os
import re
import shutil
import signal
import socket
import stat
from pathlib import Path

import pytest

from fixtures.p11server import P11Server, clean_env, digest_for, p11_server_fixture
from fixtures.util import Proc, bin_path, require_commands, run, wait_for_unix_socket

REPO = Path(__file__).resolve().parents[2]
PIN_WARNING = ("--pin on the command line is visible to other users in the process list; use "
               "--pin-file or a systemd credential")


@pytest.fixture
def server(softhsm, short_tmp_dir, tedge_dir):
    yield from p11_server_fixture(softhsm, short_tmp_dir, tedge_dir)


@pytest.fixture
def token_key(softhsm):
    token = softhsm.init_token()
    return token, softhsm.add_key(token, "ec-p256")


def ping_ok(path):
    from p11proto import P11Client
    with P11Client(str(path), timeout=10) as c:
        reply = c.request("ping")
    assert reply["ok"] is True, reply


def sign_ok(path, uri):
    """A signature without a PIN in the request: the daemon's configured PIN must do."""
    from p11proto import P11Client
    with P11Client(str(path), timeout=10) as c:
        reply = c.request("sign", uri=uri, scheme="ecdsa_sha256",
                          digest=base64.b64encode(digest_for("ecdsa_sha256", b"x")).decode())
    assert reply["ok"] is True, reply


def write_toml(tedge_dir, text):
    (tedge_dir / "tedge.toml").write_text(text)


def test_help_and_version():
    out = run([bin_path("tedge-p11-server"), "--help"]).stdout
    for option in ("--socket-path", "--module-path", "--pin", "--pin-file", "--uri", "--log-level",
                   "--config-dir", "--max-clients", "--socket-mode", "--socket-group",
                   "--allow-uid", "--allow-gid", "--admin-uid", "--admin-gid", "--frame-timeout",
                   "--idle-timeout", "TEDGE_DEVICE_CRYPTOKI_MODULE_PATH"):
        assert option in out, option
    version = (REPO / "VERSION").read_text().strip()
    assert run([bin_path("tedge-p11-server"), "-V"]).stdout.strip() == f"tedge-p11-server {version}"


def test_missing_module_path_is_a_clear_error(server):
    cp = run(server.command(module=False), env=server.env(), check=False)
    assert cp.returncode != 0
    for name in ("--module-path", "TEDGE_DEVICE_CRYPTOKI_MODULE_PATH", "device.cryptoki.module_path",
                 str(server.config_dir / "tedge.toml")):
        assert name in cp.stderr, cp.stderr
    assert not server.socket_path.exists()


def test_flag_beats_env_beats_tedge_toml(server, softhsm, token_key, tedge_dir, short_tmp_dir):
    token, key = token_key
    toml_sock, env_sock, flag_sock = (short_tmp_dir / n for n in ("t.sock", "e.sock", "f.sock"))
    write_toml(tedge_dir, "[device.cryptoki]\n"
                          f'module_path = "{softhsm.module}"\n'
                          f'socket_path = "{toml_sock}"\n'
                          f'pin = "{token.pin}"\n')
    base = server.command(module=False, socket=False)

    srv = P11Server(softhsm, short_tmp_dir, tedge_dir, name="t")
    srv.start(cmd=base, env=server.env())
    assert "module_path=" + softhsm.module + " (from tedge.toml)" in srv.log()
    sign_ok(toml_sock, key.uri)  # the PIN came from tedge.toml too
    assert not srv.finish()

    srv = P11Server(softhsm, short_tmp_dir, tedge_dir, name="e")
    srv.start(cmd=base, env=server.env(TEDGE_DEVICE_CRYPTOKI_SOCKET_PATH=str(env_sock),
                                       TEDGE_DEVICE_CRYPTOKI_MODULE_PATH=softhsm.module))
    assert "(from TEDGE_DEVICE_CRYPTOKI_MODULE_PATH)" in srv.log()
    ping_ok(env_sock)
    assert not toml_sock.exists()
    assert not srv.finish()

    srv = P11Server(softhsm, short_tmp_dir, tedge_dir, name="f")
    srv.start(cmd=base + ["--socket-path", str(flag_sock)],
              env=server.env(TEDGE_DEVICE_CRYPTOKI_SOCKET_PATH=str(env_sock)))
    ping_ok(flag_sock)
    assert not env_sock.exists()
    assert not srv.finish()


def test_empty_env_var_counts_as_unset(server, tedge_dir):
    write_toml(tedge_dir, f'[device.cryptoki]\nsocket_path = "{server.socket_path}"\n')
    server.start(cmd=server.command(socket=False),
                 env=server.env(TEDGE_DEVICE_CRYPTOKI_SOCKET_PATH=""))
    assert f"Server listening on {server.socket_path}" in server.log()
    ping_ok(server.socket_path)


def test_broken_tedge_toml_only_matters_when_a_value_comes_from_it(server, softhsm, token_key,
                                                                   tedge_dir):
    token, _ = token_key
    write_toml(tedge_dir, "[device.cryptoki]\nmodule_path = = 'x'\n")
    # every value on the command line or in the environment: the file is never read
    server.start("--uri", "pkcs11:token=tedge", pin=token.pin)
    ping_ok(server.socket_path)
    server.stop()
    # the module path has to come from it: refused, with the file and the line
    cp = run(server.command(module=False), env=server.env(pin=token.pin), check=False)
    assert cp.returncode != 0
    assert re.search(re.escape(str(tedge_dir / "tedge.toml")) + r":2:\d+", cp.stderr), cp.stderr


def test_second_instance_is_refused_while_the_first_serves(server, token_key):
    token, _ = token_key
    server.start(pin=token.pin)
    cp = run(server.command(), env=server.env(pin=token.pin), check=False, timeout=30)
    assert cp.returncode != 0
    path = server.socket_path
    assert (f"Another tedge-p11-server is already serving {path} (lock {path}.lock held)."
            in cp.stderr), cp.stderr
    assert server.proc.running
    ping_ok(path)


def test_stale_socket_is_reclaimed_after_kill_9(server, softhsm, token_key, short_tmp_dir,
                                                tedge_dir):
    token, _ = token_key
    server.start(pin=token.pin)
    server.proc.kill()
    assert stat.S_ISSOCK(os.lstat(server.socket_path).st_mode)  # left behind
    with pytest.raises(ConnectionRefusedError):
        socket.socket(socket.AF_UNIX).connect(str(server.socket_path))
    again = P11Server(softhsm, short_tmp_dir, tedge_dir).start(pin=token.pin)
    assert "Removing stale socket file" in again.log()
    ping_ok(again.socket_path)
    assert not again.finish()


def test_sigterm_removes_the_socket_and_exits_zero(server, token_key):
    token, key = token_key
    server.start(pin=token.pin)
    sign_ok(server.socket_path, key.uri)
    assert server.proc.stop(sig=signal.SIGTERM) == 0
    assert not server.socket_path.exists()
    assert os.path.exists(str(server.socket_path) + ".lock")  # never removed: no race
    assert "tedge-p11-server stopped" in server.log()


def test_socket_mode_and_group(server, token_key):
    if os.geteuid() != 0:
        pytest.skip("giving the socket to another group needs root (CI runs the tests as root)")
    token, _ = token_key
    server.start("--socket-mode", "0600", "--socket-group", "nogroup", pin=token.pin)
    st = os.stat(server.socket_path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    import grp
    assert st.st_gid == grp.getgrnam("nogroup").gr_gid


def test_socket_activation_serves_the_passed_fd_and_keeps_the_path(server, softhsm, token_key,
                                                                    short_tmp_dir):
    token, _ = token_key
    tools = require_commands("systemd-socket-activate")
    path = short_tmp_dir / "activated.sock"
    ignored = short_tmp_dir / "ignored.sock"
    proc = Proc([tools["systemd-socket-activate"], "-l", str(path),
                 *server.command("--socket-path", str(ignored), socket=False)],
                env=server.env(pin=token.pin), name="socket-activate").start()
    wait_for_unix_socket(path, proc=proc, connect=False)
    ping_ok(path)  # the first connection starts the daemon on the passed socket
    proc.wait_for_output("Server listening on the socket passed by systemd")
    assert "Using the socket passed by systemd" in proc.output()
    assert not ignored.exists()
    assert proc.stop() == 0
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # systemd's socket: never removed by us


def test_pin_on_command_line_warns_and_is_hidden(server, token_key):
    token, key = token_key
    server.start("--pin", token.pin)
    assert PIN_WARNING in server.log()
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
    assert token.pin.encode() not in cmdline
    sign_ok(server.socket_path, key.uri)
    assert token.pin not in server.log()


def test_pin_file(server, token_key, tmp_path):
    token, key = token_key
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin + "\n")
    pin_file.chmod(0o600)
    server.start("--pin-file", pin_file)
    assert PIN_WARNING not in server.log()
    assert "pin=set (from --pin-file)" in server.log()
    sign_ok(server.socket_path, key.uri)


def test_systemd_credential_pin(server, token_key, tmp_path):
    token, key = token_key
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "pin").write_text(token.pin)
    server.start(env=server.env(CREDENTIALS_DIRECTORY=str(creds)))
    assert "pin=set (from systemd credential)" in server.log()
    sign_ok(server.socket_path, key.uri)


def test_systemd_units_verify(tmp_path):
    tools = require_commands("systemd-analyze")
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(REPO / "systemd" / "tedge-p11-server.socket", units)
    service = (REPO / "systemd" / "tedge-p11-server.service").read_text()
    assert "ExecStart=/usr/bin/tedge-p11-server\n" in service
    # verify checks that ExecStart= exists: point it at the binary under test
    (units / "tedge-p11-server.service").write_text(
        service.replace("ExecStart=/usr/bin/tedge-p11-server",
                        f"ExecStart={bin_path('tedge-p11-server')}"))
    cp = run([tools["systemd-analyze"], "verify", "--man=no",
              units / "tedge-p11-server.socket", units / "tedge-p11-server.service"],
             env=clean_env(os.environ), check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # systemd-analyze only warns about unknown or invalid settings: any line about our units fails
    assert "tedge-p11-server" not in cp.stdout + cp.stderr, cp.stdout + cp.stderr
    for line in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                 "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX", "DevicePolicy=closed",
                 "DeviceAllow=char-usb_device rw", "LoadCredential=pin:/etc/tedge/p11-pin"):
        assert line in service, line
    socket_unit = (REPO / "systemd" / "tedge-p11-server.socket").read_text()
    for line in ("ListenStream=/run/tedge-p11-server/tedge-p11-server.sock", "SocketMode=0660",
                 "SocketGroup=tedge", "DirectoryMode="):
        assert line in socket_unit, line


def test_sd_notify_ready_once_serving(server, token_key, short_tmp_dir):
    token, _ = token_key
    notify_path = short_tmp_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(20)
        server.start(env=server.env(pin=token.pin, NOTIFY_SOCKET=str(notify_path)))
        message = notify.recv(4096).decode()
        assert "READY=1" in message.splitlines(), message
        assert f"STATUS=Serving {server.socket_path}" in message, message
        ping_ok(server.socket_path)  # ready means serving
        server.stop()
        assert "STOPPING=1" in notify.recv(4096).decode().splitlines()


def test_log_level_flag_and_env(server, token_key):
    token, _ = token_key
    server.start("--log-level", "error", pin=token.pin, wait=False)
    wait_for_unix_socket(server.socket_path, proc=server.proc)
    ping_ok(server.socket_path)
    assert server.requests() == []  # request lines are info
    assert server.proc.stop() == 0
    server.start(env=server.env(pin=token.pin, TEDGE_LOG_LEVEL="debug"))
    ping_ok(server.socket_path)
    assert re.search(r"DEBUG tedge-p11-server: \w+: connection from peer_pid=\d+", server.log())
    assert server.requests("ping")


def test_pin_from_env_is_blanked_in_proc_environ(server, token_key):
    token, _ = token_key
    server.start(env=server.env(pin="pin-" + token.pin))  # a value found nowhere else
    environ = Path(f"/proc/{server.pid}/environ").read_bytes()
    assert b"TEDGE_DEVICE_CRYPTOKI_PIN=" in environ
    assert ("pin-" + token.pin).encode() not in environ
