"""Stage 0, system: what every stage may use: atomic files and model-dir checks, memory
estimates, log lines. No TensorFlow at import."""
