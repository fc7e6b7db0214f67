"""The objective of one session-parallel training step: each active slot's next item.

Notation: B = batch size (slots), S = extra negatives per step.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable("tf_gru4rec")
class NextItemTask(keras.layers.Layer):
    """Predict every active slot's next item among the step's targets and extra negatives.

    Turns one step of a training block into the `y_true` of a `GRU4RecLoss` (which rows are
    active, which columns are usable, their log sampling probabilities), applies the loss to
    the step's sampled scores [B, B + S], and keeps what `fit` logs: the mean step loss and
    the number of events trained.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "next_item")
        super().__init__(**kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.events_tracker = keras.metrics.Sum(name="events")
        self.built = True

    @staticmethod
    def y_true(step):
        """The loss's description of a step's columns and rows (see `tf_gru4rec.losses.base`).

        The targets of inactive rows are no one's negatives; extra negatives always count.
        """
        n_sample = step["negatives"].shape[-1]
        return {
            "row_mask": step["valid"],
            "column_mask": tf.concat([step["valid"], tf.ones([n_sample], tf.bool)], 0),
            "log_q": step["column_log_q"],
        }

    def step_loss(self, loss, step, scores):
        """The compiled `loss` of one step's scores [B, B + S] (positives on the diagonal)."""
        return loss(self.y_true(step), scores)

    def update(self, loss_sum, n_steps, valid):
        """Accounts for a block: the sum of its `n_steps` step losses and its `valid` [K, B]."""
        steps = tf.cast(n_steps, tf.float32)
        self.loss_tracker.update_state(loss_sum / tf.maximum(steps, 1.0), sample_weight=steps)
        self.events_tracker.update_state(tf.reduce_sum(tf.cast(valid, tf.float32)))

    def logs(self, replicas=1):
        """What `fit` shows. Keras averages the replicas' logs, so events times R averages to
        all replicas' events."""
        return {"loss": self.loss_tracker.result(), "events": self.events_tracker.result() * replicas}

    @property
    def metrics(self):
        return [self.loss_tracker, self.events_tracker]
