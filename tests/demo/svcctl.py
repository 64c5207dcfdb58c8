#!/usr/bin/python3
"""A tiny init system for tests and the demo, driven by tedge through <config-dir>/system.toml.

    svcctl.py STATE_DIR ACTION [SERVICE]

ACTION is one of is_available, start, stop, restart, enable, disable, is_active (the [init]
actions of system.toml). A service is *managed* when STATE_DIR/<service>.cmd exists: a JSON argv
that `start` runs in the background (own session, stdin /dev/null, output appended to
STATE_DIR/<service>.log, pid in STATE_DIR/<service>.pid). `stop` sends SIGTERM (SIGKILL after
STOP_TIMEOUT s). `enable`/`disable` create/remove STATE_DIR/enabled/<service>. An unmanaged
service (no .cmd file) accepts every action as a no-op and is never active, which is how tests
hand tedge a local broker they run themselves. Every call is appended to STATE_DIR/actions.log
("<action> <service>"), so tests can check what tedge asked for.

`svcctl.py STATE_DIR stop-all` stops every managed service (test and demo cleanup).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_TIMEOUT = 10.0      # seconds a service gets to exit after SIGTERM
START_SETTLE = 0.3       # a service that dies this fast failed to start
POLL = 0.05

ACTIONS = ("is_available", "start", "stop", "restart", "enable", "disable", "is_active")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours does not count (we never wait for the services we start)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Service:
    def __init__(self, state, name):
        if not name or "/" in name or name.startswith("."):
            raise SystemExit(f"svcctl: invalid service name {name!r}")
        self.state = Path(state)
        self.name = name
        self.cmd_path = self.state / f"{name}.cmd"
        self.pid_path = self.state / f"{name}.pid"
        self.log_path = self.state / f"{name}.log"
        self.enabled_path = self.state / "enabled" / name

    @property
    def managed(self):
        return self.cmd_path.exists()

    def pid(self):
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def start(self):
        if not self.managed or self.pid() is not None:
            return 0
        argv = json.loads(self.cmd_path.read_text())
        with open(self.log_path, "ab") as log:
            log.write(f"--- svcctl: start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, close_fds=True)
        self.pid_path.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + START_SETTLE
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                print(f"svcctl: {self.name} exited at once with status {proc.returncode}; "
                      f"see {self.log_path}", file=sys.stderr)
                self.pid_path.unlink(missing_ok=True)
                return 1
            time.sleep(POLL)
        return 0

    def stop(self):
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return 0
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL)
        if _pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while _pid_alive(pid):
                time.sleep(POLL)
        self.pid_path.unlink(missing_ok=True)
        return 0

    def run(self, action):
        if action == "start":
            return self.start()
        if action == "stop":
            return self.stop()
        if action == "restart":
            self.stop()
            return self.start()
        if action == "enable":
            self.enabled_path.parent.mkdir(exist_ok=True)
            self.enabled_path.touch()
            return 0
        if action == "disable":
            self.enabled_path.unlink(missing_ok=True)
            return 0
        if action == "is_active":
            return 0 if self.managed and self.pid() is not None else 3
        raise SystemExit(f"svcctl: unknown action {action!r}")


def stop_all(state):
    for cmd in sorted(Path(state).glob("*.cmd")):
        Service(state, cmd.name[:-len(".cmd")]).stop()
    return 0


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    state, action = argv[1], argv[2]
    Path(state).mkdir(parents=True, exist_ok=True)
    service = argv[3] if len(argv) > 3 else ""
    with open(Path(state) / "actions.log", "a") as log:
        log.write(f"{action} {service}".rstrip() + "\n")
    if action == "stop-all":
        return stop_all(state)
    if action == "is_available":
        return 0
    if action not in ACTIONS:
        print(f"svcctl: unknown action {action!r}", file=sys.stderr)
        return 2
    return Service(state, service).run(action)


def system_toml(state_dir, name="svcctl"):
    """The [init] table that makes tedge use this script with STATE_DIR."""
    script = str(Path(__file__).resolve())

    def cmd(action, placeholder=True):
        args = [sys.executable, script, str(state_dir), action] + (["{}"] if placeholder else [])
        return "[" + ", ".join(json.dumps(a) for a in args) + "]"

    lines = ["[init]", f"name = {json.dumps(name)}", f"is_available = {cmd('is_available', False)}"]
    lines += [f"{a} = {cmd(a)}" for a in ACTIONS if a != "is_available"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
