"""`python -m tf_gru4rec.train`: trains GRU4Rec; without TRAIN runs the embedded synthetic demo.

Only the entry point (the command is `tf_gru4rec.cli.train.train_main`): nothing imports this module, whose
name would shadow the package's function of the same name where there is one.
"""

import sys

from tf_gru4rec.cli.train import train_main

if __name__ == "__main__":
    sys.exit(train_main())
