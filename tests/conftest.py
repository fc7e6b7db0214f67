import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions  # noqa: E402


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
