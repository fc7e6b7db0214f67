"""Tests of tf_gru4rec.memory: the estimate's parts, and the one-line refusal."""

import pytest

from tf_gru4rec.memory import MemoryEstimateError, check_fits, training_bytes
from tf_gru4rec.params import parse_params

GIB = 2**30


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
    from tf_gru4rec.memory import REQUEST_BYTES, request_limits

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
