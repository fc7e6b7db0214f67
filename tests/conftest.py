import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions  # noqa: E402


@pytest.fixture(scope="session")
def hot_clicks():
    """400 two-click sessions for the cold-start tests: item 0 is always followed by a 'hot'
    item (1, 2 or 3), item 4 by 5 (seeded)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for s in range(400):
        pair = [0, int(rng.integers(1, 4))] if s % 2 else [4, 5]
        rows += [(s, item, 2 * s + t) for t, item in enumerate(pair)]
    return pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"])


@pytest.fixture(scope="session")
def synthetic_split():
    """The embedded default data at test size: (train, test) frames."""
    return split_by_time(synthetic_sessions(n_sessions=3000, n_items=300, seed=0), 0.1)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def shared_data():
    """`../shared/data` beside the checkout (real YOOCHOOSE files, not in the repository)."""
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "shared" / "data"
