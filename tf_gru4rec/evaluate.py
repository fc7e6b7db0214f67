"""`python -m tf_gru4rec.evaluate MODEL_DIR TEST ...` or `--baseline NAME TRAIN TEST ...`

Recall@K / MRR@K of a saved model or a baseline. The command is
`tf_gru4rec.cli.evaluate_main` (see there why this module holds only the entry point).
"""

import sys

from tf_gru4rec.cli import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
