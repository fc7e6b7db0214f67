"""Stage 9, serving: recommending under business rules (`rules`, `Recommender`), the SavedModel
export for TF Serving (`export`, `session_store`), a gRPC client and a local stand-in server.

- `GRU4RecClient` (`client.py`): session API on TF Serving's PredictionService
  (`python -m tf_gru4rec.serving.client`).
- `start_local_server` (`local_server.py`): a PredictionService on 127.0.0.1 running the
  SavedModel's signatures in-process, for tests and notebooks
  (`python -m tf_gru4rec.serving.local_server`).
"""

_EXPORTS = {
    "Recommender": "tf_gru4rec.serving.recommender",
    "export_model": "tf_gru4rec.serving.export",
    "GRU4RecClient": "tf_gru4rec.serving.client",
    "LocalPredictionService": "tf_gru4rec.serving.local_server",
    "start_local_server": "tf_gru4rec.serving.local_server",
}

__all__ = ["GRU4RecClient", "LocalPredictionService", "Recommender", "export_model", "start_local_server"]


def __getattr__(name):
    # Lazy, so `python -m tf_gru4rec.serving.client` does not find its module imported twice.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
