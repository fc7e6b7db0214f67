"""The GRU4Rec model: its layers composed, trained K session-parallel steps per call.

Notation: B = batch size, S = extra negatives, K = steps per block, N = items, d = units
of the last GRU layer, H = sum of all layers' units (the width of the carried state).
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from tf_gru4rec import losses as losses_module
from tf_gru4rec.data.batcher import check_blocks
from tf_gru4rec.data.item_features import FeatureEncoder
from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.layers import GRUStack, ItemEmbedding, ItemFeatureEmbedding, ItemTable, value_matrix
from tf_gru4rec.layers.base import dropout
from tf_gru4rec.optimizers import AdagradM
from tf_gru4rec.optimizers.adagradm import mark_padding
from tf_gru4rec.tasks import NextItemTask


def block_noise(model, block_steps, batch_size, position=None):
    """Uniform numbers for a block's dropout masks [K, B, width], or None without dropout.

    One random op per block instead of one per layer and step; per row the columns are the
    embedding's, then each GRU layer's (the layout `_advance` splits). Under a strategy the
    seed comes from the block's `position` (epoch, step), the same on every replica and
    worker, folded with the replica id so that their masks differ.
    """
    if not model._noise_width:
        return None
    if tf.distribute.has_strategy():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.stack([tf.constant(model.seed or 0, tf.int32), replica])
        seed = tf.random.experimental.stateless_fold_in(seed, position[0])
        seed = tf.random.experimental.stateless_fold_in(seed, position[1])
    else:
        seed = tf.cast(tf.math.floormod(model.seed_generator.next(), 2**31 - 1), tf.int32)
    # Philox named explicitly: the default "auto_select" algorithm is ~70x slower under XLA
    # on CPU (it cost more than the rest of the step).
    return tf.random.stateless_uniform([block_steps, batch_size, model._noise_width], seed=seed,
                                       alg="philox")


@keras.saving.register_keras_serializable("tf_gru4rec")
class GRU4Rec(keras.Model):
    """GRU4Rec (Hidasi et al. 2016; Hidasi & Karatzoglou 2018) as a stateful Keras model.

    The layers (`ItemTable`, `ItemEmbedding`, `GRUStack`) and the objective (`NextItemTask`)
    composed; `train_step` runs a block's K steps in one compiled loop, carrying the B slots'
    hidden state in a variable (zeroed where a slot starts a session), one update per step
    (no backpropagation through time). Train with `compile(optimizer=AdagradM(...), loss=...)`
    and `fit(SessionParallelBatcher(...).dataset())`; recommend with `tf_gru4rec.Recommender`.

    Args:
        n_items: N, or omit when `item_ids` is given.
        layers: units of the stacked GRU layers.
        embedding: 'shared' (input embedding = output table Wy, GRU4Rec's "constrained
            embedding"), 'none' (one-hot input) or an int (separate embedding of that size).
        batch_size: B, the number of session slots in training.
        dropout_p_embed: dropout rate on the input embedding.
        dropout_p_hidden: dropout rate on each GRU layer's output (also the carried state).
        item_ids: original item ids in index order (the item map saved with the model).
        seed: seed of weight initialisation and dropout.
        item_features: an `ItemFeatures` in model order (`ItemFeatures.align(item_map)
            .features`, whose ids are then the item map): every item's vector, on the input
            and the output side, adds learned embeddings of its feature values, so an item
            without clicks still scores. With one-hot input ('none') only the output side
            takes features (an item's input stays its one-hot id).
        id_dropout: with item features, the probability that a training step scores an
            item of its targets and negatives by its features alone (its id vector and
            bias dropped, as DropoutNet drops preferences; the GRU's inputs keep theirs): it
            trains the feature part to rank items without clicks. 0 trains the sum only.
    """

    def __init__(self, n_items=None, layers=(100,), embedding="shared", batch_size=64,
                 dropout_p_embed=0.0, dropout_p_hidden=0.0, item_ids=None, seed=None,
                 item_features=None, id_dropout=0.0, **kwargs):
        kwargs.setdefault("name", "gru4rec")
        super().__init__(**kwargs)
        if item_ids is None and hasattr(item_features, "ids"):
            item_ids = item_features.ids
        self.item_map = _item_map(n_items, item_ids)
        self.n_items = len(self.item_map)
        self.layer_sizes = _checked_layers(layers, dropout_p_embed, dropout_p_hidden, batch_size)
        self.embedding, self.batch_size, self.seed = _parse_embedding(embedding), int(batch_size), seed
        self.dropout_p_embed, self.dropout_p_hidden = float(dropout_p_embed), float(dropout_p_hidden)
        N, d = self.n_items, self.layer_sizes[-1]
        seed_of = lambda i: None if seed is None else seed * 1000 + i  # noqa: E731
        # In this order the trainable variables (and optimizer slots) keep release 0.1.0's.
        self.item_features = _features_spec(item_features, self.item_map)
        self.id_dropout = float(id_dropout)
        if not 0.0 <= self.id_dropout <= 1.0 or (self.id_dropout and self.item_features is None):
            raise ValueError(f"id_dropout={id_dropout!r}: a drop probability in [0, 1], and it needs "
                             "item features (without them an item is its id only)")
        features = lambda dim, bias, name: None if self.item_features is None else ItemFeatureEmbedding(  # noqa: E731
            N, self.item_features["n_values"], self.item_features["max_values"], dim, bias=bias,
            item_values=_item_values(item_features), name=name)
        self.item_table = ItemTable(N, d, seed=seed_of(0), features=features(d, True, "output_features"))
        separate = isinstance(self.embedding, int)
        self.item_embedding = ItemEmbedding(N, self.embedding, seed=seed_of(1), features=features(
            self.embedding, False, "input_features")) if separate else None
        self.gru = GRUStack(self.layer_sizes, self.embedding if separate else d,
                            input_rows=N if self.embedding == "none" else None,
                            dropout=self.dropout_p_hidden, seed=seed_of(10))
        self.task = NextItemTask()
        # The B slots' state across train_step calls; on read: each replica carries its own.
        self.train_state = keras.Variable(
            initializer="zeros", shape=(self.batch_size, self.state_size), trainable=False,
            name="train_state", synchronization="on_read", aggregation="only_first_replica")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    # ----- the network -----------------------------------------------------------------
    @property
    def feature_layers(self):
        """The model's `ItemFeatureEmbedding`s: the output side's, then a separate input
        embedding's (none without item features)."""
        tables = [self.item_table] + ([self.item_embedding] if self.item_embedding is not None else [])
        return [table.features for table in tables if table.features is not None]

    @property
    def feature_encoder(self):
        """The `FeatureEncoder` of the model's item features (None without them): new items'
        tables are read with it (`read_item_features(path, encoder=...)`)."""
        spec = self.item_features and self.item_features.get("encoder")
        return None if not spec else FeatureEncoder.from_config(spec)

    @property
    def state_size(self):
        return sum(self.layer_sizes)

    def embed(self, items):
        """Input of the first GRU layer for item indices [b] (the indices for one-hot input)."""
        if self.embedding == "shared":
            return self.item_table.embed(items)
        return items if self.item_embedding is None else self.item_embedding(items)

    def _advance(self, x, state, noise=None):
        """The GRU stack's step from layer-0 input x, with the block's dropout `noise`."""
        if noise is not None and self.dropout_p_embed and self.embedding != "none":
            x, noise = dropout(x, self.dropout_p_embed, noise[:, : x.shape[-1]]), noise[:, x.shape[-1]:]
        return self.gru(x, state, noise)

    def step(self, items, state):
        """Inference step: item indices [b], state [b, H] -> (new state [b, H], h_last [b, d])."""
        return self._advance(self.embed(items), state)

    def score_all(self, h):
        """Scores of all N items for last-layer outputs h [b, d] -> [b, N]."""
        return self.item_table(h)

    def score_items(self, h, items):
        """Scores of item indices [b, C] for h [b, d] -> [b, C], the formula of `score_all`."""
        return self.item_table.score_items(h, items)

    def output_of(self, state):
        """The last layer's output h [b, d] carried in an inference state [b, H]."""
        return self.gru.output_of(state)

    def initial_state(self, batch):
        return tf.zeros([batch, self.state_size])

    def call(self, inputs, training=False):
        """Stateless inference: {'items': [b] indices, 'state': [b, H] (omitted: a new
        session)} -> {'scores': all-item scores [b, N], 'state': the new state}."""
        items = tf.convert_to_tensor(inputs["items"])
        state = inputs.get("state")
        state, h = self.step(items, self.initial_state(tf.shape(items)[0]) if state is None else state)
        return {"scores": self.score_all(h), "state": state}

    # ----- training ----------------------------------------------------------------------
    def compile(self, optimizer="adagradm", loss="cross-entropy", jit_compile=None, **kwargs):
        """`keras.Model.compile` with a `GRU4RecLoss` (or its name), the optimizer built (the
        compiled loop creates no variables) and XLA on one device only (a replica's gradient
        sync cannot run inside XLA on CPUs: there each step's compute is XLA on its own).
        Under a strategy a call runs a block per replica (`make_train_function`), so
        `steps_per_execution` stays 1."""
        if tf.distribute.has_strategy() and kwargs.get("steps_per_execution", 1) != 1:
            raise ValueError("under a tf.distribute strategy a call runs one block per replica: give "
                             "replica_batchers(..., block_steps=K) instead of steps_per_execution")
        jit_compile = False if tf.distribute.has_strategy() else jit_compile is None or jit_compile
        loss = losses_module.get(loss) if isinstance(loss, str) else loss
        if not isinstance(loss, losses_module.GRU4RecLoss):
            raise ValueError(f"GRU4Rec trains with a GRU4RecLoss (tf_gru4rec.losses). Received: loss={loss!r}")
        optimizer = AdagradM() if optimizer == "adagradm" else optimizer
        super().compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def fit(self, *args, shuffle=False, **kwargs):
        """`keras.Model.fit` that never shuffles (blocks must stay in order) and refuses blocks
        that do not fit the model (`check_blocks`) before the first step where it can. A
        distributed dataset's length is unknown until its first epoch ends, which Keras reports
        as input that "ran out of data": expected here, so not shown."""
        spec = getattr(args[0] if args else kwargs.get("x"), "element_spec", None)
        if isinstance(spec, dict) and all(isinstance(v, tf.TensorSpec) for v in spec.values()):
            check_blocks({k: v.shape for k, v in spec.items()}, self.embedding, self.batch_size)
        with warnings.catch_warnings():
            if tf.distribute.has_strategy() or self._distribute_strategy is not None:
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            return super().fit(*args, shuffle=shuffle, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Nothing to build (Keras' version would pull a block off the epoch under a strategy)."""

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def metrics(self):
        return self.task.metrics

    def _sampled_scores(self, step, state, noise=None):
        """Scores of a step's targets and extra negatives [B, B + S] (positives on the
        diagonal) and the new state. The touched rows are gathered once (`rows`, distinct;
        padding -1 reads row 0, and `padding_marks` keeps its slices off that row)."""
        (wy_rows, by_rows), features = self.item_table.gather_parts(step["rows"])  # [U, d], [U]
        if features is not None:
            id_rows = wy_rows, by_rows
            wy_rows, by_rows = wy_rows + features[0], by_rows + features[1]
        shared = self.embedding == "shared"
        x = tf.gather(wy_rows, step["input_pos"]) if shared else self.embed(step["inputs"])
        new_state, h = self._advance(x, state, noise)
        kept = self._kept_ids(step)
        if kept is not None:  # scored by their features alone; as inputs they keep their id part
            wy_rows, by_rows = id_rows[0] * kept[:, None] + features[0], id_rows[1] * kept + features[1]
        # Scoring the distinct rows, then picking columns, is cheaper than gathering [B + S, d].
        row_scores = tf.matmul(h, wy_rows, transpose_b=True) + by_rows  # [B, U]
        return tf.gather(row_scores, step["column_pos"], axis=1), new_state

    def _kept_ids(self, step):
        """[U] 1.0 where a step's row keeps its id part, 0.0 where id dropout drops it (None:
        no id dropout). Counter-based (the seed and the optimizer's step count), so that
        `padding_marks` draws the same rows and a resumed run the same masks. The padding
        repeats of a row (`rows` is sorted) take its first draw: a row is kept or not."""
        if not self.id_dropout:
            return None
        rows = step["rows"]
        seed = tf.stack([tf.constant(self.seed or 0, tf.int32), tf.cast(self.optimizer.iterations, tf.int32)])
        uniform = tf.random.stateless_uniform(tf.shape(rows), seed=seed, alg="philox")
        first = tf.concat([[True], rows[1:] != rows[:-1]], 0)
        run = tf.cumsum(tf.cast(first, tf.int32)) - 1
        uniform = tf.gather(tf.math.unsorted_segment_max(tf.where(first, uniform, 0.0), run, tf.size(rows)), run)
        return tf.cast(uniform >= self.id_dropout, self.item_table.wy.dtype)

    _dropout_noise = block_noise  # a method, so that tests can fix a block's noise

    @property
    def _noise_width(self):
        """Uniform numbers a training step's dropout needs per row (0: no dropout)."""
        embed = self.dropout_p_embed and self.embedding != "none"
        return (self.gru.cells[0].input_dim if embed else 0) + self.gru.noise_width

    def step_gradients(self, step, state, noise=None):
        """One step's loss, gradients (padding marked for AdagradM) and new state, no update."""
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            scores, new_state = self._sampled_scores(step, state, noise)
            loss = self.task.step_loss(self.loss, step, scores)
        gradients = mark_padding(tape.gradient(loss, variables), variables, padding_marks(self, step))
        return loss, gradients, tf.stop_gradient(new_state)

    @property
    def _replica_gradients(self):
        """`step_gradients` compiled with XLA, for a replica under a strategy: the step's
        compute in one XLA call, the gradient exchange and update outside it."""
        if getattr(self, "_compiled_gradients", None) is None:
            self._compiled_gradients = tf.function(self.step_gradients, jit_compile=True)
        return self._compiled_gradients

    def _train_one(self, step, state, noise, gradients_of):
        """One step from the carried state: reset, gradients, update -> (loss, new state)."""
        state = tf.where(step["reset"][:, None], 0.0, state)
        loss, gradients, new_state = gradients_of(step, state, noise)
        self.optimizer.apply(gradients, self.trainable_variables)
        return loss, new_state

    def train_step(self, data):
        """Runs one block of K steps in one compiled loop (one device; under a strategy
        `make_train_function` runs a block one synchronised step at a time)."""
        data = _checked_block(data, self.embedding, self.batch_size)
        per_step = {k: v for k, v in data.items() if k not in ("n_steps", "position")}
        noise = self._dropout_noise(*data["inputs"].shape, data.get("position"))

        def body(t, state, loss_sum):
            step = {k: v[t] for k, v in per_step.items()}
            # A step without active rows (an epoch padded by raising n_steps) is none.
            loss, state = tf.cond(
                tf.reduce_any(step["valid"]),
                lambda: self._train_one(step, state, None if noise is None else noise[t], self.step_gradients),
                lambda: (0.0, state))
            return t + 1, state, loss_sum + loss

        _, state, loss_sum = tf.while_loop(lambda t, *_: t < data["n_steps"], body,
                                           (tf.constant(0), self.train_state.value, 0.0))
        self.train_state.assign(state)
        self.task.update(loss_sum, data["n_steps"], data["valid"])
        return self.task.logs()

    def replica_step(self, block, t):
        """Step t of this replica's block, under a strategy: every replica runs it at once,
        an inactive one too (the gradient exchange is a synchronisation point). Its dropout
        noise depends on (epoch, step) only, not on how the epoch is cut into blocks."""
        block = _checked_block(block, self.embedding, self.batch_size)
        step = {k: v[t] for k, v in block.items() if k not in ("n_steps", "position")}
        noise = self._dropout_noise(1, self.batch_size, block["position"] + tf.stack([0, t]))
        loss, state = self._train_one(step, self.train_state.value, None if noise is None else noise[0],
                                      self._replica_gradients)
        self.train_state.assign(state)
        # Keras scales the loss by 1 / replicas, so the summed gradients are those of (all
        # replicas' active rows) / (replicas * B); the logged loss is unscaled.
        self.task.update(loss * self.distribute_strategy.num_replicas_in_sync, 1, step["valid"][None])

    def make_train_function(self, force=False):
        """One device: Keras' (a call runs `train_step` on a block). Under a strategy a call
        takes a block per replica and runs its steps in a loop of `strategy.run`s, the logs
        reduced once per call: the replicas synchronise once per step, not the input and logs."""
        strategy = self._distribute_strategy
        if strategy is None:
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        replicas = strategy.num_replicas_in_sync

        @tf.function
        def run_block(iterator):
            block = next(iterator)
            n_steps = strategy.experimental_local_results(block["n_steps"])[0]  # same everywhere
            for t in tf.range(n_steps):
                strategy.run(self.replica_step, args=(block, t))
            return _mean_over_replicas(strategy, lambda: self.task.logs(replicas))

        self.train_function = run_block
        return run_block

    # ----- persistence ---------------------------------------------------------------------
    def get_config(self):
        return {"n_items": self.n_items, "layers": list(self.layer_sizes), "embedding": self.embedding,
                "batch_size": self.batch_size, "dropout_p_embed": self.dropout_p_embed,
                "dropout_p_hidden": self.dropout_p_hidden, "seed": self.seed, "name": self.name,
                **({} if self.item_features is None else {"item_features": self.item_features,
                                                          "id_dropout": self.id_dropout})}

    def save_assets(self, dir_path):
        """The item map travels with the model (`model.save('x.keras')`)."""
        self.item_map.save(os.path.join(dir_path, "item_ids.npy"))

    def load_assets(self, dir_path):
        self.item_map = ItemMap.load(os.path.join(dir_path, "item_ids.npy"))

    def load_own_variables(self, store):
        if len(store.keys()) > 1:  # only train_state is the model's own now
            _restore_release_0_1(self, store)
        else:
            super().load_own_variables(store)


def _mean_over_replicas(strategy, logs_fn):
    """The replicas' logs (`logs_fn` in replica context) averaged as Keras averages them,
    packed into one reduction (one collective between workers)."""
    keys = []

    def packed():
        logs = logs_fn()
        keys[:] = sorted(logs)
        return tf.stack([tf.reshape(logs[k], []) for k in keys])[None]  # [1, n]

    mean = strategy.reduce("MEAN", strategy.run(packed), axis=0)
    return dict(zip(keys, tf.unstack(mean)))


def padding_marks(model, step):
    """Indices for the item tables' gradients of a step with its padding at row -1, which
    AdagradM skips (`mark_padding`): the step's `rows` padding and (separate or one-hot input)
    the inputs of inactive rows; a replica whose shard has ended runs whole such steps."""
    inputs = tf.where(step["valid"], step["inputs"], -1)
    # Rows whose id part id dropout drops (and no active input reads) are untouched too.
    kept, id_rows = model._kept_ids(step), step["rows"]
    if kept is not None:
        is_input = tf.zeros_like(kept, tf.bool)
        if model.embedding == "shared":
            at = tf.where(step["valid"], step["input_pos"], 0)[:, None]
            is_input = tf.tensor_scatter_nd_max(tf.zeros_like(id_rows), at, tf.cast(step["valid"], id_rows.dtype)) > 0
        id_rows = tf.where((kept > 0) | is_input, id_rows, -1)
    marks = {id(model.item_table.wy): id_rows, id(model.item_table.by): id_rows}
    if model.embedding != "shared":
        table = model.gru.cells[0].wx if model.item_embedding is None else model.item_embedding.e
        marks[id(table)] = inputs
    # A feature table is gathered at the distinct values of its items, sorted, -1 padded in front.
    for features, items in ((model.item_table.features, step["rows"]),
                            (model.item_embedding and model.item_embedding.features, inputs)):
        if features is not None:
            values = features.distinct_values(features.value_indices(items))[0]
            marks.update({id(table): values for table in (features.v, features.b) if table is not None})
    return marks


def _checked_block(data, embedding, batch_size):
    """The block, refused (`check_blocks`) when it does not fit the model."""
    check_blocks({k: v.shape for k, v in data.items()}, embedding, batch_size)
    return data


def _restore_release_0_1(model, store):
    """Reads a file of release 0.1.0, which kept wy, by, [e] and train_state as the model's own
    variables and the GRU cells in a list `cells` (paths cells/gru_cell, cells/gru_cell_1...)."""
    tables = [model.item_table.wy, model.item_table.by]
    tables += [] if model.item_embedding is None else [model.item_embedding.e]
    if len(store.keys()) != len(tables) + 1:
        raise ValueError(f"the weights file lists {len(store.keys())} variables for the model itself; "
                         f"a model of this architecture saved by release 0.1.0 has {len(tables) + 1}")
    for i, variable in enumerate(tables + [model.train_state]):
        variable.assign(store[str(i)])
    for i, cell in enumerate(model.gru.cells):
        group = store.h5_file[f"cells/gru_cell{'_' + str(i) if i else ''}/vars"]
        for j, variable in enumerate(cell.weights):
            variable.assign(group[str(j)])
        cell.restored_by_model = True
    for layer in (model.item_table, model.item_embedding):
        if layer is not None:
            layer.restored_by_model = True


def _features_spec(item_features, item_map):
    """{'n_values': M, 'max_values': L} of the model's item features (None without them)."""
    if item_features is None:
        return None
    if isinstance(item_features, dict):
        return {"n_values": int(item_features["n_values"]), "max_values": int(item_features["max_values"]),
                "encoder": item_features.get("encoder")}
    if len(item_features) != len(item_map) or (item_map.lookup(item_features.ids) != np.arange(len(item_map))).any():
        raise ValueError(f"item_features should list the model's {len(item_map):,} items in index order "
                         f"(ItemFeatures.align(item_map).features); it lists {len(item_features):,} items")
    return {"n_values": int(item_features.n_values),
            "max_values": int(value_matrix(item_features.values, item_features.offsets).shape[1]),
            "encoder": item_features.get_config()}


def _item_values(item_features):
    """The [N, L] value table of given `ItemFeatures` (None: loaded with the weights)."""
    if item_features is None or isinstance(item_features, dict):
        return None
    return value_matrix(item_features.values, item_features.offsets)


def _item_map(n_items, item_ids):
    if item_ids is None:
        if n_items is None:
            raise ValueError("give `n_items` or `item_ids`")
        return ItemMap(np.arange(n_items))
    item_map = ItemMap(item_ids)
    if n_items is not None and n_items != len(item_map):
        raise ValueError(f"n_items={n_items} but {len(item_map)} item ids were given")
    return item_map


def _checked_layers(layers, dropout_p_embed, dropout_p_hidden, batch_size):
    layers = [int(u) for u in (layers if isinstance(layers, (list, tuple)) else [layers])]
    if not layers or min(layers) < 1:
        raise ValueError(f"`layers` should be a non-empty list of positive ints. Received: {layers}.")
    for name, p in (("dropout_p_embed", dropout_p_embed), ("dropout_p_hidden", dropout_p_hidden)):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"`{name}` is a drop probability in [0, 1). Received: `{name}` = {p}.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` should be a positive int. Received: {batch_size}.")
    return layers


def _parse_embedding(embedding):
    if embedding in ("shared", "none"):
        return embedding
    if isinstance(embedding, (int, np.integer)) and not isinstance(embedding, bool) and embedding > 0:
        return int(embedding)
    raise ValueError("`embedding` should be 'shared', 'none' or a positive int (separate embedding "
                     f"size). Received: `embedding` = {embedding!r}.")
