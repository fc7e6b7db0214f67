"""Stage 3, losses: GRU4Rec's losses on a step's sampled score matrix, one base class.

`get(name)` builds one by its reference name ('cross-entropy', 'bpr-max', 'top1-max', 'bpr',
'top1').
"""

from tf_gru4rec.losses.base import GRU4RecLoss
from tf_gru4rec.losses.ranking import BPR, LOSSES, TOP1, BPRMax, CrossEntropy, TOP1Max, get

__all__ = ["BPR", "BPRMax", "CrossEntropy", "GRU4RecLoss", "LOSSES", "TOP1", "TOP1Max", "get"]
