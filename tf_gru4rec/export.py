"""`python -m tf_gru4rec.export`: writes a model directory as a SavedModel for TF Serving.

Only the entry point (the command is `tf_gru4rec.cli.export.export_main`): nothing imports this module, whose
name would shadow the package's function of the same name where there is one.
"""

import sys

from tf_gru4rec.cli.export import export_main

if __name__ == "__main__":
    sys.exit(export_main())
