"""AdagradM: Adagrad with optional momentum and row-sparse updates, as GRU4Rec trains."""

from __future__ import annotations

import keras
import tensorflow as tf


def _native(variable):
    """The backend variable behind a Keras variable (gathers then read only the rows)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def sum_repeated_rows(rows, values):
    """Per slice, the summed gradient of its row: (rows, g) -> (sorted rows, G) with
    G[i] = sum of the slices of row rows[i]. Shapes stay static ([n] and [n, ...]).

    Already-sorted rows (GRU4Rec's input pipeline emits them) skip the sort, which is
    slow inside XLA; the cond runs only one branch.
    """
    n = tf.shape(rows)[0]
    rows, values = tf.cond(
        tf.reduce_all(rows[1:] >= rows[:-1]),
        lambda: (rows, values),
        lambda: _sorted_by(rows, values),
    )
    first = tf.concat([[True], rows[1:] != rows[:-1]], axis=0)
    segment = tf.cumsum(tf.cast(first, tf.int32)) - 1
    return rows, tf.gather(tf.math.unsorted_segment_sum(values, segment, n), segment)


def _sorted_by(rows, values):
    order = tf.argsort(rows, stable=True)
    return tf.gather(rows, order), tf.gather(values, order)


def _padding_as_last_slice(rows, values):
    """Each padding slice (row -1) becomes a copy of the last slice, on sorted output of
    `sum_repeated_rows` with at least one real row: padding sorts first, the last slice is
    real and holds its row's summed gradient, so a copy writes the very values it writes
    (shapes stay static, and no index is out of range)."""
    padding = rows < 0
    copy = tf.reshape(padding, [-1] + [1] * (len(values.shape) - 1))
    return tf.where(padding, rows[-1], rows), tf.where(copy, values[-1], values)


@keras.saving.register_keras_serializable("tf_gru4rec")
class AdagradM(keras.optimizers.Optimizer):
    """Adagrad with momentum, updating only the touched rows of sparse gradients.

    Dense gradient g:
        acc += g^2;  v = momentum * v - lr * g / sqrt(acc + epsilon);  p += v
        (momentum 0: p -= lr * g / sqrt(acc + epsilon); no velocity slot is created).

    Row-sparse gradient (`tf.IndexedSlices`, e.g. from `tf.gather` of an item table):
    the same rule on the listed rows only; accumulator, velocity and parameter of every
    other row stay bit-identical (dense momentum on an item table would keep moving
    every row). A row listed several times is updated once with the sum of its slices
    (acc += (sum g)^2), the semantics of the official PyTorch GRU4Rec. Every slice of a
    row computes the same new values, so the row scatters need no deduplication.

    Args:
        learning_rate: float or schedule.
        momentum: float in [0, 1).
        epsilon: added to the accumulator under the square root (1e-6 in GRU4Rec).
    """

    def __init__(self, learning_rate=0.05, momentum=0.0, epsilon=1e-6, name="adagradm", **kwargs):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` should be in [0, 1). Received: `momentum` = {momentum}.")
        if epsilon <= 0:
            raise ValueError(f"`epsilon` should be positive. Received: `epsilon` = {epsilon}.")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._accumulators = self.add_optimizer_variables(variables, "accumulator")
        self._velocities = (
            self.add_optimizer_variables(variables, "velocity") if self.momentum else None
        )

    def slots(self, variable) -> dict:
        """The optimizer's state of one model variable (the optimizer must be built):
        {"accumulator": v} plus {"velocity": v} with momentum; same shape as `variable`."""
        i = self._get_variable_index(variable)
        out = {"accumulator": self._accumulators[i]}
        if self._velocities is not None:
            out["velocity"] = self._velocities[i]
        return out

    def update_step(self, gradient, variable, learning_rate):
        i = self._get_variable_index(variable)
        acc = self._accumulators[i]
        vel = self._velocities[i] if self._velocities is not None else None
        lr = tf.cast(learning_rate, variable.dtype)
        if isinstance(gradient, tf.IndexedSlices):
            self._sparse_update(variable, acc, vel, gradient.indices, gradient.values, lr)
        else:
            self._dense_update(variable, acc, vel, gradient, lr)

    def _dense_update(self, variable, acc, vel, g, lr):
        acc.assign_add(tf.square(g))
        step = lr * g * tf.math.rsqrt(acc + self.epsilon)
        if vel is None:
            variable.assign_sub(step)
        else:
            vel.assign(self.momentum * vel - step)
            variable.assign_add(vel)

    def _sparse_update(self, variable, acc, vel, rows, g, lr):
        rows, g = sum_repeated_rows(rows, g)

        def update():
            self._update_rows(variable, acc, vel, *_padding_as_last_slice(rows, g), lr)
            return tf.constant(True)

        # Only padding: no row to update.
        tf.cond(tf.reduce_any(rows >= 0), update, lambda: tf.constant(False))

    def _update_rows(self, variable, acc, vel, rows, g, lr):
        """The update of the listed rows, each listed slice holding its row's summed g."""
        acc, var = _native(acc), _native(variable)
        new_acc = tf.gather(acc, rows) + tf.square(g)
        step = lr * g * tf.math.rsqrt(new_acc + self.epsilon)
        acc.scatter_update(tf.IndexedSlices(new_acc, rows))
        if vel is None:
            var.scatter_update(tf.IndexedSlices(tf.gather(var, rows) - step, rows))
            return
        vel = _native(vel)
        new_vel = self.momentum * tf.gather(vel, rows) - step
        vel.scatter_update(tf.IndexedSlices(new_vel, rows))
        var.scatter_update(tf.IndexedSlices(tf.gather(var, rows) + new_vel, rows))

    def _all_reduce_sum_gradients(self, grads_and_vars):
        """The replicas' gradients summed, under a strategy (Keras calls this in each
        replica's step): the dense ones in one batched all-reduce and the row-sparse ones in
        one all-gather per row count (`gather_row_slices`), not TensorFlow's three gathers
        per table. With one replica there is nothing to exchange."""
        context = tf.distribute.get_replica_context()
        pairs = list(grads_and_vars)
        if context is None or context.num_replicas_in_sync == 1:
            return pairs
        grads = [g for g, _ in pairs]
        dense = [i for i, g in enumerate(grads) if g is not None and not isinstance(g, tf.IndexedSlices)]
        for i, reduced in zip(dense, context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in dense])):
            grads[i] = reduced
        groups = {}
        for i, g in enumerate(grads):
            if isinstance(g, tf.IndexedSlices):
                groups.setdefault((g.values.shape[0], g.values.dtype), []).append(i)
        for (rows, _), members in groups.items():
            if rows is None:  # no static row count to pack by: TensorFlow's own gather
                gathered = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in members])
            else:
                gathered = gather_row_slices(context, [grads[i] for i in members])
            for i, g in zip(members, gathered):
                grads[i] = g
        return [(g, v) for g, (_, v) in zip(grads, pairs)]

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


def gather_row_slices(context, slices):
    """All replicas' row-sparse gradients of the same row count n, in one all-gather.

    Each gradient's values [n, ...] and its indices, bit-cast to float32 (a collective only
    copies them, so they come back exact), sit side by side in one [n, width] tensor; the
    gathered [R * n, width] splits back into IndexedSlices holding replica 0's rows, then
    replica 1's... as TensorFlow's gather of IndexedSlices orders them (so is the sum).
    """
    n = slices[0].values.shape[0]
    columns, widths = [], []
    for g in slices:
        values = tf.reshape(g.values, [n, -1])
        columns += [values, tf.bitcast(tf.cast(g.indices, tf.int32), g.values.dtype)[:, None]]
        widths += [values.shape[1], 1]
    parts = tf.split(context.all_gather(tf.concat(columns, axis=1), axis=0), widths, axis=1)
    return [
        tf.IndexedSlices(tf.reshape(values, [-1, *g.values.shape[1:]]),
                         tf.cast(tf.bitcast(indices[:, 0], tf.int32), g.indices.dtype), g.dense_shape)
        for g, values, indices in zip(slices, parts[0::2], parts[1::2])
    ]


def mark_padding(gradients, variables, indices_of):
    """The row-sparse gradients of the tables in `indices_of` (variable id -> indices [n],
    -1 for padding) with those indices, so that AdagradM skips their padding slices.

    A gathered table's gradient lists the gathered indices in order (one gather per table
    and step), so the marked indices replace them one for one. Left on a real row, the zero
    slices of padding would count as a touch of it, which momentum then moves (spec section
    5: untouched rows keep value, accumulator and velocity).
    """
    return [
        tf.IndexedSlices(g.values, indices_of[id(v)], g.dense_shape)
        if isinstance(g, tf.IndexedSlices) and id(v) in indices_of else g
        for g, v in zip(gradients, variables)
    ]
