"""`python -m tf_gru4rec.preprocess`: preprocesses a public data set into GRU4Rec's TSV splits.

Only the entry point (the command is `tf_gru4rec.cli.preprocess.main`): nothing imports this module, whose
name would shadow the package's function of the same name where there is one.
"""

import sys

from tf_gru4rec.cli.preprocess import main

if __name__ == "__main__":
    sys.exit(main())
