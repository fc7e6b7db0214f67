"""Warm start: continue a trained GRU4Rec on new data, whose items may be new.

    result = train(new_df, params, init_from="model/")        # or a GRU4Rec, or a WarmStart

The new model's item map is the old one grown by the new items: every old id keeps its
index (so exports, logs and item indices stay comparable), then the ids the old model does
not know follow in the order a fresh model would number them (first appearance in the
data). Item-table rows of known items (Wy, By, a separate embedding E, the one-hot input
weights) and every GRU weight are copied; new rows are those of a fresh model built with
the same parameters (uniform +-sqrt(6 / (N + d)) with the grown N, By zero). AdagradM's
accumulator and velocity slots of the copied weights are carried over by default (new
rows start at zero, as in a fresh run) or reset to zero everywhere.

With item features, the new table is encoded with the model's encoder
(`read_item_features(path, encoder=model.feature_encoder)`: known values keep their
embeddings, new values are appended and start at zero), and never-clicked items of the
table join the map after the new data's items. A new item's id part then starts as a
fresh model's, its feature part is already trained. A model without features may be
warm-started with a table: its feature tables start at zero, as in a fresh model.

Items absent from the new data stay in the model with their rows unchanged (they are never
drawn as extra negatives, which are drawn from the new data's support). `drop_absent=True`
removes them instead: the old items kept are those that occur in a training session of the
new data, and indices then change (the kept old ids stay first, in their old order).

The architecture must match: `layers` and the embedding mode; training settings
(learning_rate, momentum, loss and its parameters, batch_size, n_sample, dropout,
n_epochs, seed) may differ.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import keras
import numpy as np

from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.reading import DataError
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.models.gru4rec import GRU4Rec
from tf_gru4rec.optimizers import AdagradM
from tf_gru4rec.training.model_dir import load_model_dir
from tf_gru4rec.training.params import GRU4RecParams, ParamError

OPTIMIZER_STATES = ("carry", "reset")


class ArchitectureError(ParamError):
    """The parameters describe another architecture than the model's; the message names
    the difference."""


def _describe_embedding(mode) -> str:
    if mode == "shared":
        return "shared (embedding=0, constrained_embedding=True)"
    if mode == "none":
        return "one-hot (embedding=0, constrained_embedding=False)"
    return f"separate of size {mode} (embedding={mode})"


class NoSharedItemsWarning(UserWarning):
    """The model to warm start knows none of the new data's items: only the GRU weights
    carry over, which is seldom intended (another catalogue, or other id columns)."""


def check_architecture(model: GRU4Rec, params: GRU4RecParams) -> None:
    """Raises `ArchitectureError` naming the first shape-changing difference between the
    model and the parameters (layers, embedding mode)."""
    if list(model.layer_sizes) != list(params.layers):
        raise ArchitectureError(
            "cannot warm start: the model has layers=" + "/".join(map(str, model.layer_sizes))
            + ", the parameters give layers=" + "/".join(map(str, params.layers))
            + " (a warm start keeps the architecture)")
    if model.embedding != params.embedding_mode:
        raise ArchitectureError(
            f"cannot warm start: the model's input embedding is {_describe_embedding(model.embedding)}, "
            f"the parameters give {_describe_embedding(params.embedding_mode)} "
            "(a warm start keeps the architecture)")


def grown_item_map(old: ItemMap, data: SessionData, drop_absent: bool = False) -> ItemMap:
    """The old item map followed by the data's unknown ids in the data's own order.

    With `drop_absent`, old ids that occur in no training session of `data` are left out
    (the kept ones stay in old order). Applied to data already mapped with the result, it
    returns the same map.

    Raises:
        DataError: the model's ids are integers and the data's strings, or the reverse.
    """
    if old.is_integer != data.item_map.is_integer:
        kind = {True: "integers", False: "strings"}
        raise DataError(f"cannot warm start: the model's item ids are {kind[old.is_integer]}, "
                        f"the new data's are {kind[data.item_map.is_integer]}")
    new_ids = data.item_map.ids[old.lookup(data.item_map.ids) < 0]
    kept = old.ids
    if drop_absent:
        in_data = data.item_map.lookup(old.ids)
        clicked = data.support() > 0
        kept = old.ids[(in_data >= 0) & clicked[np.maximum(in_data, 0)]]
    return ItemMap(np.concatenate([kept, new_ids]))


def reindex(data: SessionData, item_map: ItemMap) -> SessionData:
    """`data` with its item indices translated to `item_map`, which must hold every item
    that occurs in its sessions."""
    if data.item_map == item_map:
        return data
    index = item_map.lookup(data.item_map.ids)
    if (index[np.unique(data.items)] < 0).any():
        raise ValueError("the item map lacks items of the data")
    return dataclasses.replace(data, items=index[data.items].astype(data.items.dtype), item_map=item_map)


def item_tables(model: GRU4Rec) -> list:
    """The model's variables with one row per item, in `trainable_variables` terms."""
    tables = [model.item_table.wy, model.item_table.by]
    if model.item_embedding is not None:
        tables.append(model.item_embedding.e)
    if model.embedding == "none":
        tables.append(model.gru.cells[0].wx)
    return tables


def feature_tables(model: GRU4Rec) -> list:
    """The model's variables with one row per feature value (V, b of its item features)."""
    return [w for layer in model.feature_layers for w in layer.trainable_weights]


def _copy(source, target, rows) -> None:
    """`source` into `target`, whole (`rows` None) or rows (src, dst) of the first axis."""
    old = keras.ops.convert_to_numpy(source)
    if rows is not None:
        value = keras.ops.convert_to_numpy(target).copy()
        value[rows[1]] = old[rows[0]]
    else:
        value = old
    target.assign(value)


def _row_pairs(destination: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Old row -> new row (-1: gone) as (old rows kept, their new rows)."""
    kept = np.flatnonzero(destination >= 0)
    return kept, destination[kept]


def copy_state(old: GRU4Rec, new: GRU4Rec, carry_optimizer: bool = True) -> None:
    """Copies the weights of `old` into the compiled `new` (same architecture): item-table
    rows by item id, feature-value rows by value (`FeatureEncoder.value_index_in`), the rest
    whole; with `carry_optimizer` also the AdagradM slots, which `new` otherwise keeps at
    zero. New items' and new values' rows keep `new`'s initial values, as do the feature
    tables of a `new` with features warm-started from an `old` without."""
    if carry_optimizer and not (isinstance(old.optimizer, AdagradM) and old.optimizer.built):
        raise ValueError("cannot carry the optimizer state: the model to warm start has no "
                         "AdagradM state (use optimizer_state='reset')")
    item_rows = _row_pairs(new.item_map.lookup(old.item_map.ids))
    rows_of = {id(v): item_rows for v in item_tables(new)}
    if old.item_features is not None:
        value_rows = _row_pairs(old.feature_encoder.value_index_in(new.feature_encoder))
        rows_of.update({id(v): value_rows for v in feature_tables(new)})
    sources = {v.path: v for v in old.trainable_variables}
    for target in new.trainable_variables:
        source = sources.get(target.path)
        if source is None:  # feature tables the old model lacks
            continue
        rows = rows_of.get(id(target))
        _copy(source, target, rows)
        if carry_optimizer:
            old_slots = old.optimizer.slots(source)
            for name, slot in new.optimizer.slots(target).items():
                if name in old_slots:  # no velocity before momentum was turned on: zeros
                    _copy(old_slots[name], slot, rows)


def check_features(model: GRU4Rec, item_features) -> None:
    """Raises `ArchitectureError` unless `item_features` (`ItemFeatures` or None) can carry
    the model's trained feature part: a model with features needs a table encoded with its
    encoder (`read_item_features(path, encoder=model.feature_encoder)`)."""
    if model.item_features is None:
        return
    if item_features is None:
        raise ArchitectureError("cannot warm start: the model has item features; give the new item "
                                "features table (--item-features), read with the model's encoder")
    problem = model.feature_encoder.extension_problem(item_features.encoder)
    if problem:
        raise ArchitectureError(f"cannot warm start: the item features are not encoded as the model's "
                                f"({problem}); read them with read_item_features(path, "
                                "encoder=model.feature_encoder)")


class WarmStart:
    """How `train(..., init_from=...)` starts from a trained model.

    Args:
        source: a trained `GRU4Rec` (compiled, as `train` returns it) or a model directory
            (`save_model_dir`; its saved parameters are kept as `params`).
        optimizer_state: "carry" (AdagradM slots of known items and of the GRU continue)
            or "reset" (all slots start at zero, as in a fresh run).
        drop_absent: remove the old items that occur in no training session of the new
            data (indices change); by default they stay.

    `prepare` (before building the model) checks the architecture and maps the training
    data to the grown item map; `apply` (after `compile`) copies the weights and slots.
    """

    def __init__(self, source, optimizer_state: str = "carry", drop_absent: bool = False):
        if optimizer_state not in OPTIMIZER_STATES:
            raise ValueError(f"`optimizer_state` should be one of {OPTIMIZER_STATES}. "
                             f"Received: `optimizer_state` = {optimizer_state!r}.")
        if isinstance(source, (str, os.PathLike)):
            self.model, self.params = load_model_dir(source)
        else:
            self.model, self.params = source, None
        if not isinstance(self.model, GRU4Rec):
            raise TypeError(f"a warm start needs a GRU4Rec model, got {type(self.model).__name__}")
        self.optimizer_state, self.drop_absent = optimizer_state, bool(drop_absent)

    @classmethod
    def of(cls, init_from) -> "WarmStart":
        """`init_from` itself if it is a WarmStart, else a default WarmStart of it."""
        return init_from if isinstance(init_from, cls) else cls(init_from)

    def prepare(self, data: SessionData, params: GRU4RecParams, item_features=None) -> SessionData:
        """`data` mapped to the grown item map (idempotent), after checking the architecture
        and the new `ItemFeatures` (their cold-start items join later, `ItemFeatures.align`).

        Warns:
            NoSharedItemsWarning: no item of the data is known to the model.

        Raises:
            ArchitectureError: `params` change layers or the embedding mode, or the model's
                trained item features cannot carry over (`check_features`).
        """
        check_architecture(self.model, params)
        check_features(self.model, item_features)
        if not (self.model.item_map.lookup(data.item_map.ids) >= 0).any():
            warnings.warn(f"the model to warm start shares no item with the new data ({self.model.n_items:,} "
                          f"model items, {len(data.item_map):,} in the data): only the GRU weights carry "
                          "over; check the item ids (or train from scratch)", NoSharedItemsWarning, stacklevel=2)
        return reindex(data, grown_item_map(self.model.item_map, data, self.drop_absent))

    def apply(self, model: GRU4Rec) -> None:
        """Copies the source's weights (and slots, with "carry") into the compiled `model`,
        built on the item map of `prepare`."""
        copy_state(self.model, model, self.optimizer_state == "carry")
