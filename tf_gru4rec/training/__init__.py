"""Stage 8, training: the parameters (`params`), `train()` (`trainer`), its callbacks and
checkpoints, model directories, warm start, tf.distribute, day-by-day retraining (`daily`)
and the Optuna search (`tune`)."""
