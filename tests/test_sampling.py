import numpy as np
import pytest

from tf_gru4rec.data.sampling import NegativeSampler, alias_table, sampling_distribution


def chi2_upper(df, z=3.719):
    """Wilson-Hilferty approximation of the chi-square quantile (z=3.719: p = 1e-4)."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_negatives_follow_support_to_the_alpha(alpha):
    support = np.array([1, 2, 5, 10, 40, 100, 0, 3, 7, 500], dtype=float)
    sampler = NegativeSampler(support, alpha, n_sample=1000, cache_size=20_000, seed=int(alpha * 10))
    draws = sampler.draw(400).ravel()  # 400k ids across many cache refills
    counts = np.bincount(draws, minlength=len(support))
    assert counts[6] == 0  # no support, never drawn
    expected = np.where(support > 0, support**alpha, 0)
    expected = expected / expected.sum() * len(draws)
    nz = expected > 0
    chi2 = (((counts - expected) ** 2)[nz] / expected[nz]).sum()
    assert chi2 < chi2_upper(nz.sum() - 1)
    # And the test has power: the neighbouring alpha is rejected.
    other = np.where(support > 0, support ** (alpha + 0.25), 0)
    other = other / other.sum() * len(draws)
    assert (((counts - other) ** 2)[nz] / other[nz]).sum() > chi2_upper(nz.sum() - 1)


def test_alias_table_implies_the_distribution_exactly():
    rng = np.random.default_rng(3)
    p = sampling_distribution(np.where(rng.random(500) < 0.2, 0, rng.pareto(1.0, 500) * 10 + 1), 0.5)
    prob, alias = alias_table(p)
    implied = prob / len(p) + np.bincount(alias, weights=(1 - prob) / len(p), minlength=len(p))
    np.testing.assert_allclose(implied, p, rtol=0, atol=1e-15)
    assert np.all(prob[p == 0] == 0)  # items without support are always replaced


def test_distribution_and_determinism():
    p = sampling_distribution([0, 1, 4], 0.5)
    np.testing.assert_allclose(p, [0, 1 / 3, 2 / 3])
    a = NegativeSampler([1, 2, 3], 1.0, 4, cache_size=10, seed=7).draw(9)
    b = NegativeSampler([1, 2, 3], 1.0, 4, cache_size=10, seed=7).draw(9)
    assert a.shape == (9, 4) and a.dtype == np.int32
    np.testing.assert_array_equal(a, b)


def test_cache_refills_continue_the_stream():
    s = NegativeSampler(np.ones(50), 0.0, 3, cache_size=6, seed=1)  # 2 steps per refill
    blocks = [s.draw(3) for _ in range(4)]
    assert all(b.shape == (3, 3) for b in blocks)
    assert len({b.tobytes() for b in blocks}) == 4


@pytest.mark.parametrize("kwargs, message", [({"n_sample": 0}, "n_sample"), ({"alpha": -1}, "sample_alpha")])
def test_rejects_bad_arguments(kwargs, message):
    args = {"support": [1, 2], "alpha": 0.5, "n_sample": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        NegativeSampler(**args)


@pytest.mark.parametrize("drawn", [0, 3, 5, 11])
def test_state_round_trip_continues_the_same_stream(drawn):
    """A sampler restored from `get_state` (JSON round trip) draws what the original would."""
    import json

    support = np.arange(1, 40, dtype=float)
    a = NegativeSampler(support, 0.5, n_sample=4, cache_size=20, seed=3)  # 5 steps per refill
    a.draw(drawn)
    b = NegativeSampler(support, 0.5, n_sample=4, cache_size=20, seed=99)
    b.set_state(json.loads(json.dumps(a.get_state())))
    np.testing.assert_array_equal(b.draw(12), a.draw(12))
