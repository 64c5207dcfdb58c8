"""tedge-p11-server under abuse, through its real socket: stalled and broken frames, garbage,
many concurrent clients without fd growth, more clients than --max-clients, and peers that the
uid allow-list refuses (a client really running as `nobody`)."""

import json
import os
import socket
import struct
import subprocess
import sys
import threading

import pytest

from fixtures.p11server import digest_for, p11_server_fixture
from fixtures.util import wait_until
from p11proto import P11Client

NOBODY = 65534


# ---- helpers over p11proto (the independent client): replies are checked against the spec ---

def connect(path, timeout=10.0):
    return P11Client(str(path), timeout=timeout)


def next_reply(c):
    """The next reply as a dict, or None when the daemon closed the connection (EOF or reset)."""
    try:
        return c.read_reply()
    except ConnectionResetError:
        return None


def error_code(reply):
    assert reply is not None, "the daemon closed the connection without a reply"
    assert reply["ok"] is False, reply
    return reply["error"]["code"]


def ping(c):
    reply = c.request("ping")
    assert reply["ok"] is True, reply


def sign(c, uri, data=b"abuse"):
    return c.request("sign", uri=uri, scheme="ecdsa_sha256",
                     digest=digest_for("ecdsa_sha256", data))


@pytest.fixture
def token_key(softhsm):
    token = softhsm.init_token()
    return token, softhsm.add_key(token, "ec-p256")


@pytest.fixture
def server(softhsm, short_tmp_dir, tedge_dir):
    yield from p11_server_fixture(softhsm, short_tmp_dir, tedge_dir)


def sign_loop(path, uri, count, results, index):
    """One client: `count` signatures on one persistent connection; records its failures."""
    failures = []
    try:
        with connect(path, timeout=60.0) as c:
            for i in range(count):
                reply = sign(c, uri, data=b"%d-%d" % (index, i))
                if not reply["ok"]:
                    failures.append(reply)
    except Exception as e:  # a protocol error or a closed connection is a failure too
        failures.append(repr(e))
    results[index] = failures


def run_clients(path, uri, clients, count):
    results = [None] * clients
    threads = [threading.Thread(target=sign_loop, args=(path, uri, count, results, i))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def test_stalled_half_frame_is_dropped_while_others_sign(server, token_key):
    token, key = token_key
    server.start("--frame-timeout", "1s", pin=token.pin)
    stalled = connect(server.socket_path, timeout=30.0)
    stalled.send_raw(struct.pack(">I", 200) + b'{"v":1,"op":')  # ... and nothing more
    results = run_clients(server.socket_path, key.uri, clients=20, count=25)
    assert results == [[]] * 20, [r for r in results if r]
    reply = next_reply(stalled)
    assert error_code(reply) == "timeout"
    assert reply["error"]["retryable"] is True
    assert next_reply(stalled) is None  # and then closed
    stalled.close()
    assert [r for r in server.requests() if r["result"] == "timeout"]
    with connect(server.socket_path) as c:
        ping(c)


def test_oversized_truncated_and_garbage_frames_get_errors(server, token_key):
    token, key = token_key
    server.start(pin=token.pin)
    path = server.socket_path

    with connect(path) as c:  # a length over the limit: one reply, then closed
        c.send_raw(b"\xff\xff\xff\xff")
        assert error_code(next_reply(c)) == "too_large"
        assert next_reply(c) is None
    with connect(path) as c:
        c.send_raw(struct.pack(">I", 64 * 1024 + 1))
        assert error_code(next_reply(c)) == "too_large"
        assert next_reply(c) is None
    with connect(path) as c:  # EOF inside a frame: one reply, then closed
        c.send_raw(struct.pack(">I", 100) + b'{"v":1,"op"')
        c.sock.shutdown(socket.SHUT_WR)
        assert error_code(next_reply(c)) == "malformed"
        assert next_reply(c) is None
    with connect(path) as c:  # the framing is intact: errors, and the connection stays usable
        c.send_raw(struct.pack(">I", 0))
        assert error_code(next_reply(c)) == "malformed"
        c.send_frame(b"\x00\xffgarbage{")
        assert error_code(next_reply(c)) == "malformed"
        c.send_frame(os.urandom(4096))
        assert error_code(next_reply(c)) == "malformed"
        c.send_frame(b'{"v":1,"op":"format_disk","id":3}')
        reply = next_reply(c)
        assert error_code(reply) == "protocol_error" and reply["id"] == 3
        c.send_frame(b'{"v":1,"id":4,"ok":true,"result":{}}')  # a reply sent as a request
        assert error_code(next_reply(c)) == "protocol_error"
        c.send_frame(b'{"v":1,"op":"sign","id":5,"scheme":"ecdsa_sha256","digest":"AAAA"}')
        assert error_code(next_reply(c)) == "invalid_argument"
        assert sign(c, key.uri)["ok"] is True
    assert server.proc.running
    with connect(path) as c:
        ping(c)


def test_64_clients_200_signatures_without_fd_growth(server, token_key):
    token, key = token_key
    server.start(pin=token.pin)
    # warm up: the session pool and the module's own files reach their steady state
    assert run_clients(server.socket_path, key.uri, clients=64, count=2) == [[]] * 64
    baseline = server.settled_fd_count()
    results = run_clients(server.socket_path, key.uri, clients=64, count=200)
    assert results == [[]] * 64, [r for r in results if r][:3]
    after = server.wait_fd_count(at_most=baseline)
    assert after <= baseline, f"daemon fds grew from {baseline} to {after}"
    oks = [r for r in server.requests("sign") if r["result"] == "ok"]
    assert len(oks) == 64 * 202


def test_more_clients_than_max_clients_get_busy(server, token_key):
    token, _ = token_key
    server.start("--max-clients", "2", pin=token.pin)
    first, second = connect(server.socket_path), connect(server.socket_path)
    ping(first)
    ping(second)  # both slots are taken by served connections
    with connect(server.socket_path) as third:
        third.send_frame(b'{"v":1,"op":"ping","id":1}')
        reply = next_reply(third)
        assert error_code(reply) == "busy"
        assert reply["error"]["retryable"] is True
        assert "id" not in reply
        assert next_reply(third) is None
    ping(first)  # the served clients did not notice
    second.close()

    def slot_free():  # the second's thread ends asynchronously after its close
        with connect(server.socket_path) as c:
            c.send_frame(b'{"v":1,"op":"ping","id":1}')
            return (next_reply(c) or {}).get("ok") is True
    wait_until(slot_free, timeout=10, what="a freed slot serves a new client")
    first.close()
    assert [r for r in server.requests() if r["result"] == "busy"]


# ---- peers running as another user ----------------------------------------------------------

# Runs as `nobody` with p11proto: sends each request in argv[2:] (JSON) on one connection,
# prints each reply, and finally "EOF" once the daemon closed the connection (else "OPEN").
NOBODY_CLIENT = r"""
import json, socket, sys
sys.path.insert(0, sys.argv[1])
from p11proto import P11Client
c = P11Client(sys.argv[2], timeout=10)
try:
    for req in sys.argv[3:]:
        c.send_frame(req.encode())
        reply = c.read_reply()
        if reply is None:
            print("EOF"); sys.exit(0)
        print(json.dumps(reply))
    c.sock.settimeout(1)
    print("EOF" if c.sock.recv(1) == b"" else "OPEN")
except (BrokenPipeError, ConnectionResetError):
    print("EOF")
except socket.timeout:
    print("OPEN")
"""


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def run_as_nobody(path, *requests):
    """Replies (dicts) and the final "EOF"/"OPEN" of a client running as uid/gid nobody."""
    if os.geteuid() != 0:
        pytest.skip("running a client as 'nobody' needs root (CI runs the tests as root)")
    here = os.path.dirname(os.path.abspath(__file__))
    cp = subprocess.run([sys.executable, "-c", NOBODY_CLIENT, here, str(path), *requests],
                        preexec_fn=as_nobody, capture_output=True, text=True, timeout=30,
                        cwd="/")
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    return [json.loads(line) for line in lines[:-1]], lines[-1]


def open_to_everyone(server):
    os.chmod(server.socket_path.parent, 0o755)


PING = '{"v":1,"op":"ping","id":1}'
CREATE_KEY = ('{"v":1,"op":"create_key","id":2,"key_type":"ec","label":"k"}')


def test_uid_not_on_allow_list_is_refused(server, token_key):
    token, _ = token_key
    server.start("--socket-mode", "0666", "--allow-uid", "4242", pin=token.pin)
    open_to_everyone(server)
    replies, end = run_as_nobody(server.socket_path, PING, PING)
    assert len(replies) == 1 and error_code(replies[0]) == "permission_denied", replies
    assert replies[0]["id"] == 1
    assert end == "EOF"  # refused peers are closed after the answer
    refused = [r for r in server.requests() if r["uid"] == str(NOBODY)]
    assert [r["result"] for r in refused] == ["permission_denied"]
    with connect(server.socket_path) as c:  # root is always allowed
        ping(c)


def test_allowed_uid_signs_but_admin_ops_need_the_admin_list(server, token_key):
    token, _ = token_key
    server.start("--socket-mode", "0666", "--allow-uid", "nobody", pin=token.pin)
    open_to_everyone(server)
    replies, end = run_as_nobody(server.socket_path, PING, CREATE_KEY, PING)
    assert replies[0]["ok"] is True, replies
    assert error_code(replies[1]) == "permission_denied"
    assert replies[2]["ok"] is True  # a refused admin op does not cost the connection
    assert end == "OPEN"
    with connect(server.socket_path) as c:  # root is an admin: the op is gated, then unsupported
        c.send_frame(CREATE_KEY.encode())
        assert error_code(next_reply(c)) == "unsupported"
