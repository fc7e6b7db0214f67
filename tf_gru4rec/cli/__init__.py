"""Stage 10, the command lines: one module per command, `common` for what they share.

Nothing in the library imports this package; each command is also a `python -m` entry point
(`tf_gru4rec.train`, ..., `tf_gru4rec.serving.client`)."""
