#!/usr/bin/env bash
# Serves the exported GRU4Rec with TF Serving in Docker: gRPC on 8500, REST on 8501.
#
#   python -m tf_gru4rec.export MODEL_DIR --out export/models/gru4rec   # writes .../<version>/
#   export/run_tf_serving.sh                                            # then serve it
#   python -m tf_gru4rec.serving.client --server 127.0.0.1:8500 --model gru4rec --session s1 --items 1,2,3
#
# Environment: MODELS (the export base path, default export/models/gru4rec), HOST (host
# address the ports are published on, default 127.0.0.1; 0.0.0.0 for every interface),
# IMAGE (default tensorflow/serving). Extra arguments go to tensorflow_model_server.
# TF Serving polls MODELS for new numeric version folders and loads the highest one; it
# replays assets.extra/tf_serving_warmup_requests (stateless `step` calls) before serving.
set -euo pipefail
KIT="$(cd "$(dirname "$0")" && pwd)"
MODELS="$(cd "${MODELS:-$KIT/models/gru4rec}" && pwd)"
HOST="${HOST:-127.0.0.1}"
exec docker run --rm -p "$HOST:8500:8500" -p "$HOST:8501:8501" \
  --mount type=bind,source="$MODELS",target=/models/gru4rec \
  --mount type=bind,source="$KIT/batching_parameters.txt",target=/models/batching_parameters.txt,readonly \
  -e MODEL_NAME=gru4rec \
  "${IMAGE:-tensorflow/serving}" \
  --enable_batching --batching_parameters_file=/models/batching_parameters.txt "$@"
