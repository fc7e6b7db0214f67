"""Export a trained GRU4Rec as a SavedModel for TF Serving: `<out>/<version>/`.

    python -m tf_gru4rec.export MODEL_DIR --out export/models/gru4rec [--version N] [--k 20]
        [--capacity 100000] [--request-memory 1] [--max-rows N] [--max-session-id-bytes 256]
        [--max-seen 100] [--blocklist FILE]

Signatures (B = request rows, H = state width, k = recommendations, C = candidates; "id" is
int64 when the model was trained on integer ItemIds, string otherwise):

    stateful (also serving_default)
        in:  session_id string [B], item_id id [B]
        out: item_ids id [B,k], scores float32 [B,k], unknown_item bool [B],
             new_session bool [B] (the row started its session from zero: new, ended or
             evicted; false for a session's later rows in the same request)
    end_session
        in:  session_id string [B]
        out: ended bool [B] (whether the session had state)
    step (stateless: the caller carries the state; a new session starts from zeros)
        in:  item_id id [B], state float32 [B,H]
        out: item_ids id [B,k], scores float32 [B,k], unknown_item bool [B], state float32 [B,H]
    score_items (re-ranking)
        in:  state float32 [B,H] (after the session's clicks), candidate_ids id [B,C]
        out: scores float32 [B,C] (-inf for unknown ids), known bool [B,C]
    stateful_rules (stateful with business rules, per row)
        in:  session_id string [B], item_id id [B], exclude_seen bool [B],
             candidate_ids id [B,C], restrict bool [B]
        out: as stateful, plus unknown_candidates int32 [B]
    step_rules (step with business rules, per row)
        in:  item_id id [B], state float32 [B,H], exclude_seen bool [B], seen_ids id [B,L]
             (the session's earlier clicks), candidate_ids id [B,C], restrict bool [B]
        out: as step, plus unknown_candidates int32 [B]
    set_blocklist (replaces the blocklist of this loaded model)
        in:  item_ids id [n]
        out: known bool [n] (the id is an item, now blocked)
    limits (no inputs: this export's request limits, below)
        out: max_rows, max_candidates, max_session_id_bytes, capacity, n_items (items in
             the catalogue now), spare_items (rows left for add_items): int64 scalars
    add_items (only an export with spare_items, of a model with item features)
        in:  item_ids id [n], feature_values string [n,T] ("column=value" tokens, "" pads)
        out: added bool [n] (false: the id was in the catalogue already, nothing changed),
             unknown_values int32 [n] (tokens not in the model's vocabularies: ignored)

Behaviour:
- Scores are GRU4Rec's raw output scores h . Wy[j] + By[j], the same as `GRU4Rec.score_all`.
- Unknown item: the state is left unchanged, `unknown_item` is true, and the recommendations
  are those of the session so far (of an empty session for a first click).
- `stateful` keeps each session's state inside the SavedModel (`SessionStore`): a fresh load
  holds no session. The same session id several times in one request is processed in row
  order, as if the rows had been sent one request after another.
- At most `capacity` sessions are kept; the least recently used are evicted (they restart
  from the zero state, and `new_session` says so).
- Limits, derived from the catalogue and the memory one request may use (`request_memory`,
  default 1 GiB; see `memory.request_limits`): at most `max_rows` rows per request (each
  recommending row scores all N items, ~13 N bytes: ~80 rows for 1M items in 1 GiB), at
  most `max_candidates` cells (rows x columns) in each of `candidate_ids` and `seen_ids`
  (each `score_items` cell gathers an output-table row). An explicit `max_rows` replaces
  the derived one. Session ids have at most `max_session_id_bytes` bytes (default 256).
  The `limits` signature reports them. A request over a limit, with inputs of different
  lengths or shapes, or with a non-finite `state` fails with INVALID_ARGUMENT and a
  message that says which. An empty request (B = 0) answers empty outputs.
- Business rules (`rules.py`, shared with `Recommender.recommend`): blocked items (the
  `available` variable, initialised from `export_model`'s `blocklist` and replaced by
  `set_blocklist`) are never recommended by any recommending signature. `exclude_seen` drops
  the session's clicks: for `stateful_rules` the store keeps each session's last `max_seen`
  known clicks; for `step_rules` the request's `item_id` and `seen_ids`. A `restrict` row
  ranks only its `candidate_ids`, with the scores of full-catalogue scoring. Ids equal to
  the pad id (-1, or "" for string ids) pad `candidate_ids`, `seen_ids` and `item_ids`
  inputs and are skipped; other unknown ids are skipped and counted. When fewer than k items
  are allowed, the row's remaining slots hold the pad id with score -inf.
- The blocklist lives in the loaded model, in one server process: each process (replica,
  version) needs its own `set_blocklist`, and a restart or a new version starts again from
  the export's blocklist.
- Warm-up requests (`assets.extra/tf_serving_warmup_requests`) use only `step`, so a freshly
  loaded server holds no session.
- New items (`spare_items` > 0, a model with item features; `new_items`): `add_items` puts
  each new id in the next spare row with its feature values; from then on every signature
  knows it (recommended, scored, clickable), scored by its features alone (its id part is
  zero). At most `spare_items` items are added; a request that would exceed them, repeats
  an id, or gives an item more known values than the model's most (`max_values`) fails
  with INVALID_ARGUMENT. Like the blocklist, added items live in the loaded model: a
  restart or a new version starts again from the export's catalogue.

The signatures call the model's own `step` / `score_all` on its variables; the SavedModel
needs neither Python nor this package to run.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tf_gru4rec.serving import rules
from tf_gru4rec.serving.new_items import FeatureTokens, with_spare_rows
from tf_gru4rec.serving.session_store import MAX_SEEN, SessionStore, occurrence_rank
from tf_gru4rec.system.files import atomic_directory, remove_leftovers
from tf_gru4rec.system.memory import request_limits

SIGNATURES = ("stateful", "serving_default", "end_session", "step", "score_items", "stateful_rules",
              "step_rules", "set_blocklist", "limits")
#: The signature of exports with spare item rows.
ADD_ITEMS = "add_items"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_BATCH_SIZES = (1, 32)
#: Default request limits of the exported signatures (see `ServingModule`): GiB one request
#: may use (the row and candidate limits follow from it and the catalogue), session id bytes.
REQUEST_MEMORY = 1.0
MAX_SESSION_ID_BYTES = 256


class ExportError(ValueError):
    """Invalid export arguments or an existing version folder; the message says which."""


def _signature(fn, *specs):
    """`tf.function` of fn over inputs `specs`, each input checked against its spec's shape
    when it runs: a loaded signature does not check shapes, so a 2-D `item_id` or a state of
    the wrong width would fail deep inside ("In[0] is not a matrix"); this way the error
    names the input ("Shape of tensor item_id [1,1] is not compatible with expected shape
    [?]")."""

    def checked(*inputs):
        return fn(*(tf.ensure_shape(x, spec.shape) for x, spec in zip(inputs, specs)))

    return tf.function(checked, input_signature=list(specs))


class ServingModule(tf.Module):
    """The exported object: a GRU4Rec's weights, item map, blocklist, session store and signatures.

    The Keras model itself is not tracked (TF Serving has no Python): the signatures call
    `model.step` / `model.score_all`, whose variables are tracked here, so only those
    variables and the traced graphs are saved. The business rules are `rules`'
    graph functions, the same as `Recommender.recommend`'s.

    Args:
        model: a trained `GRU4Rec`.
        blocklist: original ids never recommended until `set_blocklist` replaces them.
        k: recommendations per row (at most the number of items).
        capacity: most sessions `stateful` keeps.
        max_rows: most rows one request may hold; None: as many as `request_memory` fits.
        max_session_id_bytes: longest session id `stateful` and `end_session` accept.
        max_seen: a session's last clicks the stateful signatures remember (exclude_seen).
        request_memory: GiB one request may use; the row and candidate limits follow.
        spare_items: catalogue rows for `add_items` (a model with item features only).
    """

    def __init__(self, model, blocklist=(), k=20, capacity=100_000, max_rows=None,
                 max_session_id_bytes=MAX_SESSION_ID_BYTES, max_seen=MAX_SEEN,
                 request_memory=REQUEST_MEMORY, spare_items=0):
        super().__init__(name="gru4rec_serving")
        self.k = int(min(k, model.n_items))
        self.state_size = int(model.state_size)
        self.spare_items, self.n_trained = int(spare_items), int(model.n_items)
        item_map = model.item_map
        if self.spare_items:
            check_spare_items(model, self.spare_items)
            self.feature_tokens = FeatureTokens(model.feature_encoder)
            model = with_spare_rows(model, self.spare_items)
        limits = serving_limits(model.n_items, self.state_size, self.k, int(model.layer_sizes[-1]),
                                request_memory)
        self.max_rows = limits["max_rows"] if max_rows is None else int(max_rows)
        self.max_candidates = limits["max_candidates"]
        self.capacity, self.max_session_id_bytes = int(capacity), int(max_session_id_bytes)
        self.pad_id = rules.pad_id(item_map)
        ids = np.concatenate([item_map.ids, np.full(self.spare_items, self.pad_id, item_map.ids.dtype)])
        if item_map.lookup([self.pad_id])[0] >= 0:
            raise ExportError(f"item id {self.pad_id!r} is the pad id of requests and results; "
                              "the catalogue must not contain it")
        self.id_dtype = tf.int64 if item_map.is_integer else tf.string
        # Trainable weights and the item features' value table (non-trainable, but read).
        self._item_values = [layer.item_values.value for layer in model.feature_layers]
        self.model_variables = [w.value for w in model.trainable_weights] + self._item_values
        # Bound methods, not the model: only the variables above are tracked and saved.
        self._model_step, self._score_all = model.step, model.score_all
        self._output_of, self._model_score_items = model.output_of, model.score_items
        self.item_ids = tf.Variable(ids, trainable=False, name="item_ids")
        # Mutable: add_items inserts new ids (it holds the catalogue's ids only, not the pads).
        self.item_index = tf.lookup.experimental.MutableHashTable(self.id_dtype, tf.int64, default_value=-1)
        self.item_index.insert(tf.constant(item_map.ids, self.id_dtype), tf.range(len(item_map), dtype=tf.int64))
        self.n_items = tf.Variable(len(item_map), dtype=tf.int64, trainable=False, name="n_items")
        available = np.r_[~rules.blocked_mask(item_map, blocklist)[0], np.zeros(self.spare_items, bool)]
        self.available = tf.Variable(available, trainable=False, name="available")
        self.sessions = SessionStore(self.state_size, capacity, max_seen)

        ids_spec = lambda name, rank=1: tf.TensorSpec([None] * rank, self.id_dtype, name)
        sessions_spec = tf.TensorSpec([None], tf.string, "session_id")
        state_spec = tf.TensorSpec([None, self.state_size], tf.float32, "state")
        flag_spec = lambda name: tf.TensorSpec([None], tf.bool, name)
        rule_specs = [flag_spec("exclude_seen"), ids_spec("candidate_ids", 2), flag_spec("restrict")]
        self.stateful = _signature(self._stateful, sessions_spec, ids_spec("item_id"))
        self.end_session = _signature(self._end_session, sessions_spec)
        self.step = _signature(self._step, ids_spec("item_id"), state_spec)
        self.score_items = _signature(self._score_items, state_spec, ids_spec("candidate_ids", 2))
        self.stateful_rules = _signature(self._stateful_rules, sessions_spec, ids_spec("item_id"), *rule_specs)
        self.step_rules = _signature(self._step_rules, ids_spec("item_id"), state_spec, rule_specs[0],
                                     ids_spec("seen_ids", 2), *rule_specs[1:])
        self.set_blocklist = _signature(self._set_blocklist, ids_spec("item_ids"))
        self.n_sessions = tf.function(self.sessions.size, input_signature=[])
        self.limits = tf.function(self._limits, input_signature=[])
        if self.spare_items:
            self.add_items = _signature(self._add_items, ids_spec("item_ids"),
                                        tf.TensorSpec([None, None], tf.string, "feature_values"))

    def signatures(self):
        """Signature name -> concrete function, as `tf.saved_model.save` takes them."""
        stateful = self.stateful.get_concrete_function()
        return {
            "stateful": stateful,
            "serving_default": stateful,
            "end_session": self.end_session.get_concrete_function(),
            "step": self.step.get_concrete_function(),
            "score_items": self.score_items.get_concrete_function(),
            "stateful_rules": self.stateful_rules.get_concrete_function(),
            "step_rules": self.step_rules.get_concrete_function(),
            "set_blocklist": self.set_blocklist.get_concrete_function(),
            "limits": self.limits.get_concrete_function(),
            **({ADD_ITEMS: self.add_items.get_concrete_function()} if self.spare_items else {}),
        }

    # ----- building blocks ------------------------------------------------------------
    def _check(self, rows, session_id=None, state=None, rows_of=()):
        """Request checks; a failed one is an INVALID_ARGUMENT error that says what is wrong.

        rows: the request's row count; rows_of: (name, tensor) pairs that must have as many
        rows as `rows` (the 2-D id inputs among them at most `max_candidates` cells);
        session_id: ids whose byte length is bounded; state: must be finite.
        """
        checks = [tf.debugging.assert_less_equal(
            rows, self.max_rows, message=f"a request holds at most {self.max_rows} rows (the "
                                         "export's limit for this catalogue); got")]
        for name, tensor in rows_of:
            checks.append(tf.debugging.assert_equal(
                tf.shape(tensor)[0], rows,
                message=f"{name} must have one row per request row (mismatched lengths); got"))
            if name in ("candidate_ids", "seen_ids"):
                checks.append(tf.debugging.assert_less_equal(
                    tf.size(tensor, tf.int64), tf.constant(self.max_candidates, tf.int64),
                    message=f"{name} holds at most {self.max_candidates} ids in all (rows x columns, "
                            "the export's limit for this catalogue); got"))
        if session_id is not None:
            longest = tf.reduce_max(tf.concat([tf.strings.length(session_id), [0]], 0))
            checks.append(tf.debugging.assert_less_equal(
                longest, self.max_session_id_bytes,
                message=f"a session_id has at most {self.max_session_id_bytes} bytes; the longest has"))
        if state is not None:
            checks.append(tf.debugging.assert_equal(
                tf.reduce_all(tf.math.is_finite(state)), True,
                message="state holds NaN or infinite values (pass a state this model's step returned)"))
        return checks

    def _index(self, ids):
        """Item ids (any shape) -> indices, -1 where unknown (a mutable table's lookup has
        no static shape: given back the ids')."""
        return tf.reshape(self.item_index.lookup(ids), tf.shape(ids))

    def _lookup(self, ids):
        """Item ids (any shape) -> (indices, -1 where unknown or padding; unknown non-pad ids)."""
        index = self._index(ids)
        return index, (index < 0) & tf.not_equal(ids, self.pad_id)

    def _advance(self, index, state):
        """One click: item indices [b] (-1 = unknown), state [b, H] -> new state [b, H].

        Unknown clicks leave their row's state unchanged.
        """
        known = index >= 0
        new_state, _ = self._model_step(tf.where(known, index, 0), state)
        return tf.where(known[:, None], new_state, state)

    @staticmethod
    def _remember(seen, index):
        """A session's last clicks [b, L] (oldest first) plus the known clicks index [b]."""
        shifted = tf.concat([seen[:, 1:], tf.cast(index, tf.int32)[:, None]], axis=1)
        return tf.where((index >= 0)[:, None], shifted, seen)

    def _recommend(self, state, seen=None, candidate_ids=None, restrict=None):
        """State [b, H] -> (item ids [b, k], scores [b, k], unknown candidates int32 [b]).

        Always without the blocked items; without the items `seen` [b, L] (indices, -1
        padded); only among `candidate_ids` [b, C] on `restrict` [b] rows.
        """
        rows = tf.shape(state)[0]
        seen = tf.zeros([rows, 0], tf.int32) if seen is None else seen
        if candidate_ids is None:
            candidates, restrict = tf.zeros([rows, 0], tf.int64), tf.zeros([rows], tf.bool)
            unknown = tf.zeros([rows], tf.int32)
        else:
            candidates, unknown = self._lookup(candidate_ids)
            unknown = tf.reduce_sum(tf.cast(unknown, tf.int32), axis=1)
        allowed = rules.allowed_items(self.available, seen, candidates, restrict)
        index, scores = rules.top_k_allowed(
            self._score_all(self._output_of(state)), allowed, self.k)
        item_ids = tf.where(index >= 0, tf.gather(self.item_ids, tf.maximum(index, 0)), self.pad_id)
        return item_ids, scores, unknown

    def _run_sessions(self, session_id, item_id):
        """The stateful signatures' clicks: each row's session advanced by its click, in
        row order. Returns (click indices [B], states [B, H], seen [B, max_seen] after each
        row, new_session [B])."""
        index = self._index(item_id)
        rank = occurrence_rank(session_id)
        n_rounds = tf.reduce_max(tf.concat([rank, [-1]], 0)) + 1

        def one_round(r, states, seen, new_session):
            # Rows of rank r hold distinct sessions: read, advance, write back; the next
            # round reads what this one wrote, so repeated ids are processed in row order.
            rows = tf.where(rank == r)[:, 0]
            keys, clicks = tf.gather(session_id, rows), tf.gather(index, rows)
            old_states, old_seen, held = self.sessions.read(keys)
            new, new_seen = self._advance(clicks, old_states), self._remember(old_seen, clicks)
            # A session's first row starts afresh unless held, told by the same lookup
            # that read its state.
            new_session = tf.tensor_scatter_nd_update(new_session, rows[:, None], ~held & (r == 0))
            with tf.control_dependencies([self.sessions.write(keys, new, new_seen)]):
                return (r + 1, tf.tensor_scatter_nd_update(states, rows[:, None], new),
                        tf.tensor_scatter_nd_update(seen, rows[:, None], new_seen), new_session)

        rows = tf.shape(session_id)[0]
        states = tf.zeros([rows, self.state_size])
        seen = tf.fill([rows, self.sessions.max_seen], -1)
        _, states, seen, new_session = tf.while_loop(
            lambda r, *_: r < n_rounds, one_round, (0, states, seen, tf.zeros([rows], tf.bool)))
        with tf.control_dependencies([states, seen]):
            evicted = self.sessions.evict()
        with tf.control_dependencies([evicted]):
            return index, tf.identity(states), tf.identity(seen), new_session

    # ----- signatures -----------------------------------------------------------------
    def _step(self, item_id, state):
        with tf.control_dependencies(self._check(tf.shape(item_id)[0], state=state,
                                                 rows_of=[("state", state)])):
            index = self._index(item_id)
        state = self._advance(index, state)
        item_ids, scores, _ = self._recommend(state)
        return {"item_ids": item_ids, "scores": scores, "unknown_item": index < 0, "state": state}

    def _step_rules(self, item_id, state, exclude_seen, seen_ids, candidate_ids, restrict):
        inputs = [("state", state), ("exclude_seen", exclude_seen), ("seen_ids", seen_ids),
                  ("candidate_ids", candidate_ids), ("restrict", restrict)]
        with tf.control_dependencies(self._check(tf.shape(item_id)[0], state=state, rows_of=inputs)):
            index = self._index(item_id)
        state = self._advance(index, state)
        seen = tf.concat([self._index(seen_ids), index[:, None]], axis=1)
        seen = tf.where(exclude_seen[:, None], seen, -1)
        item_ids, scores, unknown = self._recommend(state, seen, candidate_ids, restrict)
        return {"item_ids": item_ids, "scores": scores, "unknown_item": index < 0, "state": state,
                "unknown_candidates": unknown}

    def _stateful(self, session_id, item_id):
        with tf.control_dependencies(self._check(tf.shape(session_id)[0], session_id=session_id,
                                                 rows_of=[("item_id", item_id)])):
            index, states, _, new_session = self._run_sessions(session_id, item_id)
        item_ids, scores, _ = self._recommend(states)
        return {"item_ids": item_ids, "scores": scores, "unknown_item": index < 0,
                "new_session": new_session}

    def _stateful_rules(self, session_id, item_id, exclude_seen, candidate_ids, restrict):
        inputs = [("item_id", item_id), ("exclude_seen", exclude_seen),
                  ("candidate_ids", candidate_ids), ("restrict", restrict)]
        with tf.control_dependencies(self._check(tf.shape(session_id)[0], session_id=session_id,
                                                 rows_of=inputs)):
            index, states, seen, new_session = self._run_sessions(session_id, item_id)
        seen = tf.where(exclude_seen[:, None], seen, -1)
        item_ids, scores, unknown = self._recommend(states, seen, candidate_ids, restrict)
        return {"item_ids": item_ids, "scores": scores, "unknown_item": index < 0,
                "new_session": new_session, "unknown_candidates": unknown}

    def _end_session(self, session_id):
        with tf.control_dependencies(self._check(tf.shape(session_id)[0], session_id=session_id)):
            return {"ended": self.sessions.remove(session_id)}

    def _score_items(self, state, candidate_ids):
        """Scores of candidates [b, C] given the state after the session's clicks."""
        with tf.control_dependencies(self._check(tf.shape(state)[0], state=state,
                                                 rows_of=[("candidate_ids", candidate_ids)])):
            index = self._index(candidate_ids)
        known = index >= 0
        scores = self._model_score_items(self._output_of(state), tf.where(known, index, 0))
        return {"scores": tf.where(known, scores, -np.inf), "known": known}

    def _limits(self):
        rows = self.n_trained + self.spare_items
        return {**{name: tf.constant(getattr(self, name), tf.int64)
                   for name in ("max_rows", "max_candidates", "max_session_id_bytes", "capacity")},
                "n_items": tf.identity(self.n_items), "spare_items": rows - self.n_items}

    def _set_blocklist(self, item_ids):
        """Replaces the blocklist by the known ids of item_ids [n] (not bounded by max_rows:
        a blocklist may hold the whole catalogue); unused spare rows stay unavailable."""
        index = self._index(item_ids)
        known = index >= 0
        blocked = rules.index_mask(tf.boolean_mask(index, known)[None, :], tf.size(self.available))
        in_catalogue = tf.range(tf.size(self.available, tf.int64)) < self.n_items
        with tf.control_dependencies([self.available.assign(~blocked[0] & in_catalogue)]):
            return {"known": tf.identity(known)}

    def _add_items(self, item_ids, feature_values):
        """New ids [n] with their feature tokens [n, T] into the next spare rows."""
        n = tf.shape(item_ids)[0]
        rows_total = self.n_trained + self.spare_items
        max_values = int(self._item_values[0].shape[1])
        # Checked before any op that combines the two inputs' rows.
        with tf.control_dependencies([tf.debugging.assert_equal(tf.shape(feature_values)[0], n, message=(
                "feature_values must have one row per item_id (mismatched lengths); got"))]):
            values = self.feature_tokens(feature_values)  # [n, T], -1: none
        unknown = tf.reduce_sum(tf.cast((values < 0) & (feature_values != ""), tf.int32), axis=1)
        # Each item's known values first (descending: -1 last), its width the model's L.
        values = tf.sort(values, axis=1, direction="DESCENDING")
        values = tf.concat([values, tf.fill([n, max_values], tf.constant(-1, tf.int64))], 1)
        new = (self._index(item_ids) < 0) & tf.not_equal(item_ids, self.pad_id)
        n_new = tf.reduce_sum(tf.cast(new, tf.int64))
        checks = [
            tf.debugging.assert_equal(tf.size(tf.unique(item_ids).y), n,
                                      message="item_ids holds an id more than once"),
            tf.debugging.assert_less_equal(self.n_items + n_new, tf.constant(rows_total, tf.int64), message=(
                f"add_items: this export has room for {self.spare_items} added items in all; the "
                "request's new items do not fit in the rows left (see limits: spare_items)")),
            tf.debugging.assert_less_equal(
                tf.reduce_max(tf.concat([tf.reduce_sum(tf.cast(values >= 0, tf.int32), 1), [0]], 0)),
                max_values, message=f"an item has at most {max_values} feature values in this model; got"),
        ]
        with tf.control_dependencies(checks):
            rows = self.n_items + tf.cumsum(tf.cast(new, tf.int64)) - 1
        rows, ids = tf.boolean_mask(rows, new)[:, None], tf.boolean_mask(item_ids, new)
        writes = [table.scatter_nd_update(rows, tf.cast(tf.boolean_mask(values, new)[:, :max_values], tf.int32))
                  for table in self._item_values]
        writes += [self.item_ids.scatter_nd_update(rows, ids),
                   self.available.scatter_nd_update(rows, tf.ones(tf.shape(ids), tf.bool)),
                   self.item_index.insert(ids, rows[:, 0])]
        with tf.control_dependencies(writes):
            with tf.control_dependencies([self.n_items.assign_add(n_new)]):
                return {"added": tf.identity(new), "unknown_values": tf.identity(unknown)}


# ----- warm-up ----------------------------------------------------------------------------
def warmup_requests(model_name, item_ids, state_size, batch_sizes=WARMUP_BATCH_SIZES):
    """PredictionLog protos calling the stateless `step` signature (one per batch size).

    Only `step`: warm-up must not leave sessions behind in a freshly loaded server.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    logs = []
    for b in batch_sizes:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = "step"
        clicks = np.resize(np.asarray(item_ids), b)
        request.inputs["item_id"].CopyFrom(tf.make_tensor_proto(clicks))
        request.inputs["state"].CopyFrom(tf.make_tensor_proto(np.zeros((b, state_size), np.float32)))
        logs.append(
            prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        )
    return logs


def write_warmup(version_dir, logs):
    path = os.path.join(version_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


# ----- versions and the export itself -------------------------------------------------------
def existing_versions(base):
    """Numeric version folders under `base` (TF Serving's layout), ascending."""
    if not os.path.isdir(base):
        return []
    names = os.listdir(base)
    return sorted(int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(base, n)))


def next_version(base):
    return max(existing_versions(base), default=0) + 1


def check_export_args(k, capacity, version=None, max_rows=None,
                      max_session_id_bytes=MAX_SESSION_ID_BYTES, max_seen=MAX_SEEN,
                      request_memory=REQUEST_MEMORY, spare_items=0):
    """Raises ExportError unless the arguments (version and max_rows when given) are positive
    ints, spare_items an int >= 0 and request_memory a positive number of GiB."""
    if isinstance(spare_items, bool) or not isinstance(spare_items, (int, np.integer)) or spare_items < 0:
        raise ExportError(f"`spare_items` should be an int >= 0. Received: `spare_items` = {spare_items!r}.")
    given = {"k": k, "capacity": capacity, "max_session_id_bytes": max_session_id_bytes,
             "max_seen": max_seen}
    given |= {name: value for name, value in (("version", version), ("max_rows", max_rows))
              if value is not None}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ExportError(f"`{name}` should be a positive int. Received: `{name}` = {value!r}.")
    if (isinstance(request_memory, bool) or not isinstance(request_memory, (int, float, np.number))
            or not 0 < request_memory < float("inf")):
        raise ExportError("`request_memory` should be a positive number of GiB. "
                          f"Received: `request_memory` = {request_memory!r}.")


def check_spare_items(model, spare_items):
    """Raises ExportError when spare rows are asked of a model without item features."""
    if spare_items and model.feature_encoder is None:
        raise ExportError("spare_items needs a model with item features: an added item is scored by "
                          "its features (train with --item-features)")


def serving_limits(n_items, state_size, k, d, request_memory=REQUEST_MEMORY):
    """`memory.request_limits` for `request_memory` GiB; ExportError if no row fits."""
    limits = request_limits(n_items, state_size, k, d, int(request_memory * 2**30))
    if min(limits.values()) < 1:
        raise ExportError(f"request_memory {request_memory} GiB holds not even one request row "
                          f"of {n_items} items: raise it")
    return limits


def export_model(model, out, version=None, blocklist=(), k=20, capacity=100_000, max_rows=None,
                 max_session_id_bytes=MAX_SESSION_ID_BYTES, max_seen=MAX_SEEN,
                 request_memory=REQUEST_MEMORY, spare_items=0):
    """Writes `model` as `<out>/<version>/` (SavedModel + warm-up requests); returns that path.

    The version folder is written under a temporary name in `out` (not numeric, so TF
    Serving ignores it) and renamed when complete: a server never sees half a model, and
    a failed export leaves nothing behind.

    Args:
        model: a trained `GRU4Rec`.
        out: the model's base path (TF Serving's `--model_base_path`).
        version: positive int; default one more than the highest existing version, or 1.
        blocklist: original ids never recommended, until the `set_blocklist` signature
            replaces them (unknown ids are skipped).
        k: recommendations per row.
        capacity: most sessions the `stateful` signature keeps (LRU eviction beyond).
        max_rows, max_session_id_bytes, request_memory: request limits (see `ServingModule`).
        max_seen: a session's last clicks the stateful signatures remember (exclude_seen).
        spare_items: rows for items added after export by the `add_items` signature (a model
            with item features; 0: none, and no such signature).
    """
    check_export_args(k, capacity, version, max_rows, max_session_id_bytes, max_seen, request_memory,
                      spare_items)
    check_spare_items(model, spare_items)
    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    version = next_version(out) if version is None else int(version)
    final = os.path.join(out, str(version))
    if os.path.exists(final):
        raise ExportError(f"{final} already exists (versions present: {existing_versions(out)})")
    remove_leftovers(final)
    with atomic_directory(final) as tmp:
        module = ServingModule(model, blocklist=blocklist, k=k, capacity=capacity, max_rows=max_rows,
                               max_session_id_bytes=max_session_id_bytes, max_seen=max_seen,
                               request_memory=request_memory, spare_items=spare_items)
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        write_warmup(tmp, warmup_requests(os.path.basename(out), model.item_map.ids, module.state_size))
    return final


def describe_limits(loaded):
    """One line: the request limits of a loaded export (its `limits` signature)."""
    got = {key: int(value) for key, value in loaded.signatures["limits"]().items()}
    return (f"request limits: {got['max_rows']} rows, {got['max_candidates']} candidate ids, "
            f"session ids of {got['max_session_id_bytes']} bytes; {got['capacity']} sessions kept; "
            f"{got['n_items']} items, {got['spare_items']} spare rows for add_items")


def describe_signatures(signatures):
    """Text table of signature name -> inputs and outputs (key dtype shape)."""

    def spec(key, s):
        dims = ",".join("-1" if d is None else str(d) for d in s.shape.as_list())
        return f"{key} {s.dtype.name}[{dims}]"

    lines = []
    for name, fn in signatures.items():
        inputs = ", ".join(spec(key, s) for key, s in sorted(fn.structured_input_signature[1].items()))
        outputs = ", ".join(spec(key, s) for key, s in sorted(fn.structured_outputs.items()))
        lines.append(f"{name:16s} inputs: {inputs}\n{'':16s} outputs: {outputs}")
    return "\n".join(lines)

