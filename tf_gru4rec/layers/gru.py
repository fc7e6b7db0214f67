"""GRU4Rec's recurrent layers: one GRU cell as the reference defines it, and the stack of them.

Notation: b = rows, d = units of a layer, H = sum of all layers' units (the carried state).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_gru4rec.layers.base import Layer, dropout, rows, uniform


@keras.saving.register_keras_serializable("tf_gru4rec")
class GRUCell(Layer):
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
        seed: seed of Wx's initialisation (Wh's is seed + 1).
    """

    def __init__(self, units, input_dim, input_rows=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.input_dim, self.input_rows = int(units), int(input_dim), input_rows
        d = self.units
        fan_in = input_rows if input_rows else input_dim
        # Each gate's sub-matrix has fan_in x d, so one limit covers all three.
        self.seed = seed
        self.wx = self.add_weight(
            shape=(fan_in, 3 * d), initializer=uniform(fan_in, d, seed), name="wx"
        )
        self.wh = self.add_weight(
            shape=(d, 3 * d), initializer=uniform(d, d, None if seed is None else seed + 1),
            name="wh",
        )
        self.b = self.add_weight(shape=(3 * d,), initializer="zeros", name="b")
        self.built = True

    def call(self, x, h):
        d = self.units
        if self.input_rows:
            xp = rows(self.wx, x) + self.b  # [b, 3d]
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


@keras.saving.register_keras_serializable("tf_gru4rec")
class GRUStack(Layer):
    """Stacked `GRUCell`s advanced one step at a time; their states travel as one [b, H] tensor.

    Args:
        layers: units of each layer, bottom first.
        input_dim: width of the first layer's input (ignored when `input_rows` is set).
        input_rows: number of items when the first layer takes one-hot input (indices).
        dropout: drop rate on each layer's output; the dropped output is also the state
            carried to the next step, as in the reference.
        seed: seed of the cells' initialisation (layer i gets seed + 2i).
    """

    def __init__(self, layers, input_dim, input_rows=None, dropout=0.0, seed=None, **kwargs):
        kwargs.setdefault("name", "gru")
        super().__init__(**kwargs)
        self.layer_sizes = [int(u) for u in layers]
        self.input_dim, self.input_rows, self.seed = int(input_dim), input_rows, seed
        self.dropout = float(dropout)
        self.state_size = sum(self.layer_sizes)
        self.cells = []
        width = self.input_dim
        for i, units in enumerate(self.layer_sizes):
            self.cells.append(GRUCell(units, width, input_rows=input_rows if i == 0 else None,
                                      seed=None if seed is None else seed + 2 * i, name=f"gru_{i}"))
            width = units
        self.built = True

    @property
    def noise_width(self):
        """Uniform numbers one step's dropout needs per row (0: no dropout)."""
        return self.state_size if self.dropout else 0

    def call(self, x, state, noise=None):
        """One step: layer-0 input x, state [b, H] -> (new state [b, H], last output [b, d]).

        `noise` (training only): uniform numbers [b, noise_width] for the dropout masks.
        """
        # A state fed through a SavedModel signature may come without a static shape.
        state = tf.ensure_shape(state, [None, self.state_size])
        states = tf.split(state, self.layer_sizes, axis=1)
        noises = (tf.split(noise, self.layer_sizes, axis=1) if noise is not None and self.dropout
                  else [None] * len(self.cells))
        new_states = []
        for cell, h, u in zip(self.cells, states, noises):
            x = cell(x, h)
            if u is not None:
                x = dropout(x, self.dropout, u)
            new_states.append(x)
        return tf.concat(new_states, axis=1), x

    def output_of(self, state):
        """The last layer's output [b, d] carried in an inference state [b, H]: without dropout
        a layer's output is its new hidden state, so a state alone determines the scores."""
        return state[:, -self.layer_sizes[-1] :]

    def get_config(self):
        return {**super().get_config(), "layers": self.layer_sizes, "input_dim": self.input_dim,
                "input_rows": self.input_rows, "dropout": self.dropout, "seed": self.seed}
