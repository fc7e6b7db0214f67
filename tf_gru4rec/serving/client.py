"""gRPC client for an exported GRU4Rec behind TF Serving (or `local_server`).

    client = GRU4RecClient("127.0.0.1:8500", model_name="gru4rec")
    item_ids, scores = client.next_items("s1", 37220)        # stateful: server keeps state
    client.end_session("s1")
    item_ids, scores, state = client.step([37220], state=None)   # stateless: you keep state
    item_ids, scores, state = client.step([37204], state)

    python -m tf_gru4rec.serving.client --server 127.0.0.1:8500 --model gru4rec --session s1 \
        --items 37220,37204 [--k 5] [--end-session]

Dtypes come from the served signatures (`GetModelMetadata`), so item ids are sent as int64
or string, whichever the model was trained with; string outputs come back as `str`.
"""

from __future__ import annotations

import functools
import sys

from tf_gru4rec.cli import ArgumentParser, add_output_options, parse_then_import_tensorflow


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m tf_gru4rec.serving.client",
        description="Sends a session's clicks; prints the recommendations after each click.",
    )
    parser.add_argument("--server", default="127.0.0.1:8500", help="host:port of the gRPC endpoint")
    parser.add_argument("--model", default="gru4rec", help="model name")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--session", required=True, help="session id")
    parser.add_argument("--items", required=True, help="comma-separated item ids, in click order")
    parser.add_argument("--k", type=int, default=None, help="default: the exported k")
    parser.add_argument("--end-session", action="store_true", help="free the session afterwards")
    add_output_options(parser, quiet=False)
    return parser


if __name__ == "__main__":  # --help and bad arguments answer before TensorFlow loads
    parse_then_import_tensorflow(build_parser())

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)


def _decode(array):
    """Bytes arrays (TF strings) -> str arrays; other arrays unchanged."""
    if array.dtype != object:
        return array
    return np.array([v.decode() for v in array.ravel()], dtype=object).reshape(array.shape)


def _truncate(k, available):
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
        """tf.int64 or tf.string: the dtype of the model's item ids."""
        return tf.dtypes.as_dtype(self.signature_defs["step"].inputs["item_id"].dtype)

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
            dtype = tf.dtypes.as_dtype(declared[key].dtype)
            value = np.asarray(value, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
        response = self._stub.Predict(request, timeout=self.timeout)
        return {key: _decode(tf.make_ndarray(t)) for key, t in response.outputs.items()}

    # ----- stateful: the server keeps each session's state -------------------------------
    def next_items_batch(self, session_ids, item_ids, k=None):
        """One click for each of B sessions (a session may repeat: processed in order).

        Returns (item_ids [B, k], scores [B, k]).
        """
        sessions = [str(s) for s in session_ids]
        out = self.predict("stateful", {"session_id": sessions, "item_id": item_ids})
        k = _truncate(k, out["item_ids"].shape[1])
        return out["item_ids"][:, :k], out["scores"][:, :k]

    def next_items(self, session_id, item_id, k=None):
        """Records a click of a session; returns the next items (item_ids [k], scores [k])."""
        item_ids, scores = self.next_items_batch([session_id], [item_id], k)
        return item_ids[0], scores[0]

    def end_sessions(self, session_ids):
        """Frees sessions on the server; returns bool [B], whether each was held."""
        return self.predict("end_session", {"session_id": [str(s) for s in session_ids]})["ended"]

    def end_session(self, session_id):
        return bool(self.end_sessions([session_id])[0])

    # ----- stateless: the caller keeps the state --------------------------------------------
    def step(self, item_ids, state=None, k=None):
        """One click for each of B sessions whose states [B, H] you carry (None: new sessions).

        Returns (item_ids [B, k], scores [B, k], new state [B, H]).
        """
        if state is None:
            state = np.zeros((len(item_ids), self.state_size), np.float32)
        out = self.predict("step", {"item_id": item_ids, "state": state})
        k = _truncate(k, out["item_ids"].shape[1])
        return out["item_ids"][:, :k], out["scores"][:, :k], out["state"]

    def score_items(self, state, candidate_ids):
        """Re-ranking: scores [B, C] of candidates [B, C] after the clicks that made `state`.

        Returns (scores [B, C], known [B, C]); unknown candidates score -inf.
        """
        out = self.predict("score_items", {"state": state, "candidate_ids": candidate_ids})
        return out["scores"], out["known"]


# ----- command line -----------------------------------------------------------------------
def parse_item(text, integer_ids):
    """An item id typed on the command line, as the model's ItemId dtype wants it."""
    if not integer_ids:
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"item {text!r} is not an integer, and the model's ItemIds are int64") from None


def format_click(item_id, item_ids, scores, unknown):
    """One printed line: the click, then `id (score)` of each recommendation."""
    flag = " [unknown item: state unchanged]" if unknown else ""
    recs = ", ".join(f"{i} ({s:.4f})" for i, s in zip(item_ids, scores))
    return f"{item_id}{flag} -> {recs}"


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    items = [i.strip() for i in args.items.split(",") if i.strip()]
    try:
        with GRU4RecClient(args.server, args.model, args.version) as client:
            clicks = [parse_item(i, client.item_dtype == tf.int64) for i in items]
            for text, item in zip(items, clicks):
                out = client.predict("stateful", {"session_id": [args.session], "item_id": [item]})
                k = _truncate(args.k, out["item_ids"].shape[1])
                recs = out["item_ids"][0, :k], out["scores"][0, :k]
                print(format_click(text, *recs, out["unknown_item"][0]))
            if args.end_session:
                client.end_session(args.session)
    except grpc.RpcError as e:
        parser.exit(1, f"{parser.prog}: error: {e.code().name}: {e.details()}\n")
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
