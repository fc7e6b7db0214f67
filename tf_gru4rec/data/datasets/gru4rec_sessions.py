"""TFDS builder for the public session datasets, preprocessed the GRU4Rec way.

The raw dumps cannot be downloaded automatically (registration / licence), so
the builder reads them from ``manual_dir`` and runs exactly the functions of
``tf_gru4rec.preprocess``; ``tfds`` and the CLI therefore give the same rows.

Example::

    import tensorflow_datasets as tfds
    import tf_gru4rec.data.datasets  # registers "gru4rec_sessions"

    ds = tfds.load(
        "gru4rec_sessions/rsc15",
        split="train",
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir="~/raw/yoochoose")
        },
    )

Configs: ``rsc15``, ``yoochoose``, ``diginetica``, ``retailrocket``. Splits:
``train`` (= ``train_full.tsv``), ``test``, ``train_tr``, ``train_valid``.
One example per click: ``session_id`` (int64), ``item_id`` (int64; the ids of
all four dumps are integers; RetailRocket session ids are the rebuilt 0, 1,
...), ``time`` (float64 unix seconds). Shuffling is disabled: examples come in
the preprocessed order (grouped by session, time order inside a session),
which session-parallel training relies on.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from tf_gru4rec.data import preprocess

# TFDS split name -> preprocess output name.
_SPLITS = {
    "train": "train_full",
    "test": "test",
    "train_tr": "train_tr",
    "train_valid": "train_valid",
}

_DESCRIPTIONS = {
    "rsc15": "YOOCHOOSE clicks, GRU4Rec papers' rule: one filtering pass, test = sessions "
    "ending in the last day, test items restricted to training items.",
    "yoochoose": "YOOCHOOSE clicks + test clicks, RecSys'23 rule: de-duplicated, iterated "
    "filters, test = sessions starting in the last day.",
    "diginetica": "Diginetica item views, RecSys'23 rule, test = sessions starting in the last "
    "7 days.",
    "retailrocket": "RetailRocket views, sessions rebuilt with a 1 hour gap, RecSys'23 rule, "
    "test = sessions starting in the last 7 days.",
}


class Gru4recSessions(tfds.core.GeneratorBasedBuilder):
    """Session clicks (session_id, item_id, time), one example per click."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name=name, description=_DESCRIPTIONS[name])
        for name in preprocess.DATASETS
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put the raw dump of the chosen config in `manual_dir`:
      rsc15, yoochoose: yoochoose-clicks.dat (yoochoose: also yoochoose-test.dat) from the
                        RecSys Challenge 2015 (YOOCHOOSE) data;
      diginetica:       train-item-views.csv from the CIKM Cup 2016 (DIGINETICA) data;
      retailrocket:     events.csv from the Retailrocket recommender system dataset.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "session_id": np.int64,
                    "item_id": np.int64,
                    # tf.train.Example keeps floats as float32 (128 s steps at unix
                    # times); raw bytes keep the full float64.
                    "time": tfds.features.Tensor(
                        shape=(), dtype=np.float64, encoding=tfds.features.Encoding.BYTES
                    ),
                }
            ),
            # Order matters: rows must stay grouped by session, in time order.
            disable_shuffling=True,
            homepage="https://github.com/hidasib/GRU4Rec",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        frames = preprocess.make_splits(self.builder_config.name, str(dl_manager.manual_dir))
        return {split: self._generate_examples(frames[name]) for split, name in _SPLITS.items()}

    def _generate_examples(self, frame):
        # The row position inside a split is a unique key and keeps the order.
        columns = zip(
            frame["SessionId"].to_numpy(),
            frame["ItemId"].to_numpy(),
            frame["Time"].to_numpy(),
            strict=True,
        )
        for key, (session, item, time) in enumerate(columns):
            yield key, {"session_id": session, "item_id": item, "time": time}
