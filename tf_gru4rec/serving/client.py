"""gRPC client for an exported GRU4Rec behind TF Serving (or `local_server`).

    client = GRU4RecClient("127.0.0.1:8500", model_name="gru4rec")
    item_ids, scores = client.next_items("s1", 37220)        # stateful: server keeps state
    client.end_session("s1")
    item_ids, scores, state = client.step([37220], state=None)   # stateless: you keep state
    item_ids, scores, state = client.step([37204], state)
    client.next_items("s2", 37220, exclude_seen=True, candidates=[37204, 37205])   # business rules
    client.set_blocklist([37204])                          # this server process's blocklist

    python -m tf_gru4rec.serving.client --server 127.0.0.1:8500 --model gru4rec --session s1 \
        --items 37220,37204 [--k 5] [--end-session] [--exclude-seen] [--candidates ID,ID,...]
        [--set-blocklist FILE]

Dtypes come from the served signatures (`GetModelMetadata`), so item ids are sent as int64
or string, whichever the model was trained with; string outputs come back as `str`.

The client needs only TF Serving's protos and numpy, not TensorFlow's runtime: importing it
takes 0.2 s and 47 MB instead of 6 s and 700 MB (measured on 2 CPU cores; 15-19 s on a cold
machine), for each command-line call.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
import types

if __name__ == "__main__":  # the command line, whose arguments are checked before gRPC loads
    from tf_gru4rec.cli.client import main

    sys.exit(main())

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from tf_gru4rec.serving.candidates import per_session  # noqa: E402


@contextlib.contextmanager
def _protos_only():
    """Imports under it find the `tensorflow` package without running its `__init__`.

    TF Serving's protos import TensorFlow's (`tensorflow.core.framework`, plain generated
    modules), but importing any submodule first runs `tensorflow/__init__.py`, which loads
    the whole runtime. A bare stand-in package with the same folder stands in while they
    load, and is removed after: a later `import tensorflow` loads the real one, which reuses
    these proto modules (the same classes). Nothing to do once TensorFlow is loaded.
    """
    if "tensorflow" in sys.modules:
        yield
        return
    stand_in = types.ModuleType("tensorflow")
    stand_in.__path__ = list(importlib.util.find_spec("tensorflow").submodule_search_locations)
    sys.modules["tensorflow"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]


with _protos_only():
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
    from tensorflow_serving.apis import (  # noqa: E402
        get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc)

#: TensorFlow dtypes of the signatures' inputs and outputs -> numpy dtypes.
_NUMPY_DTYPES = {types_pb2.DT_FLOAT: np.dtype(np.float32), types_pb2.DT_INT32: np.dtype(np.int32),
                 types_pb2.DT_INT64: np.dtype(np.int64), types_pb2.DT_BOOL: np.dtype(np.bool_),
                 types_pb2.DT_STRING: np.dtype(object)}
#: The repeated field a TensorProto without `tensor_content` holds its values in.
_VALUE_FIELDS = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_INT32: "int_val",
                 types_pb2.DT_INT64: "int64_val", types_pb2.DT_BOOL: "bool_val"}


def tensor_proto(value, dtype):
    """Array-like -> TensorProto of `dtype` (a `types_pb2` enum), as `tf.make_tensor_proto`."""
    array = np.asarray(value, dtype=_NUMPY_DTYPES[dtype])
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in array.shape])
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape)
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.ravel())
    else:
        proto.tensor_content = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return proto


def to_ndarray(proto):
    """TensorProto -> np.ndarray, as `tf.make_ndarray`; strings decoded to `str`."""
    shape = [d.size for d in proto.tensor_shape.dim]
    dtype = _NUMPY_DTYPES[proto.dtype]
    if proto.dtype == types_pb2.DT_STRING:
        return np.array([v.decode() for v in proto.string_val], dtype=object).reshape(shape)
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    values = np.array(getattr(proto, _VALUE_FIELDS[proto.dtype]), dtype)
    size = int(np.prod(shape))
    # A compact proto lists fewer values than elements: the last one repeats.
    return np.pad(values, (0, size - values.size), mode="edge").reshape(shape) if values.size else \
        np.zeros(shape, dtype)


def truncate_k(k, available):
    if k is None:
        return available
    if not 1 <= k <= available:
        raise ValueError(f"`k` should be in [1, {available}] (the exported k). Received: `k` = {k}.")
    return k


class GRU4RecClient:
    """Session API over TF Serving's gRPC PredictionService.

    Args:
        target: "host:port" of the gRPC endpoint (TF Serving's 8500).
        model_name: the served model's name.
        version: pin a model version; None = the latest the server has. Pin it for as long
            as you carry states from `step`: a state only fits the version that made it.
        timeout: seconds per call.
    """

    def __init__(self, target="127.0.0.1:8500", model_name="gru4rec", version=None, timeout=10.0):
        self.model_name, self.version, self.timeout = model_name, version, timeout
        self._channel = grpc.insecure_channel(target)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _spec(self, spec, signature=None):
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = int(self.version)
        if signature is not None:
            spec.signature_name = signature

    @functools.cached_property
    def signature_defs(self):
        """Signature name -> SignatureDef of the served model (one GetModelMetadata call)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._stub.GetModelMetadata(request, timeout=self.timeout)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return dict(signatures.signature_def)

    def _output_dim(self, signature, key):
        return self.signature_defs[signature].outputs[key].tensor_shape.dim[-1].size

    @property
    def item_dtype(self):
        """np.dtype int64, or object for string ids: the dtype of the model's item ids."""
        return _NUMPY_DTYPES[self.signature_defs["step"].inputs["item_id"].dtype]

    @property
    def pad_id(self):
        """The id padding request rows and result slots: -1, or "" for string item ids."""
        return -1 if self.item_dtype == np.int64 else ""

    def _padded(self, rows):
        """Lists of ids -> [len(rows), longest] padded with `pad_id`."""
        width = max([len(r) for r in rows] + [0])
        return [list(r) + [self.pad_id] * (width - len(r)) for r in rows]

    def rules_inputs(self, rows, exclude_seen=False, candidates=None):
        """The rule inputs of the `*_rules` signatures for `rows` rows.

        candidates: None, one list of ids for all rows, or one list (or None) per row.
        """
        candidates = per_session(candidates, rows)
        return {"exclude_seen": [bool(exclude_seen)] * rows,
                "candidate_ids": np.reshape(self._padded([c or [] for c in candidates]), (rows, -1)),
                "restrict": [c is not None for c in candidates]}

    @property
    def state_size(self):
        """H, the width of a session state."""
        return self._output_dim("step", "state")

    @property
    def k(self):
        """Recommendations per click the export returns."""
        return self._output_dim("step", "item_ids")

    def predict(self, signature, inputs):
        """Calls a signature: {key: array-like} -> {key: np.ndarray} (strings as str).

        Inputs are converted to the dtypes the signature declares.
        """
        declared = self.signature_defs[signature].inputs
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tensor_proto(value, declared[key].dtype))
        response = self._stub.Predict(request, timeout=self.timeout)
        return {key: to_ndarray(t) for key, t in response.outputs.items()}

    # ----- stateful: the server keeps each session's state -------------------------------
    def next_items_batch(self, session_ids, item_ids, k=None, exclude_seen=False, candidates=None):
        """One click for each of B sessions (a session may repeat: processed in order).

        exclude_seen: never recommend the session's clicks (the server remembers its last
        `max_seen`); candidates: recommend only among these ids (one list for all rows or one
        per row). Either calls `stateful_rules` (its `unknown_candidates` output counts the
        skipped candidate ids: `predict` it to read them). Blocked items are never returned.
        Returns (item_ids [B, k], scores [B, k]); slots no allowed item is left for hold
        `pad_id` with score -inf.
        """
        inputs = {"session_id": [str(s) for s in session_ids], "item_id": item_ids}
        if exclude_seen or candidates is not None:
            out = self.predict("stateful_rules",
                               {**inputs, **self.rules_inputs(len(item_ids), exclude_seen, candidates)})
        else:
            out = self.predict("stateful", inputs)
        k = truncate_k(k, out["item_ids"].shape[1])
        return out["item_ids"][:, :k], out["scores"][:, :k]

    def next_items(self, session_id, item_id, k=None, exclude_seen=False, candidates=None):
        """Records a click of a session; returns the next items (item_ids [k], scores [k])."""
        item_ids, scores = self.next_items_batch([session_id], [item_id], k, exclude_seen,
                                                 None if candidates is None else [candidates])
        return item_ids[0], scores[0]

    def end_sessions(self, session_ids):
        """Frees sessions on the server; returns bool [B], whether each was held."""
        return self.predict("end_session", {"session_id": [str(s) for s in session_ids]})["ended"]

    def end_session(self, session_id):
        return bool(self.end_sessions([session_id])[0])

    # ----- stateless: the caller keeps the state --------------------------------------------
    def step(self, item_ids, state=None, k=None, seen=None, candidates=None):
        """One click for each of B sessions whose states [B, H] you carry (None: new sessions).

        seen: per row, the session's earlier clicks, which are not recommended (nor is the
        row's click): exclude_seen with the clicks you carry. candidates: as in
        `next_items_batch`. Either calls `step_rules`.
        Returns (item_ids [B, k], scores [B, k], new state [B, H]).
        """
        if state is None:
            state = np.zeros((len(item_ids), self.state_size), np.float32)
        inputs = {"item_id": item_ids, "state": state}
        if seen is not None or candidates is not None:
            rules = self.rules_inputs(len(item_ids), seen is not None, candidates)
            seen_ids = np.reshape(self._padded(seen or [[]] * len(item_ids)), (len(item_ids), -1))
            out = self.predict("step_rules", {**inputs, **rules, "seen_ids": seen_ids})
        else:
            out = self.predict("step", inputs)
        k = truncate_k(k, out["item_ids"].shape[1])
        return out["item_ids"][:, :k], out["scores"][:, :k], out["state"]

    def score_items(self, state, candidate_ids):
        """Re-ranking: scores [B, C] of candidates [B, C] after the clicks that made `state`.

        Returns (scores [B, C], known [B, C]); unknown candidates score -inf.
        """
        out = self.predict("score_items", {"state": state, "candidate_ids": candidate_ids})
        return out["scores"], out["known"]

    # ----- blocklist --------------------------------------------------------------------------
    def set_blocklist(self, item_ids):
        """Replaces the blocklist of the server process that answers (each replica needs its
        own call; a restart or new version starts from the export's blocklist).

        Returns {"blocked": items now blocked, "unknown": ids skipped as unknown}.
        """
        ids = list(item_ids)
        known = self.predict("set_blocklist", {"item_ids": np.reshape(ids, (-1,))})["known"]
        return {"blocked": len({i for i, ok in zip(ids, known) if ok}),
                "unknown": [i for i, ok in zip(ids, known) if not ok and i != self.pad_id]}

    # ----- new items --------------------------------------------------------------------------
    def add_items(self, item_ids, features):
        """Adds items to the catalogue of an export with spare rows (`add_items` signature):
        `features` holds, per item, its "column=value" tokens (a list, or one string of
        tokens joined by ";"). Like the blocklist, they live in the server process that
        answers.

        Returns (added bool [n]: false where the id was known already, unknown_values
        int32 [n]: tokens the model's vocabularies lack, ignored).
        """
        rows = [f.split(";") if isinstance(f, str) else list(f) for f in features]
        width = max([len(r) for r in rows] + [1])
        tokens = np.array([r + [""] * (width - len(r)) for r in rows], dtype=object).reshape(len(rows), width)
        out = self.predict("add_items", {"item_ids": np.reshape(list(item_ids), (-1,)), "feature_values": tokens})
        return out["added"], out["unknown_values"]
