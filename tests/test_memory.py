"""Tests of tf_gru4rec.system.memory: the estimate's parts, and the one-line refusal."""

import numpy as np
import pandas as pd
import pytest

from tf_gru4rec.data import reading
from tf_gru4rec.system import memory
from tf_gru4rec.system.memory import (
    MemoryEstimateError,
    available_bytes,
    check_fits,
    data_bytes,
    training_bytes,
)
from tf_gru4rec.training.params import parse_params

GIB = 2**30


# ----- replicas, GPU memory, cgroups, data structures (issue 17, item 6) ---------------------
@pytest.fixture(autouse=True)
def no_gpu(monkeypatch):
    """check_fits asks TensorFlow for a GPU's free memory: here, none (a test sets one)."""
    monkeypatch.setattr(memory, "device_available_bytes", lambda: None)


def test_every_replica_holds_its_own_tables_step_and_sampler_cache():
    p = parse_params("layers=100,n_sample=2048,sample_cache_size=10000000")
    one, four = training_bytes(1_000_000, p, eval_rows=16), training_bytes(1_000_000, p, eval_rows=16, replicas=4)
    for part in ("negative cache", "item tables", "optimizer slots", "training step"):
        assert four[part] == 4 * one[part] > 0
    assert four["evaluation chunk"] == one["evaluation chunk"] and four["runtime"] == one["runtime"]
    assert data_bytes(1000, 100, replicas=4)["samplers"] == 4 * data_bytes(1000, 100)["samplers"]


def test_item_features_add_their_tables_slots_and_gathers():
    """By hand: V [M, d] and b [M] (shared embedding) with two slots each (momentum), the
    [N, L] int32 value table, a step's [U, L, d + 1] gathers three times (U = 2B + S)."""
    p = parse_params("layers=100,batch_size=32,n_sample=64,momentum=0.1")
    plain, featured = training_bytes(1000, p, eval_rows=8), training_bytes(1000, p, eval_rows=8, features=(50, 3))
    U = 2 * 32 + 64
    assert featured["feature tables"] == (50 * 101 * 3 + 1000 * 3 + 3 * U * 3 * 101) * 4
    assert featured["evaluation chunk"] == plain["evaluation chunk"] + 8 * (50 + 1000) * 4
    assert {k: v for k, v in featured.items() if k not in ("feature tables", "evaluation chunk")} == \
        {k: v for k, v in plain.items() if k != "evaluation chunk"}
    separate = training_bytes(1000, parse_params("layers=100,embedding=20"), features=(50, 3))
    assert separate["feature tables"] == (50 * 121 * 2 + 1000 * 3 + 3 * (2 * 64 + 2048) * 3 * 121) * 4


def test_on_a_gpu_the_tables_are_checked_against_its_memory_not_the_hosts(monkeypatch):
    parts = training_bytes(30_000_000, parse_params("layers=100,momentum=0.2"))  # ~34 GiB of tables
    monkeypatch.setattr(memory, "device_available_bytes", lambda: 16 * GIB)
    with pytest.raises(MemoryEstimateError, match=r"needs about 33.9 GiB of GPU memory per GPU but 16.0 GiB "
                                                  r"is available; the largest part is the optimizer slots"):
        check_fits(parts, available=512 * GIB)
    monkeypatch.setattr(memory, "device_available_bytes", lambda: 80 * GIB)
    assert check_fits(parts, available=8 * GIB) == sum(parts.values())  # the host holds little of it
    # Two GPUs: each holds one replica's tables.
    assert check_fits(training_bytes(30_000_000, parse_params("layers=100,momentum=0.2"), replicas=2),
                      available=8 * GIB, replicas=2)
    with pytest.raises(MemoryEstimateError, match="of host memory"):
        check_fits({**parts, **data_bytes(10**9, 30_000_000)}, available=8 * GIB)


def write(folder, files: dict):
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


@pytest.mark.parametrize("cgroup", [
    {"memory.max": str(8 * GIB), "memory.current": str(6 * GIB), "memory.stat": f"anon 1\ninactive_file {GIB}\n"},
    {"memory/memory.limit_in_bytes": str(8 * GIB), "memory/memory.usage_in_bytes": str(6 * GIB),
     "memory/memory.stat": f"total_inactive_file {GIB}\n"},
], ids=["v2", "v1"])
def test_under_a_cgroup_the_limit_less_its_use_is_available(tmp_path, cgroup):
    write(tmp_path, {"meminfo": f"MemTotal: 67108864 kB\nMemAvailable: {20 * GIB // 1024} kB\n", **cgroup})
    meminfo, root = str(tmp_path / "meminfo"), str(tmp_path)
    assert available_bytes(meminfo, root) == 3 * GIB  # 8 - 6 + 1 (inactive page cache is reclaimed)
    write(tmp_path, {"memory.max": "max", "memory/memory.limit_in_bytes": str(2**63 - 4096)})
    assert available_bytes(meminfo, root) == 20 * GIB  # no limit (v1: a huge one): MemAvailable
    assert available_bytes(str(tmp_path / "absent"), str(tmp_path / "absent")) is None


@pytest.fixture
def clicks(tmp_path):
    """20,000 clicks on 20,000 items (a catalogue as large as the data), as a TSV file."""
    path = tmp_path / "clicks.tsv"
    n = 20_000
    pd.DataFrame({"SessionId": np.arange(n) // 4, "ItemId": np.arange(n), "Time": np.arange(n, dtype=float)}).to_csv(
        path, sep="\t", index=False)
    return str(path)


def test_train_checks_the_parameters_before_reading_and_the_catalogue_before_building(clicks, monkeypatch, capsys):
    from tf_gru4rec.cli.train import train_main
    from tf_gru4rec.data import sessions

    def not_now(*args, **kwargs):
        raise AssertionError("called before the memory check")

    monkeypatch.setattr(sessions.SessionData, "from_frame", not_now)
    monkeypatch.setattr(memory, "available_bytes", lambda: int(1.2 * GIB))
    # The parameters alone (a 2^33-id negative cache, ~136 GiB) cannot fit: refused before reading.
    monkeypatch.setattr(reading, "read_sessions", not_now)
    assert train_main([clicks, "--params", "n_sample=2048,sample_cache_size=8589934592"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the largest part is the negative cache" in err, err
    # 20,000 items x 4,001 columns x 3 (tables, accumulator, velocity) ~ 0.9 GiB: refused once
    # the file is read, before the sessions are built.
    monkeypatch.undo()
    monkeypatch.setattr(sessions.SessionData, "from_frame", not_now)
    monkeypatch.setattr(memory, "available_bytes", lambda: int(1.2 * GIB))
    monkeypatch.setattr(memory, "device_available_bytes", lambda: None)
    assert train_main([clicks, "--params", "layers=4000,momentum=0.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert "the largest part is the optimizer slots" in err.splitlines()[-1], err


def test_the_data_structures_are_counted():
    ints, strings = data_bytes(10**8, 3 * 10**7), data_bytes(10**8, 3 * 10**7, id_length=20)
    assert ints["click rows"] == 10**8 * 24 and ints["item map"] == 3 * 10**7 * 24
    assert strings["item map"] == 3 * 10**7 * (24 + 49 + 20)  # a str object per id
    assert data_bytes(10**8, 100, replicas=2)["sessions"] == 2 * ints["sessions"]  # and the shards


def test_parts_follow_the_catalogue_and_the_settings():
    p = parse_params("layers=100,batch_size=32,n_sample=2048,momentum=0.2,sample_cache_size=10000000")
    parts = training_bytes(10_000_000, p, eval_rows=16)
    assert parts["item tables"] == 10_000_000 * 101 * 4  # Wy and By
    assert parts["optimizer slots"] == 2 * parts["item tables"]  # accumulator and velocity
    assert parts["evaluation chunk"] == 3 * 16 * 10_000_000 * 4
    no_momentum = training_bytes(10_000_000, parse_params("layers=100,momentum=0"))
    assert no_momentum["optimizer slots"] == no_momentum["item tables"]
    one_hot = training_bytes(1000, parse_params("layers=100/50,constrained_embedding=False"))
    assert one_hot["item tables"] == 1000 * (50 + 1 + 300) * 4
    separate = training_bytes(1000, parse_params("layers=100,embedding=64"))
    assert separate["item tables"] == 1000 * (100 + 1 + 64) * 4


def test_a_run_that_cannot_fit_is_refused_in_one_line_naming_the_driver():
    huge_batch = training_bytes(1000, parse_params("batch_size=100000,n_sample=2048"))
    with pytest.raises(MemoryEstimateError, match=r"largest part is the training step .* reduce "
                                                  r"batch_size and n_sample"):
        check_fits(huge_batch, available=24 * GIB)
    big_eval = training_bytes(10_000_000, parse_params("layers=100"), eval_rows=256)
    with pytest.raises(MemoryEstimateError, match="evaluation chunk .*--eval-batch-size"):
        check_fits(big_eval, available=24 * GIB)
    fits = training_bytes(10_000_000, parse_params("layers=100,momentum=0.2"), eval_rows=16)
    assert check_fits(fits, available=24 * GIB) == sum(fits.values())


def test_request_limits_follow_the_catalogue_and_the_budget():
    from tf_gru4rec.system.memory import REQUEST_BYTES, request_limits

    big = request_limits(1_000_000, 100, 20, 100)  # 1 GiB by default
    assert 50 <= big["max_rows"] <= 100  # not 10,000 rows x 1M items (~40 GB of scores)
    small = request_limits(1000, 100, 20, 100)
    assert small["max_rows"] > 400 * big["max_rows"]  # rows follow 1 / N (the state's part stays)
    assert request_limits(1_000_000, 100, 20, 100, 2 * REQUEST_BYTES)["max_rows"] in (
        2 * big["max_rows"], 2 * big["max_rows"] + 1)
    # Candidate cells gather output-table rows: they follow d, not N.
    assert small["max_candidates"] == big["max_candidates"] > 2 * request_limits(1000, 100, 20, 250)[
        "max_candidates"]
    assert request_limits(1_000_000, 100, 20, 100, 1000) == {"max_rows": 0, "max_candidates": 2}
