"""The PKCS#11 core (common/p11*.c) against real SoftHSM2 tokens and p11-kit's trust module,
driven through tests/tools/p11drv: every key type and scheme verified by openssl, our SPKI equal
to p11tool's, key selection by URI, the scope merge, PINs, and tokens or keys that appear after
the module was loaded."""

import hashlib
import os
import re
import time

import pytest

from fixtures.keys import public_der, public_pem_of
from fixtures.util import run, tool_path

TRUST_MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so"
MULTIPLE_KEYS_WARNING = ("Multiple keys were found. If the wrong one was chosen, please use a URI "
                         "that uniquely identifies a key.")
EC_SCHEMES = ["ecdsa_sha256", "ecdsa_sha384", "ecdsa_sha512"]
RSA_SCHEMES = ["rsa_pkcs1_sha256", "rsa_pkcs1_sha384", "rsa_pkcs1_sha512",
               "rsa_pss_sha256", "rsa_pss_sha384", "rsa_pss_sha512"]


def drv(softhsm, *args, pin=None, scope=None, module=None, check=True, opts=()):
    """Runs p11drv on the test's SoftHSM (or `module`) and returns the CompletedProcess."""
    cmd = [tool_path("p11drv"), "--module", module or softhsm.module, *opts]
    if scope is not None:
        cmd += ["--scope", scope]
    if pin is not None:
        cmd += ["--pin", pin]
    return run([*cmd, *args], env=softhsm.env, check=check)


def hash_name(scheme):
    return scheme.rsplit("_", 1)[1]


def openssl_verify(public_pem, scheme, data, sig_path):
    """openssl's verdict on a signature over `data` (hashed with the scheme's hash)."""
    digest = hashlib.new(hash_name(scheme), data).digest()
    dg_path = sig_path.with_suffix(".digest")
    dg_path.write_bytes(digest)
    if scheme.startswith("rsa_pss"):
        cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", public_pem, "-in", dg_path,
               "-sigfile", sig_path, "-pkeyopt", "rsa_padding_mode:pss",
               "-pkeyopt", "rsa_pss_saltlen:digest", "-pkeyopt", f"digest:{hash_name(scheme)}"]
    else:
        data_path = sig_path.with_suffix(".data")
        data_path.write_bytes(data)
        cmd = ["openssl", "dgst", f"-{hash_name(scheme)}", "-verify", public_pem, "-signature",
               sig_path, data_path]
    return run(cmd, check=False)


def sign_file(softhsm, tmp_path, uri, scheme, data, pin, name="sig"):
    """Signs the digest of `data` with p11drv; returns the path of the raw signature."""
    digest = hashlib.new(hash_name(scheme), data).hexdigest()
    out = tmp_path / f"{name}-{scheme}.bin"
    drv(softhsm, "sign", uri, scheme, digest, pin=pin, opts=["--out", out])
    return out


def error_line(cp):
    m = re.search(r"^error code=(\S+) ckr=(\S+) retryable=(\d): (.*)$", cp.stderr, re.M)
    assert m, cp.stderr
    return m.group(1), m.group(2), m.group(4)


@pytest.mark.parametrize("key_type,schemes", [
    ("ec-p256", EC_SCHEMES), ("ec-p384", EC_SCHEMES), ("ec-p521", EC_SCHEMES),
    ("rsa-2048", RSA_SCHEMES), ("rsa-3072", RSA_SCHEMES), ("rsa-4096", RSA_SCHEMES),
])
def test_every_key_type_and_scheme_verifies(softhsm, tmp_path, key_type, schemes):
    token = softhsm.init_token()
    key = softhsm.add_key(token, key_type)
    for scheme in schemes:
        data = os.urandom(100)
        sig = sign_file(softhsm, tmp_path, key.uri, scheme, data, token.pin)
        verdict = openssl_verify(key.public_pem, scheme, data, sig)
        assert verdict.returncode == 0, f"{key_type} {scheme}: {verdict.stdout}{verdict.stderr}"
        # and a signature over other data does not verify: openssl really checked it
        assert openssl_verify(key.public_pem, scheme, data + b"!", sig).returncode != 0
    # our SubjectPublicKeyInfo is p11tool's export, byte for byte
    ours = tmp_path / "ours.der"
    drv(softhsm, "pubkey", key.uri, pin=token.pin, opts=["--out", ours])
    assert ours.read_bytes() == public_der(key.public_pem)
    pem = drv(softhsm, "pubkey", key.uri, pin=token.pin).stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    (tmp_path / "ours.pem").write_text(pem)
    assert public_der(tmp_path / "ours.pem") == public_der(key.public_pem)


def test_key_info_reports_type_size_and_schemes(softhsm):
    token = softhsm.init_token()
    softhsm.add_key(token, "ec-p384", label="ec", id="01")
    softhsm.add_key(token, "rsa-3072", label="rsa", id="02")
    out = drv(softhsm, "info", "pkcs11:object=ec", pin=token.pin).stdout
    assert "type=ec bits=384 curve=P-384 label=ec id=01 token=tedge" in out
    assert "schemes=ecdsa_sha256,ecdsa_sha384,ecdsa_sha512" in out
    out = drv(softhsm, "info", "pkcs11:object=rsa", pin=token.pin).stdout
    assert "type=rsa bits=3072 curve=none label=rsa id=02" in out
    assert "schemes=" + ",".join(RSA_SCHEMES) in out
    # the URI that info gives selects exactly that key
    uri = re.search(r"uri=(\S+)", out).group(1)
    assert f"serial={token.serial}" in uri and "type=private" in uri
    assert drv(softhsm, "info", uri, pin=token.pin).stdout == out


def test_keys_without_public_objects(softhsm, tmp_path):
    """SoftHSM keeps RSA moduli on private keys, but no CKA_EC_POINT: RSA public keys still come
    out; for EC the error says what is missing, and signing works either way."""
    token = softhsm.init_token()
    rsa = softhsm.add_key(token, "rsa-2048", label="rsa", id="01", public_object=False)
    ec = softhsm.add_key(token, "ec-p256", label="ec", id="02", public_object=False)
    ours = tmp_path / "rsa.der"
    drv(softhsm, "pubkey", rsa.uri, pin=token.pin, opts=["--out", ours])
    assert ours.read_bytes() == public_der(rsa.key_file, private=True)
    cp = drv(softhsm, "pubkey", ec.uri, pin=token.pin, check=False)
    assert cp.returncode == 2
    code, _, msg = error_line(cp)
    assert code == "unsupported" and "CKA_EC_POINT" in msg
    data = os.urandom(64)
    sig = sign_file(softhsm, tmp_path, ec.uri, "ecdsa_sha256", data, token.pin)
    assert openssl_verify(ec.public_pem, "ecdsa_sha256", data, sig).returncode == 0


@pytest.fixture
def two_keys(softhsm):
    token = softhsm.init_token(label="tedge")
    ec = softhsm.add_key(token, "ec-p256", label="k1", id="01")
    rsa = softhsm.add_key(token, "rsa-2048", label="k2", id="02")
    return token, ec, rsa


@pytest.mark.parametrize("uri,expect", [
    ("pkcs11:object=k2", "label=k2 id=02"),
    ("pkcs11:id=%02", "label=k2 id=02"),
    ("pkcs11:token=tedge;object=k1", "label=k1 id=01"),
    ("pkcs11:token=tedge;object=k2;type=private", "label=k2 id=02"),
    ("pkcs11:token=tedge;id=%01;type=cert", "label=k1 id=01"),  # a certificate's URI
])
def test_uri_selects_the_key(softhsm, two_keys, uri, expect):
    token, _, _ = two_keys
    cp = drv(softhsm, "info", uri, pin=token.pin)
    assert expect in cp.stdout
    assert MULTIPLE_KEYS_WARNING not in cp.stderr


def test_token_only_uri_takes_the_first_key_and_warns(softhsm, two_keys):
    token, _, _ = two_keys
    cp = drv(softhsm, "info", "pkcs11:token=tedge", pin=token.pin)
    listed = drv(softhsm, "keys", "pkcs11:token=tedge", pin=token.pin).stdout.splitlines()
    assert len(listed) == 2
    assert listed[0].startswith(cp.stdout.strip().split(" token=")[0])  # the first one found
    assert MULTIPLE_KEYS_WARNING in cp.stderr


def test_two_keys_with_the_same_label_warn(softhsm, tmp_path):
    token = softhsm.init_token()
    a = softhsm.add_key(token, "ec-p256", label="dup", id="0a", variant=1)
    b = softhsm.add_key(token, "ec-p256", label="dup", id="0b", variant=2)
    cp = drv(softhsm, "info", "pkcs11:object=dup", pin=token.pin)
    assert re.search(r"WARN p11drv: " + re.escape(MULTIPLE_KEYS_WARNING) + "$", cp.stderr, re.M)
    chosen = {"0a": a, "0b": b}[re.search(r" id=(\w+) ", cp.stdout).group(1)]
    other = b if chosen is a else a
    # the signature comes from exactly the key the URI resolved to (public keys from the key
    # files: an export by label would be as ambiguous as the label)
    data = os.urandom(32)
    sig = sign_file(softhsm, tmp_path, "pkcs11:object=dup", "ecdsa_sha256", data, token.pin)
    chosen_pub = public_pem_of(chosen.key_file, tmp_path / "chosen.pem")
    other_pub = public_pem_of(other.key_file, tmp_path / "other.pem")
    assert openssl_verify(chosen_pub, "ecdsa_sha256", data, sig).returncode == 0
    assert openssl_verify(other_pub, "ecdsa_sha256", data, sig).returncode != 0
    # the id makes it unique: no warning
    cp = drv(softhsm, "info", f"pkcs11:object=dup;id=%{other.id}", pin=token.pin)
    assert f"id={other.id} " in cp.stdout
    assert MULTIPLE_KEYS_WARNING not in cp.stderr


def test_wrong_token_and_wrong_object(softhsm, two_keys):
    token, _, _ = two_keys
    cp = drv(softhsm, "sign", "pkcs11:token=nope;object=k1", "ecdsa_sha256", "00" * 32,
             pin=token.pin, check=False)
    assert cp.returncode == 2
    code, _, msg = error_line(cp)
    assert code == "token_not_found"
    assert "'pkcs11:token=nope;object=k1'" in msg and "may be disconnected" in msg
    cp = drv(softhsm, "sign", "pkcs11:token=tedge;object=nope?pin-value=" + token.pin,
             "ecdsa_sha256", "00" * 32, check=False)
    code, _, msg = error_line(cp)
    assert code == "key_not_found"
    assert "'pkcs11:token=tedge;object=nope'" in msg
    assert token.pin not in cp.stderr  # the pin-value is never printed


def test_invalid_uri_names_the_bad_part(softhsm, two_keys):
    token, _, _ = two_keys
    cp = drv(softhsm, "info", "pkcs11:token=tedge;objekt=k1", pin=token.pin, check=False)
    code, _, msg = error_line(cp)
    assert code == "invalid_uri" and "'objekt=k1'" in msg
    cp = drv(softhsm, "info", "pkcs11:token=tedge;object=k%1", pin=token.pin, check=False)
    code, _, msg = error_line(cp)
    assert code == "invalid_uri" and "'object=k%1'" in msg


def test_two_tokens(softhsm, tmp_path):
    t1 = softhsm.init_token(label="first", pin="111111")
    t2 = softhsm.init_token(label="second", pin="222222")
    a = softhsm.add_key(t1, "ec-p256", label="a", id="01")
    b = softhsm.add_key(t2, "rsa-2048", label="b", id="02")
    tokens = drv(softhsm, "tokens").stdout.splitlines()
    labels = [re.search(r"label=(\S+)", line).group(1) for line in tokens]
    assert sorted(labels) == ["first", "second"]
    assert all("login_required=1" in line for line in tokens)
    data = os.urandom(50)
    for key, tok in ((a, t1), (b, t2)):
        scheme = "ecdsa_sha256" if key is a else "rsa_pss_sha256"
        sig = sign_file(softhsm, tmp_path, key.uri, scheme, data, tok.pin)
        assert openssl_verify(key.public_pem, scheme, data, sig).returncode == 0
    # without token attributes the first token is taken, even if the key is on another one
    first, other = (t1, b) if labels[0] == "first" else (t2, a)
    cp = drv(softhsm, "info", f"pkcs11:object={other.label}", pin=first.pin, check=False)
    code, _, msg = error_line(cp)
    assert code == "key_not_found" and f"token '{first.label}'" in msg


def test_scope_attributes_win(softhsm):
    t1 = softhsm.init_token(label="first", pin="111111")
    t2 = softhsm.init_token(label="second", pin="111111")
    softhsm.add_key(t1, "ec-p256", label="a", id="01")
    softhsm.add_key(t2, "rsa-2048", label="b", id="02")
    # the scope's token beats the request's
    out = drv(softhsm, "info", "pkcs11:token=second;object=a", scope="pkcs11:token=first",
              pin=t1.pin).stdout
    assert "label=a id=01 token=first" in out
    cp = drv(softhsm, "info", "pkcs11:token=first;object=a", scope="pkcs11:token=second",
             pin=t1.pin, check=False)
    code, _, msg = error_line(cp)
    assert code == "key_not_found" and "token 'second'" in msg
    # the scope alone selects the key
    out = drv(softhsm, "info", "pkcs11:", scope="pkcs11:token=second;object=b", pin=t2.pin).stdout
    assert "label=b id=02 token=second" in out


def test_pin_sources(softhsm, tmp_path, two_keys):
    token, ec, _ = two_keys
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin + "\n")
    digest = "11" * 32
    drv(softhsm, "sign", ec.uri, "ecdsa_sha256", digest, opts=["--pin-file", pin_file])
    drv(softhsm, "sign", f"{ec.uri}?pin-source=file:{pin_file}", "ecdsa_sha256", digest)
    drv(softhsm, "sign", ec.uri_with_pin, "ecdsa_sha256", digest, pin="000000")  # URI wins
    cp = drv(softhsm, "sign", ec.uri, "ecdsa_sha256", digest, check=False)
    code, _, msg = error_line(cp)
    assert code == "pin_required" and "no default PIN" in msg


def test_pin_source_must_be_a_plain_file(softhsm, tmp_path, two_keys):
    """Module mode reads pin-source with the user's own rights, but never blocks on a FIFO,
    never follows a link, and says the same for every unusable path."""
    token, ec, _ = two_keys
    (tmp_path / "real").write_text(token.pin + "\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    os.mkfifo(tmp_path / "fifo")
    digest = "11" * 32
    messages = set()
    for name in ("fifo", "link", "missing"):
        source = f"file:{tmp_path / name}"
        cp = drv(softhsm, "sign", f"{ec.uri}?pin-source={source}", "ecdsa_sha256", digest,
                 check=False)
        code, _, msg = error_line(cp)
        assert code == "invalid_argument", cp.stderr
        messages.add(msg.replace(source, "<source>"))
    assert messages == {"'<source>' (the URI's pin-source) cannot be used as a PIN source: it "
                        "must be a regular file (not a symbolic link, FIFO or device) that this "
                        "process can read, holding the PIN on one line of 1 to 256 characters."}
    drv(softhsm, "sign", f"{ec.uri}?pin-source=file:{tmp_path / 'real'}", "ecdsa_sha256", digest)


def test_out_of_range_slot_id_is_refused(softhsm, two_keys):
    token, _, _ = two_keys
    cp = drv(softhsm, "info", "pkcs11:slot-id=99999999999999999999", pin=token.pin, check=False)
    code, _, msg = error_line(cp)
    assert code == "invalid_uri" and "'slot-id=99999999999999999999'" in msg, cp.stderr


def test_wrong_pin_reported_clearly_and_not_retried(softhsm, two_keys):
    token, ec, _ = two_keys
    cp = drv(softhsm, "sign-loop", ec.uri, "ecdsa_sha256", "5", pin="999999", check=False,
             opts=["--stats"])
    assert cp.returncode == 2
    assert "signatures=0 errors=5" in cp.stdout
    assert ("the PIN given for the key (device.key_pin or the request's PIN) is incorrect "
            "(CKR_PIN_INCORRECT)") in cp.stderr
    assert "refused the PIN given for the key (device.key_pin or the request's PIN) before" \
        in cp.stderr
    assert re.search(r"^stats: .* logins=1 ", cp.stderr, re.M), cp.stderr  # one C_Login in all
    assert "999999" not in cp.stderr + cp.stdout


def test_concurrent_signing_on_one_token(softhsm):
    token = softhsm.init_token()
    key = softhsm.add_key(token, "ec-p256")
    cp = drv(softhsm, "threads", key.uri, "ecdsa_sha256", "50", "4", pin=token.pin,
             opts=["--max-sessions", "4", "--stats"])
    assert "signatures=200 errors=0 bad=0 verified=yes" in cp.stdout
    assert re.search(r"^stats: .* logins=1 ", cp.stderr, re.M), cp.stderr


def wait_and_sign(softhsm, uri, pin, reload_interval=None):
    """Starts p11drv wait-and-sign; returns (Proc) after its first signature attempt."""
    from fixtures.util import Proc
    opts = ["--log-level", "info"]
    if reload_interval is not None:
        opts += ["--reload-interval", str(reload_interval)]
    proc = Proc([tool_path("p11drv"), "--module", softhsm.module, "--pin", pin, *opts,
                 "wait-and-sign", uri, "ecdsa_sha256", "22" * 32], env=softhsm.env,
                stdin=True, name="p11drv").start()
    proc.wait_for_output(r"^waiting$", timeout=30)
    return proc


def test_token_created_after_start_is_found(softhsm, tmp_path):
    softhsm.init_token(label="early")  # the module has a token, just not this one
    proc = wait_and_sign(softhsm, "pkcs11:token=late;object=k", "123456", reload_interval=1)
    assert re.search(r"^sign1 error code=token_not_found$", proc.stdout_text(), re.M)
    token = softhsm.init_token(label="late", pin="123456")
    key = softhsm.add_key(token, "ec-p256", label="k", id="01")
    time.sleep(1.1)  # past the (test-sized) reload interval
    proc.send("go\n")
    assert proc.wait(timeout=30) == 0, proc.output()
    sig_hex = re.search(r"^sign2 ok (\w+)$", proc.stdout_text(), re.M).group(1)
    sig = tmp_path / "sig"
    sig.write_bytes(bytes.fromhex(sig_hex))
    dg = tmp_path / "dg"
    dg.write_bytes(bytes.fromhex("22" * 32))
    run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", key.public_pem, "-in", dg,
         "-sigfile", sig])
    assert "reloading PKCS#11 module" in proc.stderr_text()


def test_key_imported_after_start_is_found(softhsm):
    token = softhsm.init_token()
    proc = wait_and_sign(softhsm, f"{token.uri};object=later", token.pin, reload_interval=1)
    assert re.search(r"^sign1 error code=key_not_found$", proc.stdout_text(), re.M)
    softhsm.add_key(token, "ec-p384", label="later", id="07")
    time.sleep(1.1)
    proc.send("go\n")
    assert proc.wait(timeout=30) == 0, proc.output()
    assert re.search(r"^sign2 ok 30\w+$", proc.stdout_text(), re.M)


def test_reload_is_rate_limited(softhsm):
    """With the default 30 s interval a second miss does not reload the module again."""
    softhsm.init_token(label="early")
    proc = wait_and_sign(softhsm, "pkcs11:token=late;object=k", "123456")
    token = softhsm.init_token(label="late", pin="123456")
    softhsm.add_key(token, "ec-p256", label="k", id="01")
    proc.send("go\n")
    assert proc.wait(timeout=30) == 2
    assert re.search(r"^sign2 error code=token_not_found$", proc.stdout_text(), re.M)
    assert proc.stderr_text().count("reloading PKCS#11 module") == 1


def test_token_without_login_p11_kit_trust(softhsm):
    """p11-kit's trust module: tokens without CKF_LOGIN_REQUIRED, used without C_Login."""
    if not os.path.exists(TRUST_MODULE):
        pytest.fail(f"{TRUST_MODULE} is missing: install p11-kit-modules ('make deps').")
    tokens = drv(softhsm, "tokens", module=TRUST_MODULE).stdout.splitlines()
    assert tokens and all("login_required=0" in t for t in tokens)
    cp = drv(softhsm, "keys", "pkcs11:", module=TRUST_MODULE, opts=["--stats"])
    assert cp.stdout == ""  # certificates only, no private keys
    assert re.search(r"^stats: token_present=1 .* logins=0 ", cp.stderr, re.M), cp.stderr
    cp = drv(softhsm, "sign", "pkcs11:", "ecdsa_sha256", "00" * 32, module=TRUST_MODULE,
             check=False, opts=["--stats"])
    assert error_line(cp)[0] == "key_not_found"
    assert re.search(r"^stats: .* logins=0 ", cp.stderr, re.M)
