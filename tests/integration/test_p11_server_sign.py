"""tedge-p11-server signing through its real socket with real SoftHSM2 tokens: every key type
and scheme verified by openssl, the scope URI merge, key selection (the first key signs), wrong
PINs (more in test_p11_server_pins.py), keys added after start, the read-only operations and the
request log."""

import base64
import os
import re

import pytest

from fixtures.keys import public_der, public_pem_of
from fixtures.p11server import (EC_SCHEMES, RSA_SCHEMES, digest_for, openssl_verify,
                                p11_server_fixture)

MULTIPLE_KEYS_WARNING = ("Multiple keys were found. If the wrong one was chosen, please use a URI "
                         "that uniquely identifies a key.")


def b64(data):
    return base64.b64encode(data).decode()


def sign(client, scheme, data, **fields):
    """The reply to a sign request for the digest of `data`."""
    return client.request("sign", scheme=scheme, digest=b64(digest_for(scheme, data)), **fields)


def signature_of(reply):
    assert reply["ok"] is True, reply
    return base64.b64decode(reply["result"]["signature"])


@pytest.fixture
def server(softhsm, short_tmp_dir, tedge_dir):
    yield from p11_server_fixture(softhsm, short_tmp_dir, tedge_dir)


@pytest.mark.parametrize("key_type,schemes", [
    ("ec-p256", EC_SCHEMES),
    ("ec-p384", EC_SCHEMES),
    ("ec-p521", EC_SCHEMES),
    ("rsa-2048", RSA_SCHEMES),
    ("rsa-3072", RSA_SCHEMES),
    ("rsa-4096", RSA_SCHEMES),
])
def test_signatures_verify_with_openssl(server, softhsm, tmp_path, key_type, schemes):
    token = softhsm.init_token()
    key = softhsm.add_key(token, key_type)
    server.start(pin=token.pin)
    with server.client() as c:
        for scheme in schemes:
            data = os.urandom(200)
            sig = signature_of(sign(c, scheme, data, uri=key.uri))
            assert openssl_verify(key.public_pem, data, sig, scheme, tmp_path / scheme), scheme
            # the check itself can fail: other data does not verify
            assert not openssl_verify(key.public_pem, data + b"x", sig, scheme, tmp_path / "neg")
        reply = c.request("public_key", uri=key.uri)
        assert reply["ok"], reply
        daemon_pem = tmp_path / "daemon.pem"
        daemon_pem.write_text(reply["result"]["pem"])
        assert public_der(daemon_pem) == public_der(key.public_pem)
    signs = server.requests("sign")
    assert [r["result"] for r in signs] == ["ok"] * len(schemes)


def test_request_log_line_names_op_peer_uri_result(server, softhsm):
    token = softhsm.init_token()
    key = softhsm.add_key(token, "ec-p256")
    server.start(pin=token.pin)
    with server.client() as c:
        signature_of(sign(c, "ecdsa_sha256", b"log me", uri=key.uri))
        assert c.request("key_info", uri="pkcs11:token=tedge;object=missing")["ok"] is False
    rows = server.requests()
    sign_row = next(r for r in rows if r["op"] == "sign")
    assert sign_row["pid"] == str(os.getpid())
    assert sign_row["uid"] == str(os.getuid())
    assert sign_row["uri"] == key.uri
    assert sign_row["result"] == "ok"
    info_row = next(r for r in rows if r["op"] == "key_info")
    assert info_row["result"] == "key_not_found"


def test_scope_uri_of_the_daemon_wins(server, softhsm, tmp_path):
    scoped = softhsm.init_token(label="scoped")
    other = softhsm.init_token(label="other")
    scoped_key = softhsm.add_key(scoped, "ec-p256", label="tedge-key", variant=0)
    other_key = softhsm.add_key(other, "ec-p256", label="tedge-key", variant=1)
    server.start("--uri", "pkcs11:token=scoped", pin=scoped.pin)
    data = b"which token signs this?"
    with server.client() as c:
        sig = signature_of(sign(c, "ecdsa_sha256", data, uri="pkcs11:token=other;object=tedge-key"))
        info = c.request("key_info", uri="pkcs11:token=other")
    assert openssl_verify(scoped_key.public_pem, data, sig, "ecdsa_sha256", tmp_path / "a")
    assert not openssl_verify(other_key.public_pem, data, sig, "ecdsa_sha256", tmp_path / "b")
    assert info["ok"] and info["result"]["token_label"] == "scoped", info


def first_private_key_id(softhsm, token, label):
    """The CKA_ID of the first private key labelled `label` in the token's own object order
    (C_FindObjects, as pkcs11-tool lists it): the one the core's "first key wins" rule takes."""
    listing = softhsm.pkcs11_tool(token, "--list-objects", "--type", "privkey").stdout
    keys = re.findall(r"^Private Key Object.*?\n\s+label:\s+(\S+)\n.*?\s+ID:\s+(\w+)", listing,
                      re.M | re.S)
    ids = [key_id for key_label, key_id in keys if key_label == label]
    assert len(ids) == 2, listing
    return ids[0]


def test_multiple_matching_keys_warn_and_first_wins(server, softhsm, tmp_path):
    token = softhsm.init_token()
    keys = {"01": softhsm.add_key(token, "ec-p256", label="dup", id="01", variant=0),
            "02": softhsm.add_key(token, "ec-p256", label="dup", id="02", variant=1)}
    first = first_private_key_id(softhsm, token, "dup")
    other = "02" if first == "01" else "01"
    # public keys from the imported key files: an export by label would be just as ambiguous
    pub = {i: public_pem_of(k.key_file, tmp_path / f"pub-{i}.pem") for i, k in keys.items()}
    assert public_der(pub["01"]) != public_der(pub["02"])
    server.start(pin=token.pin)
    data = b"which of the two keys signs this?"
    with server.client() as c:
        sig = signature_of(sign(c, "ecdsa_sha256", data, uri="pkcs11:token=tedge;object=dup"))
    assert MULTIPLE_KEYS_WARNING in server.log()
    assert openssl_verify(pub[first], data, sig, "ecdsa_sha256", tmp_path / "first")
    assert not openssl_verify(pub[other], data, sig, "ecdsa_sha256", tmp_path / "other")


def test_wrong_pin_is_pin_incorrect_and_never_logged(server, softhsm):
    token = softhsm.init_token(pin="123456")
    key = softhsm.add_key(token, "ec-p256")
    server.start()  # no configured PIN: the request's PIN is the only one
    with server.client() as c:
        signature_of(sign(c, "ecdsa_sha256", b"d", uri=key.uri, pin=token.pin))
        reply = sign(c, "ecdsa_sha256", b"d", uri=key.uri, pin="987123")
        assert reply["ok"] is False
        assert reply["error"]["code"] == "pin_incorrect", reply
        assert reply["error"]["retryable"] is False
        # another wrong PIN right after waits out the cooldown: the token is not asked
        reply = sign(c, "ecdsa_sha256", b"d", uri=key.uri + "?pin-value=987124")
        assert reply["error"]["code"] == "busy", reply
        # the right PIN still works afterwards, from the request or the URI
        signature_of(sign(c, "ecdsa_sha256", b"d", uri=key.uri, pin=token.pin))
        signature_of(sign(c, "ecdsa_sha256", b"d", uri=key.uri + "?pin-value=" + token.pin))
    log = server.log()
    assert "98712" not in log and token.pin not in log
    assert "pin-value" not in log
    assert key.uri in log
    assert [r["result"] for r in server.requests("sign")] == [
        "ok", "pin_incorrect", "busy", "ok", "ok"]


def test_no_pin_anywhere_is_pin_required(server, softhsm):
    token = softhsm.init_token()
    key = softhsm.add_key(token, "ec-p256")
    server.start()
    with server.client() as c:
        reply = sign(c, "ecdsa_sha256", b"d", uri=key.uri)
    assert reply["error"]["code"] == "pin_required", reply


def test_key_added_after_start_is_found(server, softhsm, tmp_path):
    token = softhsm.init_token()
    first = softhsm.add_key(token, "ec-p256", label="first", id="01")
    server.start(pin=token.pin)
    with server.client() as c:
        signature_of(sign(c, "ecdsa_sha256", b"before", uri=first.uri))
        late = softhsm.add_key(token, "rsa-2048", label="late", id="02")
        data = b"after"
        sig = signature_of(sign(c, "rsa_pss_sha256", data, uri=late.uri))
    assert openssl_verify(late.public_pem, data, sig, "rsa_pss_sha256", tmp_path)


def test_read_only_operations(server, softhsm):
    token = softhsm.init_token()
    ec = softhsm.add_key(token, "ec-p384", label="ec", id="01")
    softhsm.add_key(token, "rsa-2048", label="rsa", id="02")
    server.start(pin=token.pin)
    with server.client() as c:
        ping = c.request("ping")
        assert ping["ok"] and ping["result"]["versions"] == [1], ping
        info = c.request("key_info", uri=ec.uri)["result"]
        assert (info["type"], info["bits"], info["curve"], info["label"]) == ("ec", 384, "P-384", "ec")
        assert set(EC_SCHEMES) <= set(info["schemes"])
        tokens = c.request("list_tokens")["result"]["tokens"]
        assert [t["label"] for t in tokens] == ["tedge"]
        assert tokens[0]["login_required"] is True
        keys = c.request("list_keys", uri="pkcs11:token=tedge")["result"]["keys"]
        assert sorted(k["label"] for k in keys) == ["ec", "rsa"]
        signature_of(sign(c, "ecdsa_sha384", b"count me", uri=ec.uri))
        status = c.request("status")["result"]
        assert status["signatures"] >= 1 and status["token_present"] is True
        assert status["module_path"] == softhsm.module
