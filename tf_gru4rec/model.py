"""The GRU4Rec model: a stateful `keras.Model` trained on session-parallel blocks.

Notation: B = batch size, S = extra negatives, N = items, d = units of the last GRU
layer, H = sum of all layers' units (the width of the carried state).
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from tf_gru4rec import losses as losses_module
from tf_gru4rec import recommending
from tf_gru4rec.data import ItemMap


def _rows(table, indices):
    """Gathers rows of a Keras variable without reading the whole table first (ResourceGather).

    Reading the table would also force XLA to copy it before the optimizer's in-place row
    updates in the same compiled step.
    """
    return tf.gather(table.value, indices)


def _uniform(fan_in, fan_out, seed=None):
    """GRU4Rec's init: uniform in +-sqrt(6 / (fan_in + fan_out))."""
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


@keras.saving.register_keras_serializable("tf_gru4rec")
class GRUCell(keras.layers.Layer):
    """One GRU layer as GRU4Rec defines it (reset gate applied before the recurrent matmul).

        r = sigmoid(x Wx_r + h Wh_r + b_r);  z = sigmoid(x Wx_z + h Wh_z + b_z)
        c = tanh(x Wx_c + (r * h) Wh_c + b_c);  h' = (1 - z) * h + z * c

    Note z weighs the candidate (Keras' own GRU uses the opposite convention). With
    `input_rows` set the input is one-hot: `x` holds item indices and `Wx` is a table of
    `input_rows` rows looked up by row (GRU4Rec without embedding).

    Args:
        units: d.
        input_dim: width of x (ignored when `input_rows` is set).
        input_rows: number of items for one-hot input, else None.
    """

    def __init__(self, units, input_dim, input_rows=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.input_dim, self.input_rows = int(units), int(input_dim), input_rows
        d = self.units
        fan_in = input_rows if input_rows else input_dim
        # Each gate's sub-matrix has fan_in x d, so one limit covers all three.
        self.seed = seed
        self.wx = self.add_weight(
            shape=(fan_in, 3 * d), initializer=_uniform(fan_in, d, seed), name="wx"
        )
        self.wh = self.add_weight(
            shape=(d, 3 * d), initializer=_uniform(d, d, None if seed is None else seed + 1),
            name="wh",
        )
        self.b = self.add_weight(shape=(3 * d,), initializer="zeros", name="b")

    def call(self, x, h):
        d = self.units
        if self.input_rows:
            xp = _rows(self.wx, x) + self.b  # [b, 3d]
        else:
            xp = tf.matmul(x, self.wx) + self.b
        hp = tf.matmul(h, self.wh[:, : 2 * d])
        r = tf.sigmoid(xp[:, :d] + hp[:, :d])
        z = tf.sigmoid(xp[:, d : 2 * d] + hp[:, d:])
        c = tf.tanh(xp[:, 2 * d :] + tf.matmul(r * h, self.wh[:, 2 * d :]))
        return (1.0 - z) * h + z * c

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "input_dim": self.input_dim,
            "input_rows": self.input_rows,
            "seed": self.seed,
        }


def _parse_embedding(embedding):
    if embedding in ("shared", "none"):
        return embedding
    if isinstance(embedding, (int, np.integer)) and not isinstance(embedding, bool) and embedding > 0:
        return int(embedding)
    raise ValueError(
        "`embedding` should be 'shared', 'none' or a positive int (separate embedding size). "
        f"Received: `embedding` = {embedding!r}."
    )


def check_blocks(shapes, embedding, batch_size):
    """Raises a one-line ValueError when training blocks do not fit a model.

    A shared-embedding model takes its inputs from the gathered output-table rows, so its
    blocks need the inputs among the rows (`input_pos`, 2B + S rows per step); a separate
    or one-hot model looks its inputs up in their own table (B + S rows, no `input_pos`).

    Args:
        shapes: block entry name -> shape, steps first (`SessionParallelBatcher.element_spec`).
        embedding, batch_size: the model's.
    """
    B, S, U = shapes["inputs"][-1], shapes["negatives"][-1], shapes["rows"][-1]
    if B != batch_size:
        raise ValueError(f"training blocks of batch size {B} for a model built with "
                         f"batch_size={batch_size}: build the batcher with the model's batch size")
    shared = embedding == "shared"
    if shared and "input_pos" not in shapes:
        raise ValueError("training blocks without the inputs among their rows (inputs_in_rows="
                         "False) for a shared-embedding model, whose inputs are rows of the "
                         "output table: build the batcher with inputs_in_rows=True")
    if not shared and "input_pos" in shapes:
        raise ValueError(f"training blocks with the inputs among their rows (inputs_in_rows=True) "
                         f"for a model with embedding={embedding!r}, whose inputs have a table of "
                         "their own: build the batcher with inputs_in_rows=False")
    need = (2 if shared else 1) * B + S
    if U != need:
        raise ValueError(f"training blocks of {U} rows per step: a model with batch_size={B} and "
                         f"{S} extra negatives needs {'2B + S' if shared else 'B + S'} = {need}")


@keras.saving.register_keras_serializable("tf_gru4rec")
class GRU4Rec(keras.Model):
    """GRU4Rec (Hidasi et al. 2016; Hidasi & Karatzoglou 2018) as a stateful Keras model.

    Training: `model.compile(optimizer=AdagradM(...), loss=CrossEntropy(...))` then
    `model.fit(SessionParallelBatcher(...).dataset(), epochs=...)`. Each dataset element
    is a block of steps; `train_step` runs them in one compiled loop, carrying the hidden
    state of the B slots in a non-trainable variable (zeroed where a slot starts a new
    session). No backpropagation through time: every step is one update.

    Scores: only the B targets and S extra negatives during training (gathered rows of
    the output table, then one matmul); all N items at inference.

    Args:
        n_items: N, or omit when `item_ids` is given.
        layers: units of the stacked GRU layers.
        embedding: 'shared' (input embedding = output table Wy, GRU4Rec's "constrained
            embedding"), 'none' (one-hot input) or an int (separate embedding of that size).
        batch_size: B, the number of session slots in training.
        dropout_p_embed: dropout rate on the input embedding.
        dropout_p_hidden: dropout rate on each GRU layer's output (the dropped output is
            also the state carried to the next step).
        item_ids: original item ids in index order (the item map saved with the model).
        seed: seed of weight initialisation and dropout.

    Example:
        >>> model = GRU4Rec(item_ids=data.item_map.ids, layers=[100], batch_size=32)
        >>> model.compile(optimizer=AdagradM(0.2, momentum=0.2), loss=CrossEntropy(logq=1))
        >>> model.fit(SessionParallelBatcher(data, 32, n_sample=2048).dataset(), epochs=10)
        >>> ids, scores, report = model.recommend([[37220, 37204]], k=20)
    """

    def __init__(
        self,
        n_items=None,
        layers=(100,),
        embedding="shared",
        batch_size=64,
        dropout_p_embed=0.0,
        dropout_p_hidden=0.0,
        item_ids=None,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "gru4rec")
        super().__init__(**kwargs)
        if item_ids is not None:
            self.item_map = ItemMap(item_ids)
            n_items = len(self.item_map) if n_items is None else n_items
            if n_items != len(self.item_map):
                raise ValueError(f"n_items={n_items} but {len(self.item_map)} item ids were given")
        else:
            if n_items is None:
                raise ValueError("give `n_items` or `item_ids`")
            self.item_map = ItemMap(np.arange(n_items))
        self.blocked = np.zeros(len(self.item_map), bool)  # see set_blocklist
        layers = [int(u) for u in (layers if isinstance(layers, (list, tuple)) else [layers])]
        if not layers or min(layers) < 1:
            raise ValueError(f"`layers` should be a non-empty list of positive ints. Received: {layers}.")
        for name, p in (("dropout_p_embed", dropout_p_embed), ("dropout_p_hidden", dropout_p_hidden)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"`{name}` is a drop probability in [0, 1). Received: `{name}` = {p}.")
        if int(batch_size) < 1:
            raise ValueError(f"`batch_size` should be a positive int. Received: {batch_size}.")
        self.n_items = int(n_items)
        self.layer_sizes = layers
        self.embedding = _parse_embedding(embedding)
        self.batch_size = int(batch_size)
        self.dropout_p_embed = float(dropout_p_embed)
        self.dropout_p_hidden = float(dropout_p_hidden)
        self.seed = seed
        self.state_size = sum(layers)
        N, d = self.n_items, layers[-1]

        seed_of = lambda i: None if seed is None else seed * 1000 + i  # noqa: E731
        self.wy = self.add_weight(shape=(N, d), initializer=_uniform(N, d, seed_of(0)), name="wy")
        self.by = self.add_weight(shape=(N,), initializer="zeros", name="by")
        if isinstance(self.embedding, int):
            e = self.embedding
            self.item_embedding = self.add_weight(
                shape=(N, e), initializer=_uniform(N, e, seed_of(1)), name="e"
            )
            input_dim = e
        else:
            self.item_embedding = None
            input_dim = d
        self.cells = []
        for i, units in enumerate(layers):
            rows = N if (i == 0 and self.embedding == "none") else None
            self.cells.append(
                GRUCell(units, input_dim, input_rows=rows, seed=seed_of(10 + 2 * i), name=f"gru_{i}")
            )
            input_dim = units
        # Hidden state of the B training slots; carried across train_step calls. On read
        # sync: under a tf.distribute strategy every replica carries its own slots' state.
        self.train_state = keras.Variable(
            initializer="zeros", shape=(self.batch_size, self.state_size), trainable=False,
            name="train_state", synchronization="on_read", aggregation="only_first_replica",
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.events_tracker = keras.metrics.Sum(name="events")
        self.built = True

    # ----- one step of the network -------------------------------------------------------
    def _embed(self, items):
        """Input of the first GRU layer for item indices [b] (indices for one-hot input)."""
        if self.embedding == "shared":
            return _rows(self.wy, items)
        if self.embedding == "none":
            return items
        return _rows(self.item_embedding, items)

    @property
    def _noise_width(self):
        """Uniform numbers one training step's dropout needs per row (0: no dropout)."""
        embed = self.dropout_p_embed and self.embedding != "none"
        return (self.cells[0].input_dim if embed else 0) + (
            self.state_size if self.dropout_p_hidden else 0
        )

    @staticmethod
    def _drop(x, rate, noise):
        return x if not rate else tf.where(noise >= rate, x / (1.0 - rate), 0.0)

    def _advance(self, x, state, noise=None):
        """Runs the GRU stack one step. x: layer-0 input; state [b, H] -> (state', h_last).

        `noise` (training only): uniform numbers [b, _noise_width] for the dropout masks,
        drawn for a whole block at once (one random op per block instead of per layer/step).
        """
        if noise is not None and self.dropout_p_embed and self.embedding != "none":
            width = x.shape[-1]
            x, noise = self._drop(x, self.dropout_p_embed, noise[:, :width]), noise[:, width:]
        hidden_noise = (
            tf.split(noise, self.layer_sizes, axis=1)
            if noise is not None and self.dropout_p_hidden
            else [None] * len(self.cells)
        )
        # A state fed through a SavedModel signature may come without a static shape.
        state = tf.ensure_shape(state, [None, self.state_size])
        states = tf.split(state, self.layer_sizes, axis=1)
        new_states = []
        for cell, h, u in zip(self.cells, states, hidden_noise):
            x = cell(x, h)
            if u is not None:
                x = self._drop(x, self.dropout_p_hidden, u)
            new_states.append(x)
        return tf.concat(new_states, axis=1), x

    def step(self, items, state):
        """Inference step: item indices [b], state [b, H] -> (new state [b, H], h_last [b, d])."""
        return self._advance(self._embed(items), state)

    def score_all(self, h):
        """Scores of all N items for last-layer outputs h [b, d] -> [b, N]."""
        return tf.matmul(h, self.wy, transpose_b=True) + self.by

    def score_items(self, h, items):
        """Scores of given item indices [b, C] for last-layer outputs h [b, d] -> [b, C].

        Reads only the C rows of the output table (re-ranking, not a catalogue pass);
        the same formula as `score_all`.
        """
        return tf.einsum("bd,bcd->bc", h, tf.gather(self.wy, items)) + tf.gather(self.by, items)

    def output_of(self, state):
        """The last layer's output h [b, d] carried in an inference state [b, H].

        Without dropout (inference) a layer's output is its new hidden state, the last d
        columns of the stacked state, so a state alone determines the scores.
        """
        return state[:, -self.layer_sizes[-1] :]

    def initial_state(self, batch):
        return tf.zeros([batch, self.state_size])

    def call(self, inputs, training=False):
        """Stateless inference: {'items': [b] indices, 'state': [b, H]} -> {'scores', 'state'}.

        `state` may be omitted (a new session). Returns all-item scores [b, N] and the new
        state; the caller keeps the state between clicks.
        """
        items = tf.convert_to_tensor(inputs["items"])
        state = inputs.get("state")
        if state is None:
            state = self.initial_state(tf.shape(items)[0])
        state, h = self.step(items, state)
        return {"scores": self.score_all(h), "state": state}

    # ----- training ----------------------------------------------------------------------
    def compile(self, optimizer="adagradm", loss="cross-entropy", jit_compile=None, **kwargs):
        """Like `keras.Model.compile`; `loss` is a `GRU4RecLoss` or its reference name.

        The optimizer is built here so that the compiled training loop creates no
        variables. `jit_compile` defaults to XLA on one device; under a tf.distribute
        strategy it is off (a replica's gradient sync cannot run inside XLA on CPUs).
        """
        if tf.distribute.has_strategy():
            jit_compile = False
        elif jit_compile is None:
            jit_compile = True
        from tf_gru4rec.optimizers import AdagradM

        if isinstance(loss, str):
            loss = losses_module.get(loss)
        if not isinstance(loss, losses_module.GRU4RecLoss):
            raise ValueError(
                f"GRU4Rec trains with a GRU4RecLoss (tf_gru4rec.losses). Received: loss={loss!r}"
            )
        if optimizer == "adagradm":
            optimizer = AdagradM()
        super().compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def fit(self, *args, shuffle=False, **kwargs):
        """`keras.Model.fit` that never shuffles: session-parallel blocks must stay in order
        (Keras ignores `shuffle` for datasets anyway, but warns when it is left True).

        Blocks that do not fit the model (`check_blocks`) are refused before the first step
        when the dataset's element spec tells (else by `train_step`, when it is traced).
        A distributed dataset's length is unknown until its first epoch ends, which Keras
        reports as input that "ran out of data": expected here, so not shown.
        """
        spec = getattr(args[0] if args else kwargs.get("x"), "element_spec", None)
        if isinstance(spec, dict) and all(isinstance(v, tf.TensorSpec) for v in spec.values()):
            check_blocks({k: v.shape for k, v in spec.items()}, self.embedding, self.batch_size)
        with warnings.catch_warnings():
            if tf.distribute.has_strategy() or self._distribute_strategy is not None:
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            return super().fit(*args, shuffle=shuffle, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Nothing to build: weights exist from `__init__`, the optimizer from `compile`.

        (Under a strategy Keras' own version would pull the first distributed block off
        the epoch, drawing negatives, and average it across replicas, masks included.)
        """

    def compile_from_config(self, config):
        """Restores the compiled loss and optimizer when a saved model is loaded."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def metrics(self):
        return [self.loss_tracker, self.events_tracker]

    def _sampled_scores(self, batch, state, noise=None):
        """Scores of the step's targets and extra negatives: [B, B + S], positives on the diagonal.

        The touched rows of the output table are gathered once (`rows`, deduplicated in the
        input pipeline), so its gradient reaches the optimizer as one slice per row. Padding
        (row -1 in `rows`, inactive rows' inputs) reads row 0 here; `_padding_marked` then
        keeps its zero-gradient slices away from that row.
        """
        wy_rows = _rows(self.wy, tf.maximum(batch["rows"], 0))  # [U, d]
        by_rows = _rows(self.by, tf.maximum(batch["rows"], 0))  # [U]
        if self.embedding == "shared":
            x = tf.gather(wy_rows, batch["input_pos"])
        else:
            x = self._embed(batch["inputs"])  # inactive rows' inputs are 0
        new_state, h = self._advance(x, state, noise)
        # Score the distinct rows, then pick the columns: gathering [B, U] scores is cheaper
        # than gathering [B + S, d] row vectors (and its gradient a smaller scatter).
        row_scores = tf.matmul(h, wy_rows, transpose_b=True) + by_rows  # [B, U]
        return tf.gather(row_scores, batch["column_pos"], axis=1), new_state  # [B, B + S]

    def _padding_marked(self, gradients, variables, batch):
        """The item tables' gradients with their padding slices at row -1, which AdagradM
        skips: the `rows` padding of a step that touches no item, and (separate or one-hot
        input) the inputs of inactive rows. Left on row 0, their zero slices would count as
        a touch of row 0, which momentum then moves (spec section 5: untouched rows keep
        value, accumulator and velocity); a data-parallel replica whose shard has ended
        runs whole steps of them.

        A gathered table's gradient lists the gathered indices in order (one gather per
        table and step), so the marked indices replace them one for one.
        """
        marks = {id(self.wy): batch["rows"], id(self.by): batch["rows"]}
        if self.embedding != "shared":
            table = self.cells[0].wx if self.embedding == "none" else self.item_embedding
            marks[id(table)] = tf.where(batch["valid"], batch["inputs"], -1)
        return [
            tf.IndexedSlices(g.values, marks[id(v)], g.dense_shape)
            if isinstance(g, tf.IndexedSlices) and id(v) in marks else g
            for g, v in zip(gradients, variables)
        ]

    def _dropout_noise(self, block_steps, batch_size, position=None):
        """Uniform numbers for a block's dropout masks, [K, B, _noise_width], or None.

        One random op per block instead of one per layer and step. Per row the columns are
        the embedding's, then each GRU layer's in order (the layout `_advance` splits).
        Under a strategy the seed comes from the block's `position` (epoch, step), the same
        on every replica and worker, folded with the replica id so that their masks differ.
        """
        if not self._noise_width:
            return None
        if tf.distribute.has_strategy():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = tf.stack([tf.constant(self.seed or 0, tf.int32), replica])
            seed = tf.random.experimental.stateless_fold_in(seed, position[0])
            seed = tf.random.experimental.stateless_fold_in(seed, position[1])
        else:
            seed = tf.cast(tf.math.floormod(self.seed_generator.next(), 2**31 - 1), tf.int32)
        # Philox named explicitly: the default "auto_select" algorithm is ~70x slower
        # under XLA on CPU (it cost more than the rest of the step).
        return tf.random.stateless_uniform(
            [block_steps, batch_size, self._noise_width], seed=seed, alg="philox"
        )

    def train_step(self, data):
        """Runs one block of K steps (K = 1 under a tf.distribute strategy: see `distribute`)."""
        if tf.distribute.has_strategy():
            # A distributed dataset leaves the step dimension unknown; its blocks have one step.
            data = {k: v if k in ("n_steps", "position") else tf.ensure_shape(v, [1, *v.shape[1:]])
                    for k, v in data.items()}
        check_blocks({k: v.shape for k, v in data.items()}, self.embedding, self.batch_size)
        n_steps = data["n_steps"]
        n_sample = data["negatives"].shape[-1]
        per_step = {k: v for k, v in data.items() if k not in ("n_steps", "position")}
        variables = self.trainable_variables
        noise = self._dropout_noise(*data["inputs"].shape, data.get("position"))
        # Under a strategy Keras scales the loss by 1 / replicas, so the summed gradients are
        # those of (all replicas' active rows) / (replicas * B); the logged loss is unscaled.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync

        def update(batch, state, t):
            """One step's update; returns (its loss, the new state)."""
            y_true = {
                "row_mask": batch["valid"],
                "column_mask": tf.concat([batch["valid"], tf.ones([n_sample], tf.bool)], 0),
                "log_q": batch["column_log_q"],
            }
            with tf.GradientTape() as tape:
                scores, new_state = self._sampled_scores(
                    batch, state, None if noise is None else noise[t]
                )
                loss = self.loss(y_true, scores)
            gradients = self._padding_marked(tape.gradient(loss, variables), variables, batch)
            self.optimizer.apply(gradients, variables)
            return loss, tf.stop_gradient(new_state)

        def body(t, state, loss_sum):
            batch = {k: v[t] for k, v in per_step.items()}
            state = tf.where(batch["reset"][:, None], 0.0, state)
            if tf.distribute.has_strategy():  # every replica joins each step's all-reduce
                loss, state = update(batch, state, t)
            else:  # a step without active rows (an epoch padded by raising n_steps) is none
                loss, state = tf.cond(tf.reduce_any(batch["valid"]),
                                      lambda: update(batch, state, t), lambda: (0.0, state))
            return t + 1, state, loss_sum + loss * replicas

        if data["inputs"].shape[0] == 1:
            # No loop: a strategy's gradient all-reduce may not sit inside a while_loop.
            _, state, loss_sum = body(0, self.train_state.value, 0.0)
        else:
            _, state, loss_sum = tf.while_loop(
                lambda t, *_: t < n_steps, body, (tf.constant(0), self.train_state.value, 0.0)
            )
        self.train_state.assign(state)
        steps = tf.cast(n_steps, tf.float32)
        self.loss_tracker.update_state(loss_sum / tf.maximum(steps, 1.0), sample_weight=steps)
        self.events_tracker.update_state(tf.reduce_sum(tf.cast(data["valid"], tf.float32)))
        # Keras averages the replicas' logs: events times R averages to all replicas' events.
        logs = {"loss": self.loss_tracker.result(), "events": self.events_tracker.result() * replicas}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 averages multi-worker logs along axis 0, which scalars do not have.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    # ----- recommendations -----------------------------------------------------------------
    def set_blocklist(self, ids):
        """Items `recommend` never returns (and the export's initial blocklist); replaces the last.

        Not saved with the model: a serving setting, set again after loading.

        Returns:
            dict with `blocked` (items now blocked) and `unknown` (ids skipped as unknown).
        """
        self.blocked, unknown = recommending.blocked_mask(self.item_map, ids)
        return {"blocked": int(self.blocked.sum()), "unknown": unknown}

    @property
    def blocklist(self):
        """Original ids of the blocked items, in index order."""
        return self.item_map.ids[self.blocked]

    def recommend(self, sessions, k=20, exclude_seen=False, blocklist=None, candidates=None):
        """Top-k next items for click sequences given in original item ids.

        Items blocked by `set_blocklist` are never returned. When fewer than k items are
        allowed, the remaining slots hold `recommending.pad_id` (-1, or "" for string ids)
        with score -inf.

        Args:
            sessions: list of click sequences (each a list of original item ids).
            k: number of recommendations, a positive int (more than N items give N).
            exclude_seen: drop items the session already clicked.
            blocklist: ids blocked for this call only, on top of the model's blocklist.
            candidates: restrict the ranking to these ids (re-ranking), with the scores of
                full-catalogue scoring: one list of ids for all sessions, or one list per
                session (None: that session is not restricted).

        Returns:
            (item_ids [n, k] original ids, scores [n, k] float32, report) where report is a
            dict with `unknown` (per session, the click ids skipped as unknown to the model),
            `empty` (indices of sessions with no known item; they get the recommendations
            of an empty session), `unknown_blocklist` (ids of `blocklist` skipped),
            `unknown_candidates` (per session, the candidate ids skipped) and `padded` (per
            session, the number of padded slots).
        """
        return recommending.recommend(self, sessions, k, exclude_seen, blocklist, candidates)

    # ----- persistence ---------------------------------------------------------------------
    def get_config(self):
        return {
            "n_items": self.n_items,
            "layers": list(self.layer_sizes),
            "embedding": self.embedding,
            "batch_size": self.batch_size,
            "dropout_p_embed": self.dropout_p_embed,
            "dropout_p_hidden": self.dropout_p_hidden,
            "seed": self.seed,
            "name": self.name,
        }

    def save_assets(self, dir_path):
        """The item map travels with the model (`model.save('x.keras')`)."""
        self.item_map.save(os.path.join(dir_path, "item_ids.npy"))

    def load_assets(self, dir_path):
        self.item_map = ItemMap.load(os.path.join(dir_path, "item_ids.npy"))
