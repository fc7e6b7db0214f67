"""benchmarks/gpu_check.sh, the GPU readiness script: its CPU dry run exercises every line
(the tests it selects, all four benchmark runs, the table, the data-parallel runs), so the GPU run is ready.

The dry run takes about 2 minutes (eight processes that each start TensorFlow), so it runs with
`pytest -m slow`, keeping the default run short; the argument checks run by default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def run(*args, timeout=900):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHON": sys.executable})


@pytest.mark.slow
def test_cpu_dry_run_runs_the_tests_and_prints_one_table(shared_data):
    if not (shared_data / "yoochoose1_64" / "train_full.tsv").exists():
        pytest.skip("no ../shared/data/yoochoose1_64")
    out = run("--device", "cpu", "--max-events", "300")
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"\b8 passed\b", out.stdout), out.stdout[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| r")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "rsc15-xe B=32", "rsc15-xe B=256", "rr-bprmax B=80", "rr-bprmax B=256"]
    for row in rows:  # events/s, mini-batches/s, Recall@20, MRR@20 are numbers
        cells = [c.strip().replace(",", "") for c in row.split("|")[1:-1]]
        assert float(cells[2]) > 0 and float(cells[4]) > 0
        assert 0 <= float(cells[-1]) <= float(cells[-2]) <= 1
    # Step 3: one device, one replica, two (logical) devices; events/s and its ratio to one device.
    runs = {cells[0]: cells for cells in (
        [c.strip().replace(",", "") for c in line.split("|")[1:-1]]
        for line in out.stdout.splitlines() if line.startswith(("| 1 ", "| 2 ")))}
    assert list(runs) == ["1 device", "1 replica (MirroredStrategy)", "2 devices (MirroredStrategy)"]
    assert runs["1 device"][7] == "1.00x"
    for cells in runs.values():
        assert float(cells[6]) > 0 and float(cells[7].rstrip("x")) > 0


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "--device is gpu or cpu, not tpu"),
    (["--fast"], "unknown argument --fast"),
])
def test_bad_arguments_are_one_line(args, message):
    out = run(*args, timeout=60)
    assert out.returncode == 2 and out.stderr.strip() == f"gpu_check.sh: {message}" + (
        " (use --device gpu|cpu, --data DIR, --max-events N)" if "unknown" in message else "")
