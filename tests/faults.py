"""Running the real ``geovec`` CLI in a subprocess (with the fake model, :mod:`tests.fault_cli`) and killing
it with a signal after a chosen number of forward passes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seeded_rng() -> tuple[random.Random, int]:
    """A random source for kill points; ``GEOVEC_FAULT_SEED`` replays a failure (the seed is in every message)."""
    seed = int(os.environ.get("GEOVEC_FAULT_SEED", random.randrange(1 << 30)))
    return random.Random(seed), seed


def run_cli(args: list[str], kill: int | None = None, after_batches: int = 0, extra_delay: float = 0.0,
            timeout: float = 120) -> tuple[int, str]:
    """Run ``geovec ARGS``; with ``kill`` (a signal number), send it once ``after_batches`` forward passes were
    announced (0: as soon as the command starts) plus ``extra_delay`` seconds. Returns (exit code, output)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "tests.fault_cli", *args], cwd=REPO, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    if kill is not None:
        seen = -1
        for line in p.stdout:  # read until the kill point (or the end, when the job is shorter)
            lines.append(line)
            if line.startswith("@@start") or line.startswith("@@batch"):
                seen += 1
                if seen >= after_batches:
                    break
        time.sleep(extra_delay)
        if p.poll() is None:
            p.send_signal(kill)
    try:
        rest, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rest, _ = p.communicate()
        raise AssertionError(f"geovec {' '.join(args)} did not finish in {timeout} s:\n{''.join(lines) + rest}")
    return p.returncode, "".join(lines) + rest


def check_killed(rc: int, sig: int, out: str) -> None:
    """A job killed by ``sig`` ended as promised: SIGINT -> exit 130 with a resume hint (or it had finished)."""
    out = " ".join(out.split())  # rich wraps long lines
    if sig == signal.SIGINT:
        assert rc in (130, 0, 1), (rc, out)
        if rc == 1:
            assert "Aborted" in out or "FAILED" in out or "skipped" in out, out
        if rc == 130:
            assert "interrupted" in out and "rerun the same command" in out, out
        assert "Traceback" not in out, out
    else:
        assert rc in (-signal.SIGKILL, 0, 1), (rc, out)
