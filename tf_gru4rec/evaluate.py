"""`python -m tf_gru4rec.evaluate`: evaluates a model directory or baselines on test files.

Only the entry point (the command is `tf_gru4rec.cli.evaluate.evaluate_main`): nothing imports this module, whose
name would shadow the package's function of the same name where there is one.
"""

import sys

from tf_gru4rec.cli.evaluate import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
