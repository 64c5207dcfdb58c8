"""`tedge config` against the real binary: get/set/unset/list, environment overrides, the
--doc output, document preservation, broken files, file modes and refused values, PINs kept out
of `list`, a symlinked tedge.toml, a byte order mark, and the layout of every `tedge` --help."""

import os
import re
import stat
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def tedge_bin():
    return os.path.join(os.environ.get("TEDGE_BUILD_DIR", os.path.join(REPO, "build")), "bin", "tedge")


def run(*args, env=None, check=None):
    """Runs tedge with a clean TEDGE_* environment plus `env`; returns CompletedProcess."""
    e = {k: v for k, v in os.environ.items() if not k.upper().startswith("TEDGE_")}
    e.update(env or {})
    p = subprocess.run([tedge_bin(), *args], env=e, capture_output=True, text=True, timeout=30)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def snapshot(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        return f.read(), st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode)


UPSTREAM_TOML = """\
# tedge.toml written by upstream thin-edge.io and edited by hand
[device]
type = "thin-edge.io"   # not a key this implementation knows
cert_path = "/etc/tedge/device-certs/tedge-certificate.pem"

# Cumulocity
[c8y]
url = "old.example.com" # the tenant
smartrest.templates = [
    "tmpl-a",
    "tmpl-b",
]

[unknown.vendor.table]
answer = 42
flag = true
"""


def test_set_then_get(tmp_path):
    d = str(tmp_path)
    p = run("--config-dir", d, "config", "set", "device.cryptoki.mode", "socket", check=0)
    assert p.stdout == ""
    assert run("--config-dir", d, "config", "get", "device.cryptoki.mode", check=0).stdout == "socket\n"
    with open(tmp_path / "tedge.toml") as f:
        assert f.read() == '[device.cryptoki]\nmode = "socket"\n'


def test_config_dir_is_a_global_option(tmp_path):
    d = str(tmp_path)
    run("config", "set", "c8y.url", "tenant.example.com", "--config-dir", d, check=0)
    assert run("config", "get", "--config-dir=" + d, "c8y.url", check=0).stdout == "tenant.example.com\n"
    # and TEDGE_CONFIG_DIR is the fallback
    p = run("config", "get", "c8y.mqtt", env={"TEDGE_CONFIG_DIR": d}, check=0)
    assert p.stdout == "tenant.example.com:8883\n"


def test_env_override_wins_and_file_is_untouched(tmp_path):
    d = str(tmp_path)
    run("--config-dir", d, "config", "set", "device.cryptoki.mode", "socket", check=0)
    before = snapshot(tmp_path / "tedge.toml")
    p = run("--config-dir", d, "config", "get", "device.cryptoki.mode",
            env={"TEDGE_DEVICE_CRYPTOKI_MODE": "module"}, check=0)
    assert p.stdout == "module\n"
    assert snapshot(tmp_path / "tedge.toml") == before
    # an empty variable means "not set": the file's value applies
    p = run("--config-dir", d, "config", "get", "device.cryptoki.mode",
            env={"TEDGE_DEVICE_CRYPTOKI_MODE": ""}, check=0)
    assert p.stdout == "socket\n"
    # list shows the effective value too
    p = run("--config-dir", d, "config", "list", "device.cryptoki",
            env={"TEDGE_DEVICE_CRYPTOKI_MODE": "module"}, check=0)
    assert p.stdout == "device.cryptoki.mode=module\n"
    assert snapshot(tmp_path / "tedge.toml") == before


def test_list_doc_device_cryptoki(tmp_path):
    p = run("--config-dir", str(tmp_path), "config", "list", "--doc", "device.cryptoki", check=0)
    out = p.stdout
    keys = ["device.cryptoki.mode", "device.cryptoki.module_path", "device.cryptoki.pin",
            "device.cryptoki.uri", "device.cryptoki.socket_path"]
    lines = out.splitlines()
    key_lines = [l for l in lines if l.strip().split("  ")[0] in keys]
    assert [l.strip().split("  ")[0] for l in key_lines] == keys
    width = max(len(k) for k in keys)
    for l in key_lines:  # keys are right-aligned, then two spaces and the doc
        assert l[width:width + 2] == "  " and l[width + 2] != " "
    assert "Whether to use a Hardware Security Module" in out
    assert "A path to the PKCS#11 module used for interaction with the HSM." in out
    assert "A path to the tedge-p11-server socket." in out
    assert "Examples: off, module, socket" in out
    assert "Example: /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so" in out
    assert "Example: /run/tedge-p11-server/tedge-p11-server.sock" in out
    assert out.count("Example") == 5
    # every other line is an indented Note:/Example: line or the blank separator
    others = [l for l in lines if l and l not in key_lines]
    assert all(l.startswith(" " * (width + 2) + "Example") or l.startswith(" " * (width + 2) + "Note:")
               for l in others), others
    # --doc needs no configuration file and does not create one
    assert not (tmp_path / "tedge.toml").exists()


def test_set_and_unset_keep_comments_and_unknown_tables(tmp_path):
    d = str(tmp_path)
    path = tmp_path / "tedge.toml"
    path.write_text(UPSTREAM_TOML)
    run("--config-dir", d, "config", "set", "c8y.url", "new.example.com", check=0)
    run("--config-dir", d, "config", "set", "device.key_uri", "pkcs11:token=tedge;object=key", check=0)
    run("--config-dir", d, "config", "set", "device.cryptoki.mode", "module", check=0)
    after_set = path.read_text()
    assert after_set == UPSTREAM_TOML.replace(
        'url = "old.example.com"', 'url = "new.example.com"').replace(
        'cert_path = "/etc/tedge/device-certs/tedge-certificate.pem"\n',
        'cert_path = "/etc/tedge/device-certs/tedge-certificate.pem"\n'
        'key_uri = "pkcs11:token=tedge;object=key"\n') + '\n[device.cryptoki]\nmode = "module"\n'
    run("--config-dir", d, "config", "unset", "device.key_uri", check=0)
    run("--config-dir", d, "config", "unset", "device.cryptoki.mode", check=0)
    run("--config-dir", d, "config", "set", "c8y.url", "old.example.com", check=0)
    # back to the original bytes, plus the (empty) table header that set created
    assert path.read_text() == UPSTREAM_TOML + "\n[device.cryptoki]\n"
    assert run("--config-dir", d, "config", "get", "device.cryptoki.mode", check=0).stdout == "off\n"


def test_syntax_error_is_reported_and_file_never_overwritten(tmp_path):
    d = str(tmp_path)
    path = tmp_path / "tedge.toml"
    broken = '[device]\ncert_path = "/x.pem"\n[c8y]\nurl = tenant.example.com\n'
    path.write_text(broken)
    before = snapshot(path)
    for args in (["config", "set", "device.cryptoki.mode", "socket"],
                 ["config", "unset", "c8y.url"],
                 ["config", "get", "device.cryptoki.mode"],
                 ["config", "list"]):
        p = run("--config-dir", d, *args)
        assert p.returncode == 1, args
        assert f"{path}:4:7: expected a value (strings must be in quotes)" in p.stderr, p.stderr
        assert snapshot(path) == before
    p = run("--config-dir", d, "config", "set", "c8y.url", "x.example.com")
    assert p.returncode == 1
    path.write_text("a = 1.5\n")
    p = run("--config-dir", d, "config", "get", "c8y.url")
    assert p.returncode == 1
    assert f"{path}:1:5: unsupported: floating-point numbers are not supported" in p.stderr


def test_file_modes(tmp_path):
    d = str(tmp_path)
    path = tmp_path / "tedge.toml"
    run("--config-dir", d, "config", "set", "device.key_pin", "1234", check=0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    os.chmod(path, 0o600)
    run("--config-dir", d, "config", "set", "c8y.url", "t.example.com", check=0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    run("--config-dir", d, "config", "unset", "c8y.url", check=0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    # a config dir that does not exist yet is created for the first set
    sub = tmp_path / "new" / "dir"
    run("--config-dir", str(sub), "config", "set", "c8y.url", "t.example.com", check=0)
    assert stat.S_IMODE(os.stat(sub / "tedge.toml").st_mode) == 0o640


@pytest.mark.parametrize("key,value,reason", [
    ("device.cryptoki.mode", "bogus", "Supported values are: off, module, socket."),
    ("device.cryptoki.module_path", "libsofthsm2.so", "It must be an absolute path"),
    ("mqtt.client.port", "70000", "port number from 1 to 65535"),
    ("mqtt.bridge.built_in", "yes", "Supported values are: true, false."),
    ("c8y.bridge.keepalive_interval", "soon", "It must be a duration"),
    ("c8y.url", "https://t.example.com", "scheme or port"),
    ("device.key_uri", "token=x", "starting with 'pkcs11:'"),
])
def test_invalid_values_are_refused_and_file_unchanged(tmp_path, key, value, reason):
    d = str(tmp_path)
    run("--config-dir", d, "config", "set", "device.cryptoki.mode", "socket", check=0)
    before = snapshot(tmp_path / "tedge.toml")
    p = run("--config-dir", d, "config", "set", key, value, check=1)
    assert f"Invalid value for '{key}'" in p.stderr and reason in p.stderr, p.stderr
    assert snapshot(tmp_path / "tedge.toml") == before


def test_unknown_key_suggests_nearest(tmp_path):
    d = str(tmp_path)
    for args in (["get", "device.cryptoki.mod"], ["set", "device.cryptoki.mod", "off"],
                 ["unset", "device.cryptoki.mod"]):
        p = run("--config-dir", d, "config", *args, check=1)
        assert "Unknown configuration key 'device.cryptoki.mod'. Did you mean 'device.cryptoki.mode'?" in p.stderr
    p = run("--config-dir", d, "config", "get", "c8y.profiles.eu.ulr", check=1)
    assert "Did you mean 'c8y.profiles.eu.url'?" in p.stderr
    assert not (tmp_path / "tedge.toml").exists()


def test_get_unset_key_and_read_only_key(tmp_path):
    d = str(tmp_path)
    p = run("--config-dir", d, "config", "get", "device.key_uri", check=1)
    assert p.stdout == ""
    assert p.stderr.strip() == "The provided config key: 'device.key_uri' is not set"
    p = run("--config-dir", d, "config", "set", "device.id", "my-device", check=1)
    assert "read-only" in p.stderr
    p = run("--config-dir", d, "config", "get", "device.id", check=1)
    assert "The provided config key: 'device.id' is not configured" in p.stderr
    assert not (tmp_path / "tedge.toml").exists()


def test_device_id_comes_from_the_certificate(tmp_path):
    d = str(tmp_path)
    certs = tmp_path / "device-certs"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(certs / "tedge-private-key.pem"),
                    "-out", str(certs / "tedge-certificate.pem"), "-days", "2",
                    "-subj", "/O=Thin Edge/CN=my-test-device"], check=True, capture_output=True)
    assert run("--config-dir", d, "config", "get", "device.id", check=0).stdout == "my-test-device\n"


def test_list_formats(tmp_path):
    d = str(tmp_path)
    run("--config-dir", d, "config", "set", "c8y.url", "t.example.com", check=0)
    run("--config-dir", d, "config", "set", "device.key_pin", "s3cret-pin", check=0)
    p = run("--config-dir", d, "config", "list", check=0)
    # only keys that are set, key=value, PINs masked
    assert p.stdout == "device.key_pin=********\nc8y.url=t.example.com\n"
    assert "s3cret-pin" not in p.stdout + p.stderr
    p = run("--config-dir", d, "config", "list", "--all", check=0)
    lines = p.stdout.split("\n")
    assert "c8y.mqtt=t.example.com:8883" in lines
    assert "device.cryptoki.mode=off" in lines
    assert f"device.cert_path={d}/device-certs/tedge-certificate.pem" in lines
    assert "mqtt.bridge.built_in=true" in lines
    # keys without a value come last, after an empty line, as upstream prints them
    blank = lines.index("")
    assert "device.key_uri=" in lines[blank + 1:]
    assert all(l.endswith("=") for l in lines[blank + 1:] if l)
    # get shows the PIN itself
    assert run("--config-dir", d, "config", "get", "c8y.device.key_pin", check=0).stdout == "s3cret-pin\n"


def test_profiles(tmp_path):
    d = str(tmp_path)
    run("--config-dir", d, "config", "set", "c8y.url", "main.example.com", check=0)
    run("--config-dir", d, "config", "set", "--profile", "eu", "c8y.url", "eu.example.com", check=0)
    run("--config-dir", d, "config", "set", "c8y.profiles.us.url", "us.example.com", check=0)
    assert run("--config-dir", d, "config", "get", "c8y.profiles.eu.url", check=0).stdout == "eu.example.com\n"
    assert run("--config-dir", d, "config", "get", "c8y.mqtt", "--profile", "us", check=0).stdout == \
        "us.example.com:8883\n"
    p = run("--config-dir", d, "config", "get", "c8y.url", env={"TEDGE_CLOUD_PROFILE": "eu"}, check=0)
    assert p.stdout == "eu.example.com\n"
    p = run("--config-dir", d, "config", "get", "c8y.profiles.eu.url",
            env={"TEDGE_C8Y_PROFILES_EU_URL": "env.example.com"}, check=0)
    assert p.stdout == "env.example.com\n"
    p = run("--config-dir", d, "config", "list", "profiles", check=0)
    assert p.stdout == "c8y.profiles.eu.url=eu.example.com\nc8y.profiles.us.url=us.example.com\n"


def test_help_version_and_usage_errors(tmp_path):
    p = run("--help", check=0)
    assert "Usage: tedge [OPTIONS] <COMMAND>" in p.stdout
    assert "config" in p.stdout and "--config-dir" in p.stdout and "--log-level" in p.stdout
    with open(os.path.join(REPO, "VERSION")) as f:
        version = f.read().strip()
    assert run("-V", check=0).stdout == f"tedge {version}\n"
    assert run("--version", check=0).stdout == f"tedge {version}\n"
    p = run("config", "--help", check=0)
    for sub in ("get", "set", "unset", "list"):
        assert f"  {sub} " in p.stdout
    assert "--doc" in run("config", "list", "--help", check=0).stdout
    assert "Usage: tedge config" in run("help", "config", check=0).stdout
    assert run("frobnicate", check=2).stderr.startswith("error: unrecognized subcommand 'frobnicate'")
    assert "required arguments" in run("config", "set", "c8y.url", check=2).stderr
    assert "invalid value 'loud'" in run("--log-level", "loud", "config", "list", check=2).stderr


def test_log_level_debug_shows_where_a_value_comes_from(tmp_path):
    d = str(tmp_path)
    run("--config-dir", d, "config", "set", "c8y.url", "t.example.com", check=0)
    p = run("--config-dir", d, "config", "get", "c8y.mqtt", "--log-level", "debug", check=0)
    assert p.stdout == "t.example.com:8883\n"
    assert "source=derived" in p.stderr and f"c8y.url ({d}/tedge.toml:2)" in p.stderr
    p = run("--config-dir", d, "--debug", "config", "get", "device.key_pin", env={"TEDGE_DEVICE_KEY_PIN": "9911"})
    assert p.stdout == "9911\n" and "source=env" in p.stderr and "9911" not in p.stderr
    p = run("--config-dir", d, "config", "get", "c8y.mqtt", check=0)
    assert p.stderr == ""


URI_KEYS = {  # every URI-typed key, with a PIN in its pin-value
    "device.key_uri": "pkcs11:token=tedge;object=k0?pin-value=SECRET0",
    "device.cryptoki.uri": "pkcs11:token=tedge?pin-value=SECRET1&module-name=softhsm2",
    "c8y.device.key_uri": "pkcs11:token=tedge;object=k1?pin-value=SECRETX",
    "c8y.profiles.eu.device.key_uri": "pkcs11:token=eu;pin-value=SECRET2;object=k2",
}


def test_list_never_shows_a_pin_value_get_does(tmp_path):
    """`list` and `list --all` drop pin-value from URI values (file and environment alike), the
    same rule as every other place that shows a URI; `get KEY` prints the value asked for."""
    d = str(tmp_path)
    for key, value in URI_KEYS.items():
        run("--config-dir", d, "config", "set", key, value, check=0)
    env = {"TEDGE_AZ_DEVICE_KEY_URI": "pkcs11:token=az;object=k3?pin-value=SECRET3"}
    for args in (["config", "list"], ["config", "list", "--all"], ["config", "list", "key_uri"]):
        p = run("--config-dir", d, *args, env=env, check=0)
        assert "SECRET" not in p.stdout + p.stderr, (args, p.stdout)
        assert "pin-value" not in p.stdout, (args, p.stdout)
    lines = run("--config-dir", d, "config", "list", env=env, check=0).stdout.splitlines()
    assert "device.key_uri=pkcs11:token=tedge;object=k0" in lines
    assert "device.cryptoki.uri=pkcs11:token=tedge?module-name=softhsm2" in lines
    assert "c8y.device.key_uri=pkcs11:token=tedge;object=k1" in lines
    assert "c8y.profiles.eu.device.key_uri=pkcs11:token=eu;object=k2" in lines
    assert "az.device.key_uri=pkcs11:token=az;object=k3" in lines
    # derived values are redacted too (aws.device.key_uri falls back to device.key_uri)
    lines = run("--config-dir", d, "config", "list", "--all", check=0).stdout.splitlines()
    assert "aws.device.key_uri=pkcs11:token=tedge;object=k0" in lines
    for key, value in URI_KEYS.items():
        assert run("--config-dir", d, "config", "get", key, check=0).stdout == value + "\n"


def test_set_writes_through_a_symlinked_tedge_toml(tmp_path):
    """cfg/tedge.toml -> ../real/tedge.toml: set and unset change the real file (keeping its
    mode) and the link stays a link; a dangling link is refused and left alone."""
    real_dir, cfg = tmp_path / "real", tmp_path / "cfg"
    real_dir.mkdir()
    cfg.mkdir()
    real = real_dir / "tedge.toml"
    real.write_text('[c8y]\nurl = "old.example.com"\n')
    real.chmod(0o600)
    (cfg / "tedge.toml").symlink_to("../real/tedge.toml")
    run("--config-dir", str(cfg), "config", "set", "c8y.url", "new.example.com", check=0)
    run("--config-dir", str(cfg), "config", "set", "device.cryptoki.mode", "socket", check=0)
    assert (cfg / "tedge.toml").is_symlink()
    assert os.readlink(cfg / "tedge.toml") == "../real/tedge.toml"
    assert real.read_text() == '[c8y]\nurl = "new.example.com"\n\n[device.cryptoki]\nmode = "socket"\n'
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600
    run("--config-dir", str(cfg), "config", "unset", "c8y.url", check=0)
    assert (cfg / "tedge.toml").is_symlink()
    assert "url" not in real.read_text()
    assert sorted(p.name for p in real_dir.iterdir()) == ["tedge.toml"]  # no temp file left
    assert sorted(p.name for p in cfg.iterdir()) == ["tedge.toml"]
    assert run("--config-dir", str(cfg), "config", "get", "device.cryptoki.mode",
               check=0).stdout == "socket\n"

    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "tedge.toml").symlink_to(tmp_path / "nowhere" / "tedge.toml")
    p = run("--config-dir", str(dangling), "config", "set", "c8y.url", "x.example.com", check=1)
    assert f"'{dangling / 'tedge.toml'}' is a symbolic link to a file that does not exist" \
        in p.stderr, p.stderr
    assert (dangling / "tedge.toml").is_symlink()
    assert not (tmp_path / "nowhere").exists()


def test_byte_order_mark_is_named(tmp_path):
    d = str(tmp_path)
    path = tmp_path / "tedge.toml"
    path.write_bytes(b'\xef\xbb\xbf[c8y]\nurl = "t.example.com"\n')
    before = snapshot(path)
    for args in (["config", "get", "c8y.url"], ["config", "list"],
                 ["config", "set", "c8y.url", "u.example.com"]):
        p = run("--config-dir", d, *args, check=1)
        assert f"{path}:1:1: a UTF-8 byte order mark is not supported; remove it" in p.stderr, \
            p.stderr
        assert snapshot(path) == before
    path.write_bytes(path.read_bytes()[3:])  # what the message asks for
    assert run("--config-dir", d, "config", "get", "c8y.url", check=0).stdout == "t.example.com\n"


HELPS = [["--help"], ["config", "--help"], ["config", "get", "--help"], ["config", "set", "--help"],
         ["config", "unset", "--help"], ["config", "list", "--help"], ["cert", "--help"],
         ["cert", "create", "--help"], ["cert", "create-csr", "--help"], ["cert", "show", "--help"],
         ["cert", "remove", "--help"], ["connect", "--help"], ["connect", "c8y", "--help"],
         ["disconnect", "c8y", "--help"], ["reconnect", "c8y", "--help"]]


@pytest.mark.parametrize("args", HELPS, ids=[" ".join(a) for a in HELPS])
def test_help_options_are_aligned(tmp_path, args):
    """In every Options: block the descriptions start in one column, two spaces after the
    longest flags (clap's layout upstream); long-only flags sit where a short one would end."""
    out = run(*args, check=0).stdout
    block = out.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block, out
    rows = []
    for line in block:
        m = re.match(r"^( {2}-\w, --\S+| {6}--\S+(?: <\w+>)?)( {2,})(\S.*)$", line)
        assert m, f"not an option row: {line!r}\n{out}"
        rows.append((len(m.group(1)), len(m.group(1)) + len(m.group(2))))
    column = {c for _, c in rows}
    assert len(column) == 1, out
    assert column.pop() == max(w for w, _ in rows) + 2, out
    assert any(line.startswith("  -h, --help ") for line in block), out
