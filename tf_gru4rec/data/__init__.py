"""Stage 1, data: rows -> item map -> sessions -> session-parallel blocks.

`reading` (rows from TSV/CSV/Parquet, validated) -> `item_map` (item id <-> index)
-> `sessions` (`SessionData`: sessions as contiguous runs of item indices)
-> `schedule` (which event every slot of every step holds) -> `sampling` (extra negatives
by popularity^alpha) -> `batcher` (`SessionParallelBatcher`: fixed-shape blocks of steps).
`item_features` reads and encodes an item side-information table (`read_item_features`).
`preprocess` and `datasets` prepare the public data sets, `synthetic` the embedded example.
"""

from tf_gru4rec.data.item_features import (AlignedFeatures, FeatureEncoder, ItemFeatures,
                                           read_item_features)

__all__ = ["AlignedFeatures", "FeatureEncoder", "ItemFeatures", "read_item_features"]
