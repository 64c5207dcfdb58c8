"""The demo (tests/demo/demo.py, what `make demo` runs after building): it succeeds, shows the
measurement arriving at the cloud, and leaves nothing running and nothing behind, also when it is
interrupted halfway. And `make test` itself: pytest's settings keep its cache out of the tree.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from fixtures.util import REPO_ROOT, build_dir, processes_mentioning

DEMO = REPO_ROOT / "tests" / "demo" / "demo.py"
DEMO_TIMEOUT = 120  # the demo itself takes a few seconds


def demo_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEDGE_")}
    env["TEDGE_BUILD_DIR"] = str(build_dir())
    return env


def demo_dir(output):
    m = re.search(r"everything lives in (/\S+)\)", output)
    assert m, output
    return m.group(1)


def test_demo_runs_and_cleans_up():
    cp = subprocess.run([sys.executable, DEMO], env=demo_env(), capture_output=True, text=True,
                        timeout=DEMO_TIMEOUT)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out
    base = demo_dir(out)
    assert "Creating device in Cumulocity cloud... ✓" in out
    assert "Verifying device is connected to cloud... ✓" in out
    assert "the cloud saw the device creation: ['100', 'demo-device-0001', 'thin-edge.io']" in out
    assert re.search(r"^cloud topic measurement/measurements/create: \{\"temperature\"", out, re.M)
    assert "Connection check to Cumulocity cloud is successful." in out
    assert "Disabling tedge-mapper-c8y... ✓" in out
    assert out.rstrip().endswith("cleaned up: nothing left running")
    # every file the demo made was in its temp dir, which is gone, and nothing of it still runs
    for path in re.findall(r"(/tmp/\S+)", out):
        assert path.startswith(base), f"{path} is outside the demo dir {base}"
    assert not Path(base).exists()
    assert processes_mentioning(base) == []


def test_demo_interrupted_cleans_up():
    proc = subprocess.Popen([sys.executable, DEMO], env=demo_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + DEMO_TIMEOUT
    try:
        for line in proc.stdout:
            lines.append(line)
            # interrupt once the brokers, the daemon and the stand-in run
            if "==> Configure tedge" in line:
                proc.send_signal(signal.SIGTERM)
                break
            assert time.monotonic() < deadline, "".join(lines)
        rest, _ = proc.communicate(timeout=DEMO_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "interrupted" in out
    base = demo_dir(out)
    assert not Path(base).exists()
    assert processes_mentioning(base) == []


def test_pytest_cache_goes_under_build_not_the_repository_root(tmp_path):
    """pytest.ini puts the cache under build/: a run rooted at a scratch dir with the repository's
    pytest.ini writes build/pytest-cache there and no .pytest_cache (the README promises nothing
    outside temp dirs and build/)."""
    (tmp_path / "test_trivial.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    cp = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO_ROOT / "pytest.ini"),
                         "--rootdir", str(tmp_path), "-p", "no:xdist", "-q",
                         str(tmp_path / "test_trivial.py")],
                        cwd=tmp_path, env=demo_env(), capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "1 passed" in cp.stdout
    assert not (tmp_path / ".pytest_cache").exists()
    assert (tmp_path / "build" / "pytest-cache").is_dir()
