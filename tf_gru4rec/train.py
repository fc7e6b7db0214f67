"""`python -m tf_gru4rec.train [TRAIN] [--test TEST ...] [--params K=V,...] [--save DIR] ...`

Trains GRU4Rec; without TRAIN runs the embedded synthetic demo. The command is
`tf_gru4rec.cli.train_main` (see there why this module holds only the entry point).
"""

import sys

from tf_gru4rec.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
