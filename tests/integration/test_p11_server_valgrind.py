"""tedge-p11-server under valgrind (memcheck): a real SoftHSM2 token, every read-only operation,
signatures, wrong PINs, broken frames and a busy client, then SIGTERM. No error, no leak."""

import base64
import json
import socket
import struct

import pytest

from fixtures.p11server import P11Server, digest_for
from fixtures.util import bin_path, require_commands

VALGRIND_TIMEOUT = 120  # valgrind runs the daemon ~20-50x slower; only a hang takes this long


def is_asan_build(path):
    return b"__asan_init" in path.read_bytes()


def frame(obj):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def read_reply(s):
    header = s.recv(4, socket.MSG_WAITALL)
    if len(header) < 4:
        return None
    return json.loads(s.recv(struct.unpack(">I", header)[0], socket.MSG_WAITALL))


def test_daemon_is_valgrind_clean(softhsm, short_tmp_dir, tedge_dir, tmp_path):
    valgrind = require_commands("valgrind")["valgrind"]
    if is_asan_build(bin_path("tedge-p11-server")):
        pytest.skip("valgrind cannot run an AddressSanitizer build; the plain build runs this test")
    token = softhsm.init_token()
    ec = softhsm.add_key(token, "ec-p256", label="ec", id="01")
    rsa = softhsm.add_key(token, "rsa-2048", label="rsa", id="02")
    srv = P11Server(softhsm, short_tmp_dir, tedge_dir)
    vlog = tmp_path / "valgrind.log"
    cmd = [valgrind, "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
           "--show-leak-kinds=definite", f"--log-file={vlog}",
           *srv.command("--max-clients", "2", "--frame-timeout", "5s")]
    srv.start(cmd=cmd, env=srv.env(pin=token.pin), timeout=VALGRIND_TIMEOUT)

    def sign(key, scheme, **extra):
        return {"v": 1, "op": "sign", "uri": key.uri, "scheme": scheme,
                "digest": base64.b64encode(digest_for(scheme, b"vg")).decode(), **extra}

    requests = [{"v": 1, "op": op} for op in ("ping", "list_tokens", "list_keys", "status")]
    requests += [{"v": 1, "op": op, "uri": ec.uri} for op in ("key_info", "public_key")]
    requests += [sign(ec, "ecdsa_sha256"), sign(ec, "ecdsa_sha512"), sign(rsa, "rsa_pss_sha256"),
                 sign(rsa, "rsa_pkcs1_sha384"), sign(rsa, "rsa_pkcs1_sha256", pin="000000"),
                 {"v": 1, "op": "create_key", "key_type": "ec", "label": "x"}]
    with socket.socket(socket.AF_UNIX) as a, socket.socket(socket.AF_UNIX) as b:
        for s in (a, b):
            s.settimeout(VALGRIND_TIMEOUT)
            s.connect(str(srv.socket_path))
        results = []
        for req in requests:
            a.sendall(frame(req))
            results.append(read_reply(a))
        assert all(r is not None for r in results), results
        assert [r["ok"] for r in results[:10]] == [True] * 10, results
        assert results[10]["error"]["code"] == "pin_incorrect"
        assert results[11]["error"]["code"] == "unsupported"
        b.sendall(frame(b"not json"))
        assert read_reply(b)["error"]["code"] == "malformed"
        with socket.socket(socket.AF_UNIX) as busy:  # a and b hold both slots
            busy.settimeout(VALGRIND_TIMEOUT)
            busy.connect(str(srv.socket_path))
            assert read_reply(busy)["error"]["code"] == "busy"
        b.sendall(b"\xff\xff\xff\xff")
        assert read_reply(b)["error"]["code"] == "too_large"
    rc = srv.stop(timeout=VALGRIND_TIMEOUT)
    report = vlog.read_text()
    assert rc == 0, report
    assert "ERROR SUMMARY: 0 errors" in report, report
    assert "definitely lost: 0 bytes" in report or "All heap blocks were freed" in report, report
