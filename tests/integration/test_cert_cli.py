"""`tedge cert create|create-csr|show|remove` against the real binary: key files (mode off),
SoftHSM2 keys in-process (mode module) and through tedge-p11-server (mode socket), every result
checked with openssl (signature, public key, subject, algorithm, extensions, file modes)."""

import datetime
import hashlib
import os
import re
import stat

import pytest

from fixtures.keys import public_der
from fixtures.p11server import clean_env
from fixtures.pki import utcnow
from fixtures.util import bin_path, run

HSM_KEY_TYPES = ["ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096"]
SIG_ALG = {"ec-p256": "ecdsa-with-SHA256", "ec-p384": "ecdsa-with-SHA384",
           "ec-p521": "ecdsa-with-SHA512", "rsa-2048": "sha256WithRSAEncryption",
           "rsa-3072": "sha256WithRSAEncryption", "rsa-4096": "sha256WithRSAEncryption"}
KEY_LINE = {"ec-p256": "EC P-256", "ec-p384": "EC P-384", "ec-p521": "EC P-521",
            "rsa-2048": "RSA 2048-bit", "rsa-3072": "RSA 3072-bit", "rsa-4096": "RSA 4096-bit"}
HSM_HINT = ("When using HSM, `tedge cert create` can't create the keypair automatically. "
            "Use `tedge hsm create-key` to create the key first.")


# ---- helpers -------------------------------------------------------------------------------

class Device:
    """A tedge config dir plus the environment tedge runs with (no TEDGE_* from the caller)."""

    def __init__(self, config_dir, env):
        self.dir = config_dir
        self.env = clean_env(env)
        self.certs = config_dir / "device-certs"
        self.cert = self.certs / "tedge-certificate.pem"
        self.key = self.certs / "tedge-private-key.pem"
        self.csr = self.certs / "tedge.csr"

    def configure(self, toml):
        (self.dir / "tedge.toml").write_text(toml)

    def tedge(self, *args, check=None):
        cp = run([bin_path("tedge"), "--config-dir", self.dir, *args], env=self.env, check=False)
        if check is not None:
            assert cp.returncode == check, f"exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
        return cp


def openssl_text(path, kind="x509"):
    return run(["openssl", kind, "-in", path, "-noout", "-text"]).stdout


def cert_public_der(cert, tmp_path):
    out = tmp_path / "cert-pub.pem"
    run(["openssl", "x509", "-in", cert, "-noout", "-pubkey", "-out", out])
    return public_der(out)


def csr_public_der(csr, tmp_path):
    out = tmp_path / "csr-pub.pem"
    run(["openssl", "req", "-in", csr, "-noout", "-pubkey", "-out", out])
    return public_der(out)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def sig_alg_params(path, kind="x509"):
    """For each signature AlgorithmIdentifier in the DER: whether a NULL parameter follows it."""
    pem = run(["openssl", kind, "-in", path, "-outform", "PEM"]).stdout
    lines = run(["openssl", "asn1parse"], input=pem).stdout.splitlines()
    found = []
    for i, line in enumerate(lines):
        if re.search(r"OBJECT\s+:(ecdsa-with-SHA\d+|sha\d+WithRSAEncryption)", line):
            found.append(i + 1 < len(lines) and "NULL" in lines[i + 1])
    return found


def openssl_date(text):
    return datetime.datetime.strptime(text.strip(), "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=datetime.timezone.utc)


def check_self_signed(cert, device_id, key_type, tmp_path):
    """The checks every created certificate passes; returns openssl's text of it."""
    text = openssl_text(cert)
    assert SIG_ALG[key_type] in text
    assert re.search(r"Subject: CN ?= ?" + re.escape(device_id) + ", O ?= ?Thin Edge, OU ?= ?Device", text), text
    assert re.search(r"Issuer: CN ?= ?" + re.escape(device_id) + ", O ?= ?Thin Edge, OU ?= ?Device", text), text
    assert "X509v3 Basic Constraints: critical" in text and "CA:TRUE" in text
    assert "X509v3 Subject Key Identifier" in text
    cp = run(["openssl", "verify", "-CAfile", cert, cert], check=False)
    assert cp.returncode == 0 and ": OK" in cp.stdout, cp.stdout + cp.stderr
    # RFC 5758: ECDSA identifiers carry no parameters; RFC 4055: RSA ones carry NULL
    params = sig_alg_params(cert)
    assert len(params) == 2, params
    assert params == ([True, True] if key_type.startswith("rsa") else [False, False])
    dates = dict(line.split("=", 1) for line in run(
        ["openssl", "x509", "-in", cert, "-noout", "-startdate", "-enddate"]).stdout.splitlines())
    start, end = openssl_date(dates["notBefore"]), openssl_date(dates["notAfter"])
    assert end - start == datetime.timedelta(days=365)
    assert abs(start - (utcnow() - datetime.timedelta(days=1))) < datetime.timedelta(minutes=10)
    assert mode_of(cert) == 0o444
    return text


def check_csr(csr, device_id, key_type):
    cp = run(["openssl", "req", "-in", csr, "-verify", "-noout", "-text"], check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "verify OK" in cp.stdout + cp.stderr
    assert SIG_ALG[key_type] in cp.stdout
    assert re.search(r"Subject: CN ?= ?" + re.escape(device_id) + ", O ?= ?Thin Edge, OU ?= ?Device",
                     cp.stdout), cp.stdout
    params = sig_alg_params(csr, kind="req")
    assert params == ([True] if key_type.startswith("rsa") else [False])
    assert mode_of(csr) == 0o444


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def device(tedge_dir, softhsm):
    return Device(tedge_dir, softhsm.env)


@pytest.fixture(params=["module", "socket"])
def hsm(request, device, softhsm):
    """A token, and `device` configured to use it in-process (module) or through a running
    tedge-p11-server (socket). .use(key_uri) points device.key_uri at a key."""
    token = softhsm.init_token()

    class Hsm:
        mode = request.param

        def use(self, key_uri):
            if self.mode == "module":
                device.configure(
                    "[device]\n"
                    f'key_uri = "{key_uri}"\n'
                    "[device.cryptoki]\n"
                    'mode = "module"\n'
                    f'module_path = "{softhsm.module}"\n'
                    f'pin = "{token.pin}"\n')
            else:
                device.configure(
                    "[device]\n"
                    f'key_uri = "{key_uri}"\n'
                    "[device.cryptoki]\n"
                    'mode = "socket"\n'
                    f'socket_path = "{server.socket_path}"\n')

    server = None
    if request.param == "socket":
        server = request.getfixturevalue("p11_server")
        server.start(pin=token.pin)
    h = Hsm()
    h.token = token
    return h


# ---- mode off ------------------------------------------------------------------------------

def test_create_in_mode_off_makes_a_p256_key_and_its_certificate(device, tmp_path):
    cp = device.tedge("cert", "create", "--device-id", "dev-off-1", check=0)
    assert "Certificate created successfully" in cp.stderr
    assert "=> the certificate has to be uploaded to the cloud" in cp.stderr
    check_self_signed(device.cert, "dev-off-1", "ec-p256", tmp_path)
    assert device.key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    assert mode_of(device.key) == 0o600
    key_text = run(["openssl", "pkey", "-in", device.key, "-noout", "-text"]).stdout
    assert "NIST CURVE: P-256" in key_text
    assert cert_public_der(device.cert, tmp_path) == public_der(device.key, private=True)
    # the output shows the certificate: path and upstream's thumbprint (SHA-1 of the DER)
    der = run(["openssl", "x509", "-in", device.cert, "-outform", "DER"], text=False).stdout
    assert f"Device certificate: {device.cert}\n" in cp.stdout
    assert f"Thumbprint: {hashlib.sha1(der).hexdigest().upper()}\n" in cp.stdout
    assert "Public key: EC P-256\n" in cp.stdout


def test_create_refuses_to_overwrite_and_leaves_both_files_alone(device):
    device.tedge("cert", "create", "--device-id", "first", check=0)
    cert, key = device.cert.read_bytes(), device.key.read_bytes()
    cp = device.tedge("cert", "create", "--device-id", "second", check=1)
    assert "Error: failed to create a test certificate for the device second." in cp.stderr
    assert "A certificate already exists and would be overwritten." in cp.stderr
    assert f'Existing file: "{device.cert}"' in cp.stderr
    assert "Run `tedge cert remove` first to generate a new certificate." in cp.stderr
    assert device.cert.read_bytes() == cert and device.key.read_bytes() == key


def test_create_in_mode_off_refuses_an_existing_key_and_writes_nothing(device):
    device.certs.mkdir()
    device.key.write_text("not my key\n")
    cp = device.tedge("cert", "create", "--device-id", "dev", check=1)
    assert "A private key already exists and would be overwritten." in cp.stderr
    assert not device.cert.exists()
    assert device.key.read_text() == "not my key\n"


def test_a_failed_certificate_write_leaves_no_new_key(device, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    device.configure(f'[device]\ncert_path = "{blocker}/cert.pem"\n')
    cp = device.tedge("cert", "create", "--device-id", "dev", check=1)
    assert "not a directory" in cp.stderr
    assert not device.key.exists()  # the key was written first and removed again


def test_create_rejects_a_bad_device_id_like_upstream(device):
    cp = device.tedge("cert", "create", "--device-id", "thin edge", check=1)
    assert ("The string '\"thin edge\"' contains characters which cannot be used in a name "
            "[use only A-Z, a-z, 0-9, ' = ( ) , - . ? % * _ ! @]") in cp.stderr
    cp = device.tedge("cert", "create", "--device-id", "x" * 65, check=1)
    assert "is more than 64 characters long and cannot be used as a name" in cp.stderr
    assert not device.cert.exists() and not device.key.exists()


def test_create_without_device_id_and_certificate_says_how(device):
    cp = device.tedge("cert", "create", check=1)
    assert ("No device ID is provided. Use `--device-id <name>` option to specify the device ID."
            in cp.stderr)


def test_csr_in_mode_off_reuses_the_key_and_the_certificate_cn(device, tmp_path):
    device.tedge("cert", "create", "--device-id", "dev-csr", check=0)
    cp = device.tedge("cert", "create-csr", check=0)
    assert "Certificate Signing Request was successfully created." in cp.stderr
    check_csr(device.csr, "dev-csr", "ec-p256")
    assert csr_public_der(device.csr, tmp_path) == public_der(device.key, private=True)
    # a second request replaces the first; --output-path and --device-id are honoured
    out = tmp_path / "out" / "req.csr"
    device.tedge("cert", "create-csr", "--device-id", "other-id", "--output-path", out, check=0)
    check_csr(out, "other-id", "ec-p256")
    device.tedge("cert", "create-csr", check=0)
    check_csr(device.csr, "dev-csr", "ec-p256")


def test_csr_in_mode_off_without_a_key_creates_one(device, tmp_path):
    device.tedge("cert", "create-csr", "--device-id", "fresh", check=0)
    assert mode_of(device.key) == 0o600
    check_csr(device.csr, "fresh", "ec-p256")
    assert csr_public_der(device.csr, tmp_path) == public_der(device.key, private=True)
    assert not device.cert.exists()


@pytest.mark.parametrize("key_type", HSM_KEY_TYPES)
def test_csr_signs_with_an_existing_key_file_of_any_type(device, key_cache, tmp_path, key_type):
    device.certs.mkdir()
    device.key.write_bytes(key_cache.get(key_type).read_bytes())
    device.tedge("cert", "create-csr", "--device-id", "filekey", check=0)
    check_csr(device.csr, "filekey", key_type)
    assert csr_public_der(device.csr, tmp_path) == public_der(device.key, private=True)


def test_remove_in_mode_off_removes_certificate_and_key(device):
    device.tedge("cert", "create", "--device-id", "gone", check=0)
    cp = device.tedge("cert", "remove", check=0)
    assert "Certificate was successfully removed" in cp.stderr
    assert not device.cert.exists() and not device.key.exists()
    cp = device.tedge("cert", "remove", check=0)
    assert "There is no certificate to remove" in cp.stderr
    device.tedge("cert", "create", "--device-id", "again", check=0)  # and it can start over


# ---- show ----------------------------------------------------------------------------------

def test_show_prints_upstreams_fields_for_a_ca_issued_certificate(device, pki, tmp_path):
    _, cert = pki.device_key_and_cert("shown-device", key_type="rsa-2048")
    cp = device.tedge("cert", "show", "--cert-path", cert, check=0)
    fields = dict(line.split(": ", 1) for line in cp.stdout.splitlines())
    assert fields["Device certificate"] == str(cert)
    assert fields["Subject"] == "CN=shown-device"
    assert fields["Issuer"] == "CN=tedge test CA"
    assert fields["Status"].startswith("VALID (expires in: ")
    out = run(["openssl", "x509", "-in", cert, "-noout", "-startdate", "-enddate", "-serial",
               "-fingerprint", "-sha1"]).stdout
    info = dict(line.split("=", 1) for line in out.splitlines())
    assert fields["Valid from"] == openssl_date(info["notBefore"]).strftime("%a, %d %b %Y %H:%M:%S +0000")
    assert fields["Valid up to"] == openssl_date(info["notAfter"]).strftime("%a, %d %b %Y %H:%M:%S +0000")
    serial = int(info["serial"], 16)
    assert fields["Serial number"] == f"{serial} (0x{serial:x})"
    assert fields["Thumbprint"] == info["sha1 Fingerprint"].replace(":", "")
    assert fields["Public key"] == "RSA 2048-bit"


def test_show_reports_expired_and_not_yet_valid(device, pki):
    now = utcnow()
    _, old = pki.device_key_and_cert("old", not_before=now - datetime.timedelta(days=30),
                                     not_after=now - datetime.timedelta(days=3))
    _, future = pki.device_key_and_cert("future", not_before=now + datetime.timedelta(days=5),
                                        not_after=now + datetime.timedelta(days=50))
    assert "Status: EXPIRED (since: 3days" in device.tedge("cert", "show", "--cert-path", old,
                                                           check=0).stdout
    assert re.search(r"^Status: NOT VALID YET \(will be in: (4days 23h \d+m \d+s|5days)\)$",
                     device.tedge("cert", "show", "--cert-path", future, check=0).stdout, re.M)


def test_show_without_certificate_fails_with_upstreams_message(device, tmp_path):
    cp = device.tedge("cert", "show", check=1)
    assert "Error: failed to show the device certificate" in cp.stderr
    assert "No certificate has been attached to that device." in cp.stderr
    assert f'Missing file: "{device.cert}"' in cp.stderr
    bad = tmp_path / "garbage.pem"
    bad.write_text("garbage\n")
    cp = device.tedge("cert", "show", "--cert-path", bad, check=1)
    assert "does not hold a PEM or DER X.509 certificate" in cp.stderr


# ---- HSM: module and socket ----------------------------------------------------------------

@pytest.mark.parametrize("key_type", HSM_KEY_TYPES)
def test_hsm_certificate_and_csr_are_signed_by_the_token_key(hsm, device, softhsm, tmp_path,
                                                             key_type):
    key = softhsm.add_key(hsm.token, key_type)
    hsm.use(key.uri)
    cp = device.tedge("cert", "create", "--device-id", f"hsm-{key_type}")
    assert cp.returncode == 0, cp.stderr
    check_self_signed(device.cert, f"hsm-{key_type}", key_type, tmp_path)
    assert cert_public_der(device.cert, tmp_path) == public_der(key.public_pem)
    assert not device.key.exists()  # the key stays in the token
    assert f"Public key: {KEY_LINE[key_type]}\n" in cp.stdout
    # the request: signed by the same key, device id taken from the certificate
    device.tedge("cert", "create-csr", check=0)
    check_csr(device.csr, f"hsm-{key_type}", key_type)
    assert csr_public_der(device.csr, tmp_path) == public_der(key.public_pem)


def test_hsm_missing_key_is_explained_and_nothing_is_written(hsm, device, softhsm):
    softhsm.add_key(hsm.token, "ec-p256")
    hsm.use(f"{hsm.token.uri};object=no-such-key;type=private")
    cp = device.tedge("cert", "create", "--device-id", "nokey")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert HSM_HINT in cp.stderr
    assert "no-such-key" in cp.stderr  # and the underlying reason
    assert not device.cert.exists() and not device.key.exists()


def test_hsm_remove_keeps_the_token_key(hsm, device, softhsm, tmp_path):
    key = softhsm.add_key(hsm.token, "ec-p256")
    hsm.use(key.uri)
    cp = device.tedge("cert", "create", "--device-id", "keepme")
    assert cp.returncode == 0, cp.stderr
    assert "Certificate was successfully removed" in device.tedge("cert", "remove", check=0).stderr
    assert not device.cert.exists()
    assert "tedge-key" in softhsm.list_objects(hsm.token)
    device.tedge("cert", "create", "--device-id", "keepme", check=0)
    assert cert_public_der(device.cert, tmp_path) == public_der(key.public_pem)


def test_module_mode_without_module_path_fails_clearly(device):
    device.configure('[device.cryptoki]\nmode = "module"\n')
    cp = device.tedge("cert", "create", "--device-id", "x", check=1)
    assert "device.cryptoki.module_path is not set" in cp.stderr
    assert not device.certs.exists()


def test_socket_mode_without_a_daemon_names_the_socket(device, short_tmp_dir):
    sock = short_tmp_dir / "absent.sock"
    device.configure('[device]\nkey_uri = "pkcs11:object=k"\n'
                     f'[device.cryptoki]\nmode = "socket"\nsocket_path = "{sock}"\n')
    cp = device.tedge("cert", "create", "--device-id", "x", check=1)
    assert f"Failed to connect to tedge-p11-server UNIX socket at '{sock}'" in cp.stderr
    assert not device.cert.exists()


# ---- clouds, profiles, options -------------------------------------------------------------

def test_cloud_profile_uses_its_own_certificate_path(device, tmp_path):
    prof = tmp_path / "second"
    device.configure(f'[c8y.profiles.second.device]\ncert_path = "{prof}/cert.pem"\n'
                     f'key_path = "{prof}/key.pem"\n')
    device.tedge("cert", "create", "--device-id", "second-dev", "c8y", "--profile", "second",
                 check=0)
    assert (prof / "cert.pem").exists() and (prof / "key.pem").exists()
    assert not device.cert.exists()
    cp = device.tedge("cert", "show", "c8y", "--profile", "second", check=0)
    assert "Subject: CN=second-dev, O=Thin Edge, OU=Device" in cp.stdout
    device.env["TEDGE_CLOUD_PROFILE"] = "second"  # as upstream, the profile may come from env
    assert "CN=second-dev" in device.tedge("cert", "show", "c8y", check=0).stdout
    device.tedge("cert", "show", check=1)  # without a cloud: device.cert_path, not created


def test_help_and_usage_errors(device):
    cp = device.tedge("cert", "--help", check=0)
    for sub in ("create", "create-csr", "show", "remove"):
        assert re.search(rf"^  {sub} ", cp.stdout, re.M), cp.stdout
        assert device.tedge("cert", sub, "--help", check=0).stdout.startswith(
            device.tedge("cert", sub, "-h", check=0).stdout.splitlines()[0])
    assert "--device-id <ID>" in device.tedge("cert", "create", "--help", check=0).stdout
    assert "--output-path <OUTPUT_PATH>" in device.tedge("cert", "create-csr", "--help",
                                                         check=0).stdout
    assert "--config-dir" in device.tedge("cert", "show", "--help", check=0).stdout
    assert device.tedge("cert", "create", "--bogus", check=2).stderr.startswith("error: ")
    device.tedge("cert", "create", "--device-id", check=2)
    device.tedge("cert", "explode", check=2)
    device.tedge("cert", "show", "gcp", check=2)
    device.tedge("cert", "show", "--profile", "x", check=2)  # a profile needs a cloud
    device.tedge("cert", check=2)
