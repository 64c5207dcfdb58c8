"""tedge-p11-server's PIN rules through its real socket with real SoftHSM2 tokens: a wrong PIN
from one client never costs another client its logged-in token, wrong PINs cannot burn the
token's tries (one login per burst, nothing untried while the token counts failures), empty
PINs, the daemon's own wrong PIN named in its log, and pin-source refused in requests (a FIFO
cannot hang the daemon, replies are no file oracle) while the daemon's own --uri may use it."""

import base64
import os
import threading
import time

import pytest

from fixtures.p11server import digest_for, openssl_verify, p11_server_fixture

CONFIGURED_PIN_NAME = ("the PIN configured for tedge-p11-server "
                       "(--pin/--pin-file/credential/device.cryptoki.pin)")
PIN_SOURCE_REFUSED = ("pin-source is not accepted in requests to tedge-p11-server; send the PIN "
                      "in the request or configure it on the server.")


@pytest.fixture
def server(softhsm, short_tmp_dir, tedge_dir):
    yield from p11_server_fixture(softhsm, short_tmp_dir, tedge_dir)


@pytest.fixture
def token_key(softhsm):
    token = softhsm.init_token(pin="123456")
    return token, softhsm.add_key(token, "ec-p256")


def sign(client, uri, data=b"pins", **fields):
    return client.request("sign", uri=uri, scheme="ecdsa_sha256",
                          digest=base64.b64encode(digest_for("ecdsa_sha256", data)).decode(),
                          **fields)


def signature_of(reply):
    assert reply["ok"] is True, reply
    return base64.b64decode(reply["result"]["signature"])


def error_of(reply):
    assert reply["ok"] is False, reply
    return reply["error"]


def logins(client):
    return client.call("status")["logins"]


def token_flags(client):
    (tok,) = client.call("list_tokens")["tokens"]
    return tok["pin_count_low"], tok["pin_final_try"], tok["pin_locked"]


def test_wrong_pin_of_one_client_does_not_log_out_another(server, token_key, tmp_path):
    """The token is logged in with the good PIN (first client); a second client's different,
    wrong PIN is refused, and the first client keeps signing with the same key."""
    token, key = token_key
    server.start()  # no configured PIN: each client brings its own
    with server.client() as good, server.client() as bad:
        signature_of(sign(good, key.uri, pin=token.pin))
        e = error_of(sign(bad, key.uri, pin="654321"))
        assert (e["code"], e["ckr_name"], e["retryable"]) == (
            "pin_incorrect", "CKR_PIN_INCORRECT", False), e
        assert "the PIN given for the key (device.key_pin or the request's PIN) is incorrect" \
            in e["message"]
        data = b"still signing after the wrong PIN"
        sig = signature_of(sign(good, key.uri, data=data, pin=token.pin))
        assert openssl_verify(key.public_pem, data, sig, "ecdsa_sha256", tmp_path / "v")
        # nothing was signed for the wrong PIN, and it is not sent to the token again
        before = logins(good)
        e = error_of(sign(bad, key.uri, pin="654321"))
        assert e["code"] == "pin_incorrect" and "before" in e["message"], e
        assert logins(good) == before
    log = server.log()
    assert "654321" not in log and token.pin not in log
    assert [r["result"] for r in server.requests("sign")] == [
        "ok", "pin_incorrect", "ok", "pin_incorrect"]


def test_burst_of_wrong_pins_is_one_login(server, token_key):
    token, key = token_key
    server.start()
    with server.client() as good, server.client() as bad:
        signature_of(sign(good, key.uri, pin=token.pin))
        assert logins(good) == 1
        codes = [error_of(sign(bad, key.uri, pin=f"99{i:04d}"))["code"] for i in range(12)]
        # the first is checked for real (log out, log in, log back in); the rest wait out the
        # cooldown without reaching the token
        assert codes == ["pin_incorrect"] + ["busy"] * 11, codes
        busy = error_of(sign(bad, key.uri, pin="990099"))
        assert busy["retryable"] is True and "ckr" not in busy, busy
        assert "is not tried for another" in busy["message"]
        assert logins(good) == 3
        # the good PIN signs through the cooldown, without logging in again
        for i in range(5):
            signature_of(sign(good, key.uri, data=b"%d" % i, pin=token.pin))
        assert logins(good) == 3
        # the token was logged back in with the good PIN, which resets its counter
        assert token_flags(good) == (False, False, False)


def test_counting_token_gets_no_untried_pin(server, softhsm, token_key):
    """SoftHSM2 sets CKF_USER_PIN_COUNT_LOW after a wrong PIN until a good login. A daemon that
    never saw a PIN work then tries no PIN from a request, not even the right one, until someone
    logs in with the token's own tool (its own configured PIN is another matter: next test)."""
    token, key = token_key
    bad = softhsm.pkcs11_tool(token, "--login", "--pin", "000000", "--list-objects",
                              check=False, login=False)
    assert bad.returncode != 0 and "CKR_PIN_INCORRECT" in bad.stdout + bad.stderr
    server.start()
    with server.client() as c:
        assert token_flags(c) == (True, False, False)
        e = error_of(sign(c, key.uri, pin=token.pin))
        assert e["code"] == "permission_denied" and e["retryable"] is True, e
        assert "CKF_USER_PIN_COUNT_LOW" in e["message"] and "pkcs11-tool" in e["message"]
        assert error_of(sign(c, key.uri, pin="111111"))["code"] == "permission_denied"
        assert logins(c) == 0  # not one C_Login
        # the operator logs in once with the right PIN: the count is reset, the retry works
        softhsm.pkcs11_tool(token, "--list-objects")
        assert token_flags(c) == (False, False, False)
        signature_of(sign(c, key.uri, pin=token.pin))
        assert logins(c) == 1


def test_counting_token_still_gets_the_daemons_own_pin(server, softhsm, token_key, tmp_path):
    """The daemon's configured PIN is the operator's, not a peer's: a token that counts one
    wrong PIN still gets it (once), so a device does not stay offline after a single typo."""
    token, key = token_key
    bad = softhsm.pkcs11_tool(token, "--login", "--pin", "000000", "--list-objects",
                              check=False, login=False)
    assert bad.returncode != 0
    server.start(pin=token.pin)
    with server.client() as c:
        assert token_flags(c) == (True, False, False)
        # a peer's untried PIN stays held back ...
        assert error_of(sign(c, key.uri, pin="111111"))["code"] == "permission_denied"
        assert logins(c) == 0
        # ... the daemon's own PIN logs in, and that resets the token's count
        sig = signature_of(sign(c, key.uri))
        assert openssl_verify(key.public_pem, b"pins", sig, "ecdsa_sha256", tmp_path / "v")
        assert logins(c) == 1
        assert token_flags(c) == (False, False, False)


def test_empty_pin_is_refused_without_a_try(server, token_key):
    token, key = token_key
    server.start()
    with server.client() as c:
        for fields in ({"pin": ""}, {"uri": key.uri + "?pin-value="}):
            e = error_of(sign(c, **{"uri": key.uri, **fields}))
            assert e["code"] == "invalid_argument" and "is empty" in e["message"], e
        assert logins(c) == 0
        assert token_flags(c) == (False, False, False)  # no try was used up
        signature_of(sign(c, key.uri, pin=token.pin))


def test_wrong_configured_pin_is_named_in_the_log(server, token_key):
    token, key = token_key
    server.start(pin="246800")
    with server.client() as c:
        e = error_of(sign(c, key.uri))
    assert e["code"] == "pin_incorrect", e
    assert f"{CONFIGURED_PIN_NAME} is incorrect" in e["message"]
    log = server.log()
    assert f"{CONFIGURED_PIN_NAME} is incorrect (CKR_PIN_INCORRECT)" in log, log
    assert "246800" not in log


def test_out_of_range_slot_id_is_invalid_uri(server, token_key):
    token, _ = token_key
    server.start(pin=token.pin)
    with server.client() as c:
        e = error_of(sign(c, "pkcs11:slot-id=99999999999999999999;object=tedge-key"))
    assert e["code"] == "invalid_uri", e
    assert "'slot-id=99999999999999999999' is not a slot number" in e["message"]


# ---- pin-source ----------------------------------------------------------------------------

def sign_when_a_slot_is_free(server, uri, timeout=10.0, **fields):
    """A sign request on a new connection, retried while the daemon answers that all its
    --max-clients slots are taken: a closed connection frees its slot a moment later (its thread
    must notice first), while a slot stuck for good would never free."""
    deadline = time.monotonic() + timeout
    while True:
        with server.client(timeout=5.0) as c:
            reply = sign(c, uri, **fields)
        busy = not reply["ok"] and "maximum of" in reply["error"]["message"]
        if not busy or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


def test_pin_source_in_a_request_is_refused_at_once(server, token_key, tmp_path):
    """A FIFO used to hang the connection thread for good (and --max-clients of them the whole
    daemon); files the daemon can read but the client cannot were an existence/size oracle."""
    token, key = token_key
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    secret = tmp_path / "secret"
    secret.write_text("x" * 1000)
    secret.chmod(0o600)
    targets = [fifo, secret, tmp_path / "missing", tmp_path]
    server.start("--max-clients", "2", pin=token.pin)
    replies = []
    for target in targets:  # the old daemon never answered for the FIFO
        replies.append(error_of(sign_when_a_slot_is_free(
            server, f"{key.uri}?pin-source=file:{target}")))
    # one answer for all of them: nothing about the file, and nothing was opened
    assert {(e["code"], e["message"], e["retryable"]) for e in replies} == {
        ("invalid_uri", PIN_SOURCE_REFUSED, False)}, replies
    # every slot is free again: two clients are served at once (once the last closed
    # connection's thread has let go of its slot)
    deadline = time.monotonic() + 10.0
    while True:
        with server.client() as a, server.client() as b:
            ra, rb = sign(a, key.uri), sign(b, key.uri)
        if (ra["ok"] and rb["ok"]) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    signature_of(ra)
    signature_of(rb)
    assert all(r["result"] == "invalid_uri" for r in server.requests("sign")[:len(targets)])
    # and the daemon stops cleanly: no thread is stuck in open()
    assert server.stop(timeout=15) == 0
    assert "did not finish" not in server.log()


def test_daemon_scope_may_use_pin_source(server, token_key, tmp_path):
    token, key = token_key
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin + "\n")
    server.start("--uri", f"pkcs11:token={token.label}?pin-source=file:{pin_file}")
    with server.client() as c:
        signature_of(sign(c, "pkcs11:object=tedge-key"))
        # a client's own pin-source stays refused, even next to the scope's
        e = error_of(sign(c, f"pkcs11:object=tedge-key?pin-source=file:{pin_file}"))
        assert e["code"] == "invalid_uri" and e["message"] == PIN_SOURCE_REFUSED, e


def test_daemon_scope_pin_source_fifo_does_not_hang(server, token_key, tmp_path):
    """Even the administrator's own pin-source is opened without blocking."""
    token, key = token_key
    fifo = tmp_path / "pin-fifo"
    os.mkfifo(fifo)
    server.start("--uri", f"pkcs11:token={token.label}?pin-source=file:{fifo}")
    result = {}

    def request():
        with server.client(timeout=10.0) as c:
            result["reply"] = sign(c, "pkcs11:object=tedge-key")

    t = threading.Thread(target=request)
    t.start()
    t.join(timeout=15)
    if t.is_alive():  # unblock the daemon's open() so that the test can end
        with open(fifo, "w"):
            pass
        t.join(timeout=15)
        pytest.fail("the daemon hung opening a FIFO named by its own pin-source")
    e = error_of(result["reply"])
    assert e["code"] == "invalid_argument", e
    assert "cannot be used as a PIN source" in e["message"]
