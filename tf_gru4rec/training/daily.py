"""Day-by-day retraining and evaluation: how a recommender retrained every night performs.

    python -m tf_gru4rec.daily DATA [DATA ...] --window-days W --days D [--last-day YYYY-MM-DD]
        [--mode cold|warm|both] [--param-file NAME] [--params K=V,...] [--warm-optimizer carry|reset]

The files are concatenated (a session id in two files is one session). Time must be unix
seconds. Every session belongs, whole, to the calendar day (UTC) of its first event: a
session that crosses midnight stays in the day it started, so a day's training data can hold
a few clicks made after its midnight, but never a click of a session evaluated the next day.

The evaluated days are the last D days up to `--last-day` (default: the last day with data).
For each evaluated day d:
- cold: a fresh model trained on the sessions of the W days before d (d-W .. d-1);
- warm: the model of day d-1 trained further on the sessions of day d-1 only
  (`train(..., init_from=...)`: the item map grows by the day's new items). The first
  evaluated day has no model of the day before: its warm model is the cold one.
Each model is evaluated on the sessions of day d (full catalogue, `evaluation.evaluate`).
The warm model knows every item since the first window, the cold one only the window's: in
every mode, the day's clicks on items absent from the window are skipped (counted as
`skipped`), so cold and warm columns, and runs of different modes, count the same events.

A day is not evaluated, and the run goes on, when a slice it needs has no usable sessions
(none, or none of 2 or more clicks): the window, day d-1 (warm: what the model of the day
before trains on) or day d. Its row says why (`not_evaluated`) and the mean leaves it out.
The warm chain goes on regardless: on such a day the warm model still trains on day d-1
if it can, and stays as it was if day d-1 has nothing to train on.

Output: a Markdown table, one row per day and the mean over the evaluated days (stdout; with
--json the table goes to stderr and the last stdout line is {"days": [...], "mean": {...}}).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tf_gru4rec.system.console import log

SECONDS_PER_DAY = 86_400
#: Unix seconds of 2000-01-01 and 2100-01-01 (UTC): times outside are not unix seconds.
PLAUSIBLE_SECONDS = (946_684_800, 4_102_444_800)
MODES = ("cold", "warm")


def session_days(df: pd.DataFrame, source="data") -> np.ndarray:
    """Per row, the UTC calendar day (datetime64[D]) of its session's first event.

    Raises:
        DataError: Time does not look like unix seconds (dates outside 2000-2100).
    """
    from tf_gru4rec.data.reading import (
        DataError,  # data imports TensorFlow: not before --help
    )

    lo, hi = float(df["Time"].min()), float(df["Time"].max())
    if lo < PLAUSIBLE_SECONDS[0] or hi >= PLAUSIBLE_SECONDS[1]:
        hint = "; milliseconds? divide by 1000" if lo >= 1000 * PLAUSIBLE_SECONDS[0] else ""
        raise DataError(f"{source}: Time does not look like unix seconds (from {lo:g} to {hi:g}, "
                        f"not dates between 2000 and 2100{hint}); days cannot be told apart")
    first = df.groupby("SessionId")["Time"].transform("min").to_numpy()
    return (first // SECONDS_PER_DAY).astype(np.int64).astype("datetime64[D]")


def evaluation_days(days: np.ndarray, window_days: int, n_days: int, last_day=None) -> list:
    """The `n_days` days up to `last_day` (default: the last day in `days`).

    Raises:
        DataError: the data does not reach back `window_days` days before the first of them.
    """
    from tf_gru4rec.data.reading import DataError

    first_data, last_data = days.min(), days.max()
    last = last_data if last_day is None else np.datetime64(last_day, "D")
    first = last - (n_days - 1)
    if first - window_days < first_data or last > last_data:
        raise DataError(f"too few days: {window_days} window day(s) and {n_days} evaluated day(s) "
                        f"up to {last} need data from {first - window_days} to {last}; "
                        f"the data covers {first_data} to {last_data}")
    return [first + i for i in range(n_days)]


def run_daily(df, params, window_days: int, n_days: int, last_day=None, modes=MODES,
              optimizer_state: str = "carry", cutoff: int = 20, tie_mode: str = "conservative",
              verbose=0, source="data") -> list[dict]:
    """Runs the sliding-window protocol (see the module docstring).

    Returns one dict per day: `day`, and either `not_evaluated` (why: a slice without
    usable sessions) or `test_events` (events evaluated), `skipped` (test clicks on items
    unknown to a model) and per mode {recall@k, mrr@k, train_seconds, train_clicks, items}.
    """
    from tf_gru4rec.data.reading import DataError
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.training import trainer
    from tf_gru4rec.training.params import parse_params
    from tf_gru4rec.training.warm_start import WarmStart

    def train(frame, what, init_from=None):
        data = SessionData.from_frame(frame, source=what)  # DataError: no usable session
        return trainer.train(data, params, verbose=verbose, init_from=init_from), len(frame)

    params = parse_params(params)
    days = session_days(df, source)
    evaluated = evaluation_days(days, window_days, n_days, last_day)
    log(f"{source}: {len(df)} clicks from {days.min()} to {days.max()}; evaluating "
        f"{evaluated[0]} to {evaluated[-1]}, {'/'.join(modes)}, {params.to_string()}")
    previous = None  # the warm model of the day before
    rows = []
    for day in evaluated:
        log(f"day {day}:")
        runs, reasons = {}, []
        window = df[(days >= day - window_days) & (days < day)]
        if "cold" in modes or previous is None:
            try:
                runs["cold"] = train(window, f"the window {day - window_days} to {day - 1}")
            except DataError as e:
                reasons.append(str(e))
        if "warm" in modes:
            if previous is None:
                if "cold" in runs:
                    runs["warm"] = runs["cold"]
            else:
                try:
                    runs["warm"] = train(df[days == day - 1], f"the sessions of {day - 1}",
                                         WarmStart(previous, optimizer_state))
                except DataError as e:  # nothing to continue on: the model stays as it was
                    reasons.append(str(e))
            if "warm" in runs:
                previous = runs["warm"][0].model
        runs = {m: r for m, r in runs.items() if m in modes}
        test = df[days == day]
        test_known = test[test["ItemId"].isin(set(window["ItemId"]))]  # the cold model's items
        row = {"day": str(day), "skipped": len(test) - len(test_known)}
        if not reasons:
            try:
                row.update(evaluate_runs(runs, test_known, cutoff, tie_mode,
                                         f"the sessions of {day} on the window's items"))
            except DataError as e:
                reasons.append(str(e))
        if reasons:
            row = {"day": str(day), "not_evaluated": "; ".join(reasons)}
            log(f"  not evaluated: {row['not_evaluated']}")
        rows.append(row)
    missed = [r["day"] for r in rows if "not_evaluated" in r]
    if missed:
        log(f"{len(missed)} of {len(rows)} day(s) not evaluated (no usable sessions): {', '.join(missed)}")
    return rows


def evaluate_runs(runs: dict, test: pd.DataFrame, cutoff: int, tie_mode: str, source: str) -> dict:
    """Evaluates each mode's (TrainResult, training clicks) on the rows `test`: returns
    {test_events, mode: {recall@k, mrr@k, train_seconds, train_clicks, items}}.

    Raises:
        DataError: `test` has no session of 2 or more clicks (the message starts with `source`).
    """
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation import evaluator

    out = {}
    for mode, (result, clicks) in runs.items():
        model = result.model
        data = SessionData.from_frame(test, model.item_map, source=source)
        metrics = evaluator.evaluate(model, data, [cutoff], tie_mode)
        recall, mrr = metrics[f"recall@{cutoff}"], metrics[f"mrr@{cutoff}"]
        out["test_events"] = metrics["n_events"]
        out[mode] = {f"recall@{cutoff}": recall, f"mrr@{cutoff}": mrr, "items": model.n_items,
                     "train_seconds": result.train_seconds, "train_clicks": clicks}
        log(f"  {mode}: trained on {clicks} clicks in {result.train_seconds:.1f} s, {model.n_items} "
            f"items; Recall@{cutoff} {recall:.4f}, MRR@{cutoff} {mrr:.4f} on {metrics['n_events']} events")
    return out


def mean_row(rows: list[dict], modes=MODES) -> dict:
    """The mean over the evaluated days of every per-mode figure, the summed test events
    and skipped clicks, and `days`: how many days were evaluated."""
    rows = [r for r in rows if "not_evaluated" not in r]
    out = {"day": "mean", "days": len(rows), "test_events": sum(r["test_events"] for r in rows),
           "skipped": sum(r["skipped"] for r in rows)}
    for mode in modes if rows else ():
        out[mode] = {k: float(np.mean([r[mode][k] for r in rows])) for k in rows[0][mode]}
    return out


def table(rows: list[dict], modes=MODES, cutoff: int = 20) -> str:
    """Markdown: day, test events, then Recall@k, MRR@k, train s, train clicks per mode; a
    day not evaluated says why in its test-events cell."""
    head = ["day", "test events"]
    for mode in modes:
        head += [f"{mode} Recall@{cutoff}", f"{mode} MRR@{cutoff}", f"{mode} train s",
                 f"{mode} train clicks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "not_evaluated" in r:
            cells = [r["day"], f"not evaluated: {r['not_evaluated']}"] + [""] * (len(head) - 2)
        else:
            cells = [r["day"], f"{r['test_events']:,}"]
            for mode in modes:  # no figures: a mean over no evaluated day
                m = r.get(mode)
                cells += ["-"] * 4 if m is None else [
                    f"{m[f'recall@{cutoff}']:.4f}", f"{m[f'mrr@{cutoff}']:.4f}",
                    f"{m['train_seconds']:.1f}", f"{m['train_clicks']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
