"""AdagradM: Adagrad with optional momentum and row-sparse updates, as GRU4Rec trains."""

from __future__ import annotations

import keras
import tensorflow as tf


def _native(variable):
    """The backend variable behind a Keras variable (gathers then read only the rows)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


@keras.saving.register_keras_serializable("tf_gru4rec")
class AdagradM(keras.optimizers.Optimizer):
    """Adagrad with momentum, updating only the touched rows of sparse gradients.

    Dense gradient g:
        acc += g^2;  v = momentum * v - lr * g / sqrt(acc + epsilon);  p += v
        (momentum 0: p -= lr * g / sqrt(acc + epsilon); no velocity slot is created).

    Row-sparse gradient (`tf.IndexedSlices`, e.g. from `tf.gather` of an item table):
    the same rule on the listed rows only: accumulator, velocity and parameter of every
    other row stay bit-identical (dense momentum on an item table would keep moving
    every row). Repeated rows are handled without a sort (which is slow inside XLA):
    the accumulator adds each slice's g^2, the velocity of the row decays once and takes
    the sum of the slices' steps, and the parameter moves once by the new velocity.
    With distinct rows this is exactly the rule above; `GRU4Rec` deduplicates the rows
    of a step in its input pipeline, so training follows the reference semantics
    (sum the slices, then update once). Slices with zero gradient repeating a row that
    is also present with its real gradient change nothing.

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
        acc, var = _native(acc), _native(variable)
        acc.scatter_add(tf.IndexedSlices(tf.square(g), rows))
        step = lr * g * tf.math.rsqrt(tf.gather(acc, rows) + self.epsilon)
        if vel is None:
            var.scatter_sub(tf.IndexedSlices(step, rows))
            return
        vel = _native(vel)
        # Repeated rows write identical values here, so the decay happens once per row.
        vel.scatter_update(tf.IndexedSlices(self.momentum * tf.gather(vel, rows), rows))
        vel.scatter_sub(tf.IndexedSlices(step, rows))
        var.scatter_update(tf.IndexedSlices(tf.gather(var, rows) + tf.gather(vel, rows), rows))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
