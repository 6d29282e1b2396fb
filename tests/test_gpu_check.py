"""bench/gpu_check.sh: syntax, --help, argument errors, and the bookkeeping of a run whose time budget is spent
(every step recorded as skipped, summary written, non-zero exit). The full dry run
(`bash bench/gpu_check.sh --device cpu --quick`) takes over a minute here, so it is not run by the suite."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.sh"
STEPS = ["setup", "tests", "speed-fp32", "speed-amp", "readme-pretrain", "readme-cluster", "scale"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_syntax_and_help():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    proc = _run("--help")
    assert proc.returncode == 0
    for word in ("--device", "--quick", "--data-dir", "--out", "--budget", "NETBUILDER_TEST_DEVICE",
                 "dcec-l2", "0.9731", "bench/scale.py procs", "summary.txt"):
        assert word in proc.stdout, word


@pytest.mark.parametrize("args", [["--bogus"], ["--device", "tpu"], ["--budget", "ten"]])
def test_bad_arguments_exit_2(args):
    proc = _run(*args)
    assert proc.returncode == 2 and "gpu_check.sh" in proc.stderr


def test_spent_budget_records_every_step_and_writes_the_summary(tmp_path):
    out = tmp_path / "gc"
    proc = _run("--device", "cpu", "--quick", "--budget", "0", "--python", sys.executable, "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr    # not every step ran: the run says so
    summary = json.loads((out / "summary.json").read_text())
    assert [s["step"] for s in summary["steps"]] == STEPS
    assert {s["status"] for s in summary["steps"]} == {"skipped"}
    assert summary["device"] == "cpu" and summary["quick"] is True and summary["dataset"] == "DIGITS"
    text = (out / "summary.txt").read_text()
    assert "skipped" in text and text in proc.stdout
