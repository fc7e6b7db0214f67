"""Stage 7, evaluation: full-catalogue Recall / MRR / NDCG under the next- and last-click
protocols and tie modes (`evaluator`), and the baselines (`baselines`)."""
