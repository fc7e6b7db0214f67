"""`python -m tf_gru4rec.daily`: day-by-day retraining and evaluation.

Only the entry point (the command is `tf_gru4rec.cli.daily.main`): nothing imports this module, whose
name would shadow the package's function of the same name where there is one.
"""

import sys

from tf_gru4rec.cli.daily import main

if __name__ == "__main__":
    sys.exit(main())
