"""A local gRPC PredictionService that runs an exported GRU4Rec's SavedModel signatures.

It stands in for TF Serving in tests and notebooks (TF Serving's binary cannot be pip
installed); it is NOT a production server: one model, one version, loaded once, Python in
the request path, no batching, no version polling, no TLS. It speaks TF Serving's protocol
(`tensorflow_serving.apis`: `Predict`, `GetModelMetadata` with `signature_def`), so the same
client code talks to either.

    server, port = start_local_server("export/models/gru4rec", port=0)   # 0: any free port
    ...
    server.stop(grace=None)

    python -m tf_gru4rec.serving.local_server --model-base-path export/models/gru4rec --port 8500
"""

from __future__ import annotations

import os
import re
import sys
from concurrent import futures

if __name__ == "__main__":  # the command line, whose arguments are checked before TensorFlow loads
    from tf_gru4rec.cli.local_server import main

    sys.exit(main())

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tf_gru4rec.serving.export import existing_versions  # noqa: E402

DEFAULT_SIGNATURE = "serving_default"
#: Lines of a TensorFlow graph error around the op's own message.
_FRAME_LINES = ("Graph execution error:", "Detected at node", "<stack traces unavailable>", "File ")
_ASSERTION = re.compile(r"assertion failed: \[(.*?)\] \[Condition [^\]]*\] \[x \([^)]*\) = \] \[([^\]]*)\]")


def error_message(error):
    """One line naming what went wrong in a signature, as TF Serving reports it.

    A graph error's text is `Graph execution error:`, the failing node and its stack, then
    the op's message, then `[[{{node ...}}]] [Op:...]`: only the op's message is kept. An
    assertion's (`assertion failed: [text] [Condition ...] [x (...) = ] [31] ...`) becomes
    its text, followed by the offending value when the text ends asking for it (`got`,
    `has`).
    """
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in text.splitlines()]
    message = " ".join(line for line in lines if line and not line.startswith(_FRAME_LINES))
    message = re.sub(r"\s*\[\[\{\{node .*$", "", message).replace("\\'", "'")
    assertion = _ASSERTION.search(message)
    if assertion:
        text, value = assertion.groups()
        message = f"{text} {value}" if text.endswith((" got", " has")) else text
    return message or type(error).__name__


def read_signature_defs(version_dir):
    """The SignatureDefs of a SavedModel's serving graph, read from `saved_model.pb`."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    return saved_model.meta_graphs[0].signature_def


class LocalPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Serves one version of one model, as TF Serving does with `--model_base_path`.

    Args:
        model_base_path: folder holding numeric version folders.
        model_name: the name requests must use (default: the folder's name).
        version: the version to load (default: the highest).
    """

    def __init__(self, model_base_path, model_name=None, version=None):
        base = os.path.abspath(os.fspath(model_base_path))
        versions = existing_versions(base)
        if not versions:
            raise FileNotFoundError(f"{base}: no numeric version folder")
        self.version = max(versions) if version is None else int(version)
        if self.version not in versions:
            raise FileNotFoundError(f"{base}: no version {self.version} (have {versions})")
        self.model_name = model_name or os.path.basename(base)
        path = os.path.join(base, str(self.version))
        self.model = tf.saved_model.load(path)
        self.signature_defs = read_signature_defs(path)

    def _check_spec(self, spec, context):
        """Aborts with NOT_FOUND unless the request names this model (and version, if any)."""
        other_version = spec.HasField("version") and spec.version.value != self.version
        if spec.name != self.model_name or other_version:
            wanted = spec.version.value if spec.HasField("version") else "latest"
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({spec.name}, {wanted}); "
                f"serving {self.model_name} version {self.version}",
            )

    def _fill_spec(self, spec, signature_name=None):
        spec.name = self.model_name
        spec.version.value = self.version
        if signature_name is not None:
            spec.signature_name = signature_name

    def Predict(self, request, context):
        self._check_spec(request.model_spec, context)
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in self.model.signatures:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature key "{name}" not found.')
        fn = self.model.signatures[name]
        specs = fn.structured_input_signature[1]
        if set(request.inputs) != set(specs):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"signature {name} takes inputs {sorted(specs)}; got {sorted(request.inputs)}",
            )
        for key, spec in specs.items():
            given = tf.dtypes.as_dtype(request.inputs[key].dtype)
            if given != spec.dtype:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input {key} of signature {name} should be {spec.dtype.name}, got {given.name}",
                )
        try:
            outputs = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        except (tf.errors.OpError, ValueError, TypeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error_message(e))
        wanted = set(request.output_filter) or set(outputs)
        unknown = wanted - set(outputs)
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown output_filter {sorted(unknown)}")
        response = predict_pb2.PredictResponse()
        self._fill_spec(response.model_spec, name)
        for key in sorted(wanted):
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key].numpy()))
        return response

    def GetModelMetadata(self, request, context):
        self._check_spec(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"only metadata_field signature_def is supported; got {list(request.metadata_field)}",
            )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        self._fill_spec(response.model_spec)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signatures)
        return response


def start_local_server(model_base_path, port=0, model_name=None, version=None, max_workers=8):
    """Loads the model and serves it on 127.0.0.1:`port` (0: a free port). Returns (server, port).

    Stop it with `server.stop(grace=None)`.
    """
    service = LocalPredictionService(model_base_path, model_name=model_name, version=version)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
    bound = server.add_insecure_port(f"127.0.0.1:{int(port)}")
    if not bound:
        raise OSError(f"cannot bind 127.0.0.1:{port}")
    server.start()
    return server, bound
