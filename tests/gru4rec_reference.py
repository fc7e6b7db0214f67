"""An independent, plain re-statement of GRU4Rec training, for the tests to compare against.

Written from `gru4rec-algorithm.md` (sections 2-5), not from the model code: float64 eager
TF, the full [B, N] score matrix from which the target and sample columns are picked,
explicit masks, the losses' textbook formulas, dense gradients, and AdagradM applied to the
touched rows of the item tables only. Nothing here is fast or clever on purpose.

Parameters are a dict of float64 arrays named like the model's weights: "wy", "by",
"e" (separate embedding), "gru_{i}/wx", "gru_{i}/wh", "gru_{i}/b"; with item features
"output_features/v", "output_features/b" (and "input_features/v" for a separate embedding),
and config["features"], the dense item x value weights A [N, M] (row i: 1 / |values of i|
on i's values): an item's vectors are then wy + A v and e + A v_in, its bias by + A b.
Id dropout: config["id_dropped"][t], the items whose id part (wy, by) step t drops: they
are scored by A v and A b alone in that step (as inputs they keep their id part), and their
wy, by rows are untouched unless they are inputs.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf


def session_data(lengths, n_items=6, seed=7):
    """Sessions of the given lengths over a few items (so the same item is often input,
    target and sample within a step), in time order."""
    import pandas as pd

    from tf_gru4rec.data.sessions import SessionData

    rng = np.random.default_rng(seed)
    rows, t = [], 0
    for s, n in enumerate(lengths):
        for _ in range(n):
            rows.append((s, int(rng.integers(n_items)), t))
            t += 1
    return SessionData.from_frame(pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"]))


def reference_name(path: str) -> str:
    """A weight's name as above ("wy", "e", "gru_0/wx") from its Keras path (the item tables
    are layers of their own: "item_table/wy", "item_embedding/e")."""
    return re.sub(r"^(gru4rec/)?(item_table/|item_embedding/)?", "", path)


def weights_of(model) -> dict:
    """The model's weights as float64 arrays, keyed as above."""
    return {reference_name(w.path): np.asarray(w.numpy(), np.float64) for w in model.trainable_weights}


def _dropout(x, rate, noise):
    """Inverted dropout: keep where noise >= rate, scaled by 1 / (1 - rate)."""
    return x * tf.cast(noise >= rate, x.dtype) / (1.0 - rate) if rate else x


def forward(p, config, inputs, state, noise=None):
    """One step of the network: item indices [b], state [b, H] -> (new state, h_last [b, d]).

    `noise` [b, W] (training): uniform numbers laid out as [embedding | layer 0 | layer 1 ...].
    """
    layers, mode = config["layers"], config["embedding"]
    n_items = p["wy"].shape[0]
    if mode == "shared":
        x = tf.gather(item_vectors(p, {**config, "id_keep": None}), inputs)  # inputs keep their id part
    elif mode == "none":
        x = tf.one_hot(inputs, n_items, dtype=tf.float64)  # times gru_0/wx below: a row lookup
    else:
        e = p["e"] if config.get("features") is None else p["e"] + config["features"] @ p["input_features/v"]
        x = tf.gather(e, inputs)
    col = 0
    if noise is not None and mode != "none" and config["dropout_p_embed"]:
        width = x.shape[1]
        x, col = _dropout(x, config["dropout_p_embed"], noise[:, :width]), width
    new_state, start = [], 0
    for i, d in enumerate(layers):
        h = state[:, start : start + d]
        start += d
        wx, wh, b = p[f"gru_{i}/wx"], p[f"gru_{i}/wh"], p[f"gru_{i}/b"]
        gate = lambda k: x @ wx[:, k * d : (k + 1) * d] + b[k * d : (k + 1) * d]  # noqa: E731
        r = tf.sigmoid(gate(0) + h @ wh[:, :d])
        z = tf.sigmoid(gate(1) + h @ wh[:, d : 2 * d])
        c = tf.tanh(gate(2) + (r * h) @ wh[:, 2 * d :])
        x = (1.0 - z) * h + z * c
        if noise is not None and config["dropout_p_hidden"]:
            x = _dropout(x, config["dropout_p_hidden"], noise[:, col : col + d])
            col += d
        new_state.append(x)  # the dropped-out output is the carried state
    return tf.concat(new_state, axis=1), x


def _id_keep(p, config):
    """[N] 0 for the items whose id part this step drops (config["id_keep"]), else 1."""
    keep = config.get("id_keep")
    return tf.ones_like(p["by"]) if keep is None else tf.constant(keep, tf.float64)


def item_vectors(p, config):
    """The output (and shared input) vectors of all items [N, d]."""
    A = config.get("features")
    wy = p["wy"] * _id_keep(p, config)[:, None]
    return wy if A is None else wy + A @ p["output_features/v"]


def full_scores(p, h, config=None):
    """Scores of all N items: [b, N]."""
    config = config or {}
    A = config.get("features")
    by = p["by"] * _id_keep(p, config)
    bias = by if A is None else by + tf.linalg.matvec(tf.constant(A), p["output_features/b"])
    return h @ tf.transpose(item_vectors(p, config)) + bias


def _softmax_over(x, mask):
    e = tf.where(mask, tf.exp(x - tf.reduce_max(tf.where(mask, x, -1e300), 1, keepdims=True)), 0.0)
    return e / tf.reduce_sum(e, 1, keepdims=True)


def row_losses(scores, valid, log_q, config):
    """Loss of each row of the sampled score matrix [B, B + S] (positives on the diagonal)."""
    B, C = scores.shape
    usable = tf.concat([valid, tf.ones([C - B], tf.bool)], 0)[None, :] & tf.ones([B, 1], tf.bool)
    negative = usable & ~tf.eye(B, C, dtype=tf.bool)
    n_usable = tf.reduce_sum(tf.cast(usable, tf.float64), 1)
    name = config["loss"]
    if name == "cross-entropy":
        r = scores - config.get("logq", 0.0) * log_q[None, :]
        lse = tf.math.log(tf.reduce_sum(tf.where(usable, tf.exp(r), 0.0), 1))
        return lse - tf.linalg.diag_part(r)
    if name == "bpr-max" and config.get("elu_param", 0.0):
        a = config["elu_param"]
        scores = tf.where(scores > 0, scores, a * (tf.exp(scores) - 1.0))
    pos = tf.linalg.diag_part(scores)[:, None]
    s = _softmax_over(scores, negative)  # softmax over the negatives only
    if name == "bpr-max":
        return (-tf.math.log(tf.reduce_sum(s * tf.sigmoid(pos - scores), 1) + 1e-24)
                + config.get("bpreg", 0.0) * tf.reduce_sum(s * scores**2, 1))
    if name == "top1-max":
        return tf.reduce_sum(s * (tf.sigmoid(scores - pos) + tf.sigmoid(scores**2)), 1)
    if name == "bpr":
        return tf.reduce_sum(tf.where(usable, -tf.math.log(tf.sigmoid(pos - scores)), 0.0), 1) / n_usable
    if name == "top1":
        terms = tf.where(usable, tf.sigmoid(scores - pos) + tf.sigmoid(scores**2), 0.0)
        return (tf.reduce_sum(terms, 1) - tf.sigmoid(pos[:, 0] ** 2)) / n_usable
    raise ValueError(name)


class ReferenceTrainer:
    """GRU4Rec training steps on a copy of the weights, with AdagradM slots of its own.

    Args:
        weights: initial parameters (see the module docstring).
        config: layers, embedding ('shared' | 'none' | int), dropout_p_embed,
            dropout_p_hidden, loss and its parameters (logq, bpreg, elu_param),
            learning_rate, momentum, sample_alpha.
        support: training clicks per item index (for the logQ correction).
        replicas: data-parallel replicas (`replica_step`), each with its own carried state.
    """

    EPSILON = 1e-6

    def __init__(self, weights, config, support, replicas=1):
        self.config = config
        self.p = {k: tf.Variable(v, dtype=tf.float64) for k, v in weights.items()}
        self.acc = {k: np.zeros_like(v) for k, v in weights.items()}
        self.vel = {k: np.zeros_like(v) for k, v in weights.items()}
        with np.errstate(divide="ignore"):  # a cold-start item has no clicks (never drawn)
            self.log_support = np.log(np.asarray(support, np.float64))
        self.states = [np.zeros((config["batch_size"], sum(config["layers"])))] * replicas
        self.step_losses = []
        self.t = 0  # steps run: id dropout's index

    @property
    def state(self):
        return self.states[0]

    def _row_tables(self, inputs, targets, valid, negatives):
        """Item tables updated row-sparsely, each with the rows the step touches."""
        outputs = set(targets[valid]) | set(negatives)
        mode = self.config["embedding"]
        tables = {"wy": outputs, "by": outputs}
        if mode == "shared":
            tables = {k: rows | set(inputs[valid]) for k, rows in tables.items()}
        elif mode == "none":
            tables["gru_0/wx"] = set(inputs[valid])
        else:
            tables["e"] = set(inputs[valid])
        A = self.config.get("features")
        if A is not None:  # a feature table's touched rows: the values of the touched items
            values_of = lambda items: {int(v) for i in items for v in np.flatnonzero(A[i])}  # noqa: E731
            tables["output_features/v"] = tables["output_features/b"] = values_of(tables["wy"])
            if mode not in ("shared", "none"):  # one-hot input takes no features
                tables["input_features/v"] = values_of(set(inputs[valid]))
        dropped = self._dropped() - (set(inputs[valid]) if mode == "shared" else set())
        tables["wy"], tables["by"] = tables["wy"] - dropped, tables["by"] - dropped
        return tables

    def _dropped(self) -> set:
        return set(self.config.get("id_dropped", {}).get(self.t, ()))

    def _replica_loss(self, r, inputs, targets, reset, valid, negatives, noise):
        """One replica's mean loss over its B slots; advances its carried state."""
        cfg = dict(self.config)
        if self._dropped():
            cfg["id_keep"] = np.ones(self.p["by"].shape[0])
            cfg["id_keep"][sorted(self._dropped())] = 0.0
        state = np.where(reset[:, None], 0.0, self.states[r])
        columns = np.r_[targets, negatives]
        log_q = np.r_[self.log_support[targets], cfg["sample_alpha"] * self.log_support[negatives]]
        new_state, h = forward(self.p, cfg, tf.constant(inputs), tf.constant(state),
                               None if noise is None else tf.constant(noise, tf.float64))
        scores = tf.gather(full_scores(self.p, h, cfg), columns, axis=1)  # [B, B + S]
        per_row = row_losses(scores, tf.constant(valid), tf.constant(log_q), cfg)
        self.states[r] = new_state.numpy()
        return tf.reduce_sum(tf.where(valid, per_row, 0.0)) / cfg["batch_size"]  # sum / B

    def step(self, inputs, targets, reset, valid, negatives, noise=None):
        """One single-device step; returns its loss."""
        return self.replica_step([dict(inputs=inputs, targets=targets, reset=reset, valid=valid,
                                       negatives=negatives, noise=noise)])

    def replica_step(self, batches):
        """One synchronous data-parallel step: replica r trains on batches[r] (its own
        slots, state and in-batch negatives); the update follows the mean of the replicas'
        losses, on the union of the rows they touch. Returns that mean loss."""
        cfg = self.config
        with tf.GradientTape() as tape:
            losses = [self._replica_loss(r, **b) for r, b in enumerate(batches)]
            loss = tf.add_n(losses) / len(batches)
        grads = tape.gradient(loss, self.p)
        sparse = {}
        for b in batches:
            for name, rows in self._row_tables(b["inputs"], b["targets"], b["valid"],
                                               b["negatives"]).items():
                sparse[name] = sparse.get(name, set()) | rows
        sparse = {k: np.array(sorted(int(r) for r in rows), np.int64) for k, rows in sparse.items()}
        lr, mu = cfg["learning_rate"], cfg["momentum"]
        for name, var in self.p.items():
            g = tf.convert_to_tensor(grads[name]).numpy()  # dense: repeated rows already summed
            p, acc, vel = var.numpy(), self.acc[name], self.vel[name]
            rows = sparse.get(name, slice(None))
            acc[rows] += g[rows] ** 2
            step = lr * g[rows] / np.sqrt(acc[rows] + self.EPSILON)
            if mu:
                vel[rows] = mu * vel[rows] - step
                p[rows] += vel[rows]
            else:
                p[rows] -= step
            var.assign(p)
        self.step_losses.append(float(loss))
        self.t += 1
        return float(loss)

    def run_block(self, block, noise=None):
        """The steps of one batcher block (a dict of NumPy arrays)."""
        for t in range(int(block["n_steps"])):
            self.step(block["inputs"][t], block["targets"][t], block["reset"][t], block["valid"][t],
                      block["negatives"][t], None if noise is None else noise[t])

    def weights(self) -> dict:
        return {k: v.numpy() for k, v in self.p.items()}
