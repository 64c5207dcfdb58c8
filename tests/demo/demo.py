#!/usr/bin/python3
"""`make demo`: a device connects to a (stand-in) Cumulocity with its key in a PKCS#11 token.

In a fresh temp dir it creates a SoftHSM2 token with an EC key generated on the token, a CA and a
device certificate for that key, starts a local mosquitto (run by a small init system, so that
`tedge connect` really restarts it), a TLS mosquitto "cloud" that demands client certificates, the
Cumulocity stand-in, and tedge-p11-server in socket mode. Then it runs `tedge connect c8y`,
publishes a measurement on the local broker and shows it arriving at the cloud, disconnects, and
cleans up: nothing keeps running and nothing is written outside the temp dir, whatever happens.

    /usr/bin/python3 tests/demo/demo.py [--keep]     (TEDGE_BUILD_DIR: default <repo>/build)
"""

import getpass
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.dont_write_bytecode = True  # no __pycache__ in the repo: nothing outside the temp dir
sys.path.insert(0, str(REPO / "tests" / "integration"))

from fixtures import brokers, util  # noqa: E402
from fixtures.demo import SVCCTL, ConnectEnv  # noqa: E402
from fixtures.keys import KeyCache  # noqa: E402
from fixtures.mqtt import MqttClient  # noqa: E402
from fixtures.pki import Pki  # noqa: E402
from fixtures.softhsm import SoftHSM  # noqa: E402

DEVICE_ID = "demo-device-0001"
TENANT = "demo.tenant.example"       # the stand-in's JWT says the device is connected here
MEASUREMENT_TOPIC = "c8y/measurement/measurements/create"
CLOUD_TOPIC = "measurement/measurements/create"
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(text=""):
    print(text, flush=True)


def step(title):
    say(f"\n{BOLD}==> {title}{RESET}")


def show_command(args):
    say(f"{DIM}$ {' '.join(str(a) for a in args)}{RESET}")


class LocalBroker:
    """The device's mosquitto, run by the demo's init system (svcctl) so that tedge restarts it."""

    def __init__(self, env, directory):
        self.host = brokers.HOST
        self.port = util.free_port(self.host)
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "mosquitto.log"
        conf = directory / "mosquitto.conf"
        conf.write_text("\n".join([
            "# the device's local broker (demo)", "persistence false",
            f"user {getpass.getuser()}", f"log_dest file {self.log_path}",
            f"listener {self.port} {self.host}", "allow_anonymous true", ""]))
        env.manage_service("mosquitto", [shutil.which("mosquitto", path="/usr/sbin:/usr/bin:/sbin")
                                         or "mosquitto", "-c", conf])


def run_tedge(env, *args, show=True):
    show_command(["tedge", *args])
    cp = env.tedge(*args)
    for line in (cp.stdout + cp.stderr).splitlines():
        say(f"    {line}")
    if cp.returncode != 0:
        raise RuntimeError(f"`tedge {' '.join(args)}` failed with exit code {cp.returncode}")
    return cp


def demo(base):
    util.set_scratch_dir(base / "logs")
    keys = KeyCache(base / "key-cache")

    step("A PKCS#11 token (SoftHSM2) with an EC P-256 key generated inside it")
    softhsm = SoftHSM(base / "softhsm", key_cache=keys)
    pki = Pki(base / "pki", keys, name="demo CA")
    cloud = brokers.cloud_broker(base / "cloud", pki, name="cloud")
    local_dir = base / "local-broker"
    env = ConnectEnv(base / "device", softhsm, pki, cloud, None, device_id=DEVICE_ID)
    cleanup.append(env)
    env.token = softhsm.init_token(label="tedge", pin="123456")
    env.key = softhsm.generate_key(env.token, "ec-p256", label="tedge-key", id="01")
    say(f"token 'tedge', key {env.key.uri}")
    say(softhsm.list_objects(env.token).strip())

    step("A CA and a device certificate for the token's key (CN = device id)")
    env.cert = pki.device_cert(DEVICE_ID, env.key.public_pem)
    say(util.run(["openssl", "x509", "-in", env.cert, "-noout", "-subject", "-issuer"]).stdout.strip())

    step(f"The 'cloud': mosquitto with TLS on {cloud.host}:{cloud.port}, client certificates "
         "required, and the Cumulocity stand-in")
    env.start_standin(tenant=TENANT)
    say("the stand-in answers s/uat with a JWT for tenant " + TENANT + " and records s/us")

    step("The device's local mosquitto, run by the demo's init system (system.toml)")
    env.local = LocalBroker(env, local_dir)
    util.run([sys.executable, SVCCTL, env.state_dir, "start", "mosquitto"])
    util.wait_for_port(env.local.host, env.local.port, timeout=10)
    say(f"listening on {env.local.host}:{env.local.port}")

    step("tedge-p11-server: the only process that opens the token (socket mode)")
    env.start_p11_server()
    say(f"serving {env.socket_path}")

    step("Configure tedge (tedge.toml in the demo's config dir)")
    settings = [
        ("device.cert_path", env.cert),
        ("device.cryptoki.mode", "socket"),
        ("device.cryptoki.socket_path", env.socket_path),
        ("device.key_uri", env.key.uri),
        ("c8y.url", TENANT),
        ("c8y.mqtt", f"{cloud.host}:{cloud.port}"),
        ("c8y.root_cert_path", cloud.ca_cert),
        ("mqtt.client.host", env.local.host),
        ("mqtt.client.port", env.local.port),
        ("mqtt.bridge.reconnect_policy.initial_interval", "1s"),
    ]
    for key, value in settings:
        run_tedge(env, "config", "set", key, str(value))
    env.manage_mapper()

    step("Connect: the key never leaves the token; tedge-p11-server signs the TLS handshakes")
    run_tedge(env, "connect", "c8y")
    signs = env.p11.requests("sign")
    results = sorted({r["result"] for r in signs})
    say(f"tedge-p11-server signed {len(signs)} TLS handshakes (tedge's and tedge-mapper's; "
        f"results: {', '.join(results)})")
    created = env.standin.wait_for_smartrest("100", timeout=10)
    say(f"the cloud saw the device creation: {created}")

    step("Publish a measurement on the local broker ...")
    payload = json.dumps({"temperature": {"T": {"value": 21.5, "unit": "C"}},
                          "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    observer_key, observer_cert = pki.device_key_and_cert("cloud-observer", variant="observer")
    watcher = MqttClient(cloud.host, cloud.port, tls={"ca_cert": cloud.ca_cert, "cert": observer_cert,
                                                      "key": observer_key},
                         client_id="cloud-observer").connect()
    cleanup.append(watcher)
    watcher.subscribe([CLOUD_TOPIC])
    pub = ["mosquitto_pub", "-h", env.local.host, "-p", str(env.local.port), "-i", "demo-sensor",
           "-t", MEASUREMENT_TOPIC, "-q", "1", "-m", payload]
    show_command(pub[:-1] + [f"'{payload}'"])
    util.run(pub)

    step("... and see it arrive at the cloud")
    msg = watcher.wait_for(1, topic=CLOUD_TOPIC, timeout=20)[0]
    say(f"cloud topic {msg.topic}: {msg.payload.decode()}")
    watcher.stop()

    step("Check and disconnect")
    run_tedge(env, "connect", "c8y", "--test")
    run_tedge(env, "disconnect", "c8y")
    say(f"\n{BOLD}Demo complete: the device connected to the cloud with its key in the token.{RESET}")


cleanup = []


def main():
    keep = "--keep" in sys.argv[1:]
    for program in ("tedge", "tedge-mapper", "tedge-p11-server"):
        if not util.bin_path(program).exists():
            print(f"{util.bin_path(program)} is missing: run `make` first (or `make demo`).",
                  file=sys.stderr)
            return 1
    base = Path(tempfile.mkdtemp(prefix="tedge-demo-"))
    say(f"{BOLD}tedge-hsm demo{RESET} (everything lives in {base})")

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    code = 1
    try:
        demo(base)
        code = 0
    except KeyboardInterrupt as e:
        print(f"\ninterrupted ({e}); cleaning up", file=sys.stderr)
        code = 130
    except Exception as e:  # the narrative ends with the reason, then cleans up
        print(f"\ndemo failed: {e}", file=sys.stderr)
        logs = base / "device" / "services"
        for log in sorted(logs.glob("*.log")):
            print(f"--- {log.name} (last lines)\n" + "\n".join(log.read_text(errors="replace")
                                                          .splitlines()[-15:]), file=sys.stderr)
    finally:
        for item in reversed(cleanup):
            try:
                if isinstance(item, ConnectEnv):
                    for problem in item.close():
                        print(f"cleanup: {problem}", file=sys.stderr)
                else:
                    item.stop()
            except Exception as e:
                print(f"cleanup: {e}", file=sys.stderr)
        for proc in util.live_procs():
            proc.stop()
        left = util.processes_mentioning(str(base))
        if left:
            print("cleanup: still running:\n  " + "\n  ".join(left), file=sys.stderr)
            code = code or 1
        if keep:
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    say("cleaned up: nothing left running" if code == 0 else "")
    return code


if __name__ == "__main__":
    sys.exit(main())
