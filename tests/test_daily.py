"""Tests of `tf_gru4rec.daily` (python -m tf_gru4rec.daily): the day split, the sliding-window
protocol cold and warm side by side on synthetic sessions with real unix times, and its errors."""

import json

import numpy as np
import pandas as pd
import pytest

from tf_gru4rec.cli.daily import main
from tf_gru4rec.data.reading import DataError
from tf_gru4rec.data.synthetic import synthetic_sessions
from tf_gru4rec.training.daily import evaluation_days, session_days

TINY = "layers=8,batch_size=8,n_sample=8,learning_rate=0.1,momentum=0.3,n_epochs=1,seed=3,block_steps=20"
APRIL_1 = 1396310400  # 2014-04-01 00:00:00 UTC
DAY = 86400


def days(df):
    return pd.Series(session_days(df).astype(str), index=df.index)


def test_a_session_belongs_to_the_utc_day_of_its_first_event():
    df = pd.DataFrame({"SessionId": [1, 1, 1, 2, 2],
                       "Time": [APRIL_1 + DAY - 60, APRIL_1 + DAY + 60, APRIL_1 + 2 * DAY + 1,
                                APRIL_1 + DAY, APRIL_1 + DAY + 5]})
    assert list(days(df)) == ["2014-04-01"] * 3 + ["2014-04-02"] * 2


def test_evaluation_days_need_the_window_before_the_first():
    d = np.array(["2014-04-01", "2014-04-03", "2014-04-05"], dtype="datetime64[D]")
    assert [str(x) for x in evaluation_days(d, 2, 3)] == ["2014-04-03", "2014-04-04", "2014-04-05"]
    assert [str(x) for x in evaluation_days(d, 1, 2, "2014-04-03")] == ["2014-04-02", "2014-04-03"]
    with pytest.raises(DataError, match=r"^too few days: 3 window day\(s\) and 3 evaluated day\(s\) up to "
                                        r"2014-04-05 need data from 2014-03-31 to 2014-04-05; the data "
                                        r"covers 2014-04-01 to 2014-04-05$"):
        evaluation_days(d, 3, 3)
    with pytest.raises(DataError, match="too few days"):
        evaluation_days(d, 1, 1, "2014-04-06")


@pytest.mark.parametrize("times, message", [
    (np.arange(10.0) * 1000, "Time does not look like unix seconds (from 0 to 9000"),
    (APRIL_1 * 1000.0 + np.arange(10), "milliseconds? divide by 1000"),
])
def test_times_that_are_not_unix_seconds_are_refused(times, message):
    df = pd.DataFrame({"SessionId": np.arange(10) // 2, "ItemId": np.arange(10), "Time": times})
    with pytest.raises(DataError) as e:
        session_days(df)
    assert message in str(e.value)


@pytest.fixture(scope="module")
def four_days(tmp_path_factory):
    """800 synthetic sessions, 200 starting per day from 2014-04-01 (clicks a minute apart),
    and items 5000 and 5001, clicked on the first and the last day only."""
    df = synthetic_sessions(n_sessions=800, n_items=60, seed=7)
    position = df.groupby("SessionId").cumcount()
    df = df.assign(Time=APRIL_1 + df["SessionId"] * (DAY / 200) + 60.0 * position)
    rare = pd.DataFrame({"SessionId": [900] * 3 + [901] * 4, "ItemId": [5000, 5001, 5000, 5000, 5001, 1000, 5000],
                         "Time": APRIL_1 + np.r_[1000 + 60 * np.arange(3), 3 * DAY + 1000 + 60 * np.arange(4)]})
    df = pd.concat([df, rare], ignore_index=True)
    path = tmp_path_factory.mktemp("daily") / "clicks.tsv"
    df.to_csv(path, sep="\t", index=False)
    return df, path


def test_cold_and_warm_side_by_side(four_days, capsys):
    df, path = four_days
    status = main([str(path), "--window-days", "2", "--days", "2", "--params", TINY, "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    result = json.loads(out.splitlines()[-1])
    first, second = result["days"]
    assert [first["day"], second["day"]] == ["2014-04-03", "2014-04-04"]
    assert first["warm"] == first["cold"]  # no model of the day before: the warm model is the cold one
    day = days(df)
    for row in (first, second):
        d = np.datetime64(row["day"])
        window = df[(day >= str(d - 2)) & (day < row["day"])]
        assert row["cold"]["train_clicks"] == len(window) and row["cold"]["items"] == window["ItemId"].nunique()
        # Both are evaluated on the day's clicks on items the cold model knows.
        test = df[day == row["day"]]
        known = test[test["ItemId"].isin(set(window["ItemId"]))]
        sizes = known.groupby("SessionId").size()
        assert row["test_events"] == int((sizes[sizes >= 2] - 1).sum())
        assert row["skipped"] == len(test) - len(known)
        for mode in ("cold", "warm"):
            assert 0 < row[mode]["mrr@20"] < row[mode]["recall@20"] <= 1 and row[mode]["train_seconds"] > 0
    assert second["skipped"] >= 3  # 5000 and 5001: known to the warm model, not to the cold one
    yesterday = df[day == "2014-04-03"]
    assert second["warm"]["train_clicks"] == len(yesterday)
    assert second["warm"]["items"] == len(set(df[day < "2014-04-04"]["ItemId"]))  # grown since the start
    mean = result["mean"]
    assert mean["cold"]["recall@20"] == pytest.approx((first["cold"]["recall@20"] + second["cold"]["recall@20"]) / 2)
    assert mean["test_events"] == first["test_events"] + second["test_events"]
    lines = err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| day |"))
    assert lines[header] == ("| day | test events | cold Recall@20 | cold MRR@20 | cold train s | cold train clicks"
                             " | warm Recall@20 | warm MRR@20 | warm train s | warm train clicks |")
    first_cells = [line.split(" | ")[0] for line in lines[header + 2: header + 5]]
    assert first_cells == ["| 2014-04-03", "| 2014-04-04", "| mean"]


def test_bad_input_and_settings_are_one_line(four_days, tmp_path, capsys):
    df, path = four_days
    ordinal = tmp_path / "ordinal.tsv"
    df.assign(Time=np.arange(len(df), dtype=float)).to_csv(ordinal, sep="\t", index=False)
    for argv, status, message in [
        ([ordinal, "--window-days", "1", "--days", "1"], 1, "Time does not look like unix seconds"),
        ([path, "--window-days", "3", "--days", "2"], 1, "too few days: 3 window day(s) and 2 evaluated"),
        ([path, "--window-days", "0", "--days", "2"], 2, "expected a positive integer, got '0'"),
        ([path, "--window-days", "1", "--days", "2", "--last-day", "April"], 2, "--last-day: not a date"),
        ([path, "--window-days", "1", "--days", "2", "--params", "layers=x"], 2, "invalid value for layers"),
    ]:
        assert main([str(a) for a in argv]) == status
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and message in err, err



@pytest.fixture
def fake_training(monkeypatch):
    """train and evaluate as stand-ins that check their data as the real ones do (SessionData
    from the frame: DataError without a usable session). A model records the events of each
    training it went through (`trained`); warm starts grow its item map. Returns the list of
    the models evaluated, in order."""
    from types import SimpleNamespace

    from tf_gru4rec.data.item_map import ItemMap
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation import evaluator as evaluation
    from tf_gru4rec.training import trainer as training
    from tf_gru4rec.training import warm_start

    def train(data, params, verbose=0, init_from=None):
        data = data if isinstance(data, SessionData) else SessionData.from_frame(data)
        ids = data.item_map.ids if init_from is None else pd.unique(np.r_[init_from.item_map.ids, data.item_map.ids])
        trained = [] if init_from is None else init_from.trained
        model = SimpleNamespace(item_map=ItemMap(ids), n_items=len(ids), trained=trained + [data.n_events])
        return SimpleNamespace(model=model, train_seconds=1.0)

    evaluated = []

    def evaluate(model, test, cutoffs, mode):
        data = evaluation.as_session_data(test, model.item_map)
        evaluated.append(model)
        return {"n_events": data.n_examples, "recall@20": 0.5, "mrr@20": 0.25}

    monkeypatch.setattr(training, "train", train)
    monkeypatch.setattr(evaluation, "evaluate", evaluate)
    monkeypatch.setattr(warm_start, "WarmStart", lambda model, optimizer_state: model)
    return evaluated


@pytest.fixture(scope="module")
def gap_day(tmp_path_factory):
    """1000 synthetic sessions, 200 a day from 2014-04-01 to 2014-04-05, with no session on 2014-04-03."""
    df = synthetic_sessions(n_sessions=1000, n_items=60, seed=5)
    position = df.groupby("SessionId").cumcount()
    df = df.assign(Time=APRIL_1 + df["SessionId"] * (DAY / 200) + 60.0 * position)
    df = df[days(df) != "2014-04-03"]
    path = tmp_path_factory.mktemp("gap") / "clicks.tsv"
    df.to_csv(path, sep="\t", index=False)
    return df, path


def test_a_day_without_data_is_reported_and_the_run_goes_on(gap_day, fake_training, capsys):
    df, path = gap_day
    status = main([str(path), "--window-days", "1", "--days", "4", "--params", TINY, "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    result = json.loads(out.splitlines()[-1])
    assert [r["day"] for r in result["days"]] == ["2014-04-02", "2014-04-03", "2014-04-04", "2014-04-05"]
    first, no_test, no_window, last = result["days"]
    assert no_test == {"day": "2014-04-03", "not_evaluated": "the sessions of 2014-04-03 on the window's items: no rows"}
    assert no_window == {"day": "2014-04-04", "not_evaluated": "the window 2014-04-03 to 2014-04-03: no rows; "
                                                               "the sessions of 2014-04-03: no rows"}
    assert first["warm"] == first["cold"] and last["cold"]["train_clicks"] == last["warm"]["train_clicks"]
    assert result["mean"]["days"] == 2 and result["mean"]["test_events"] == first["test_events"] + last["test_events"]
    assert "2 of 4 day(s) not evaluated (no usable sessions): 2014-04-03, 2014-04-04" in err
    assert "| 2014-04-04 | not evaluated: the window 2014-04-03 to 2014-04-03: no rows; " in err


def test_a_run_that_evaluates_no_day_fails_after_its_table(gap_day, fake_training, capsys):
    _, path = gap_day
    status = main([str(path), "--window-days", "1", "--days", "2", "--last-day", "2014-04-04",
                   "--params", TINY])
    out, err = capsys.readouterr()
    assert status == 1
    assert "| 2014-04-03 | not evaluated: " in out and "| 2014-04-04 | not evaluated: " in out
    assert err.splitlines()[-1] == ("tf_gru4rec.daily: error: no day could be evaluated (2 day(s) without "
                                    "usable sessions; see the table): check --days, --window-days and --last-day")


def test_the_warm_chain_goes_on_through_days_not_evaluated(gap_day, fake_training):
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.training.daily import run_daily

    df, _ = gap_day
    events = {d: SessionData.from_frame(df[days(df) == d]).n_events for d in ("2014-04-01", "2014-04-02", "2014-04-04")}
    rows = run_daily(df, TINY, 1, 4, modes=("warm",))
    models = fake_training
    # The warm model of 04-05: the cold one of 04-02 (window 04-01), trained on 04-02 (on 04-03),
    # unchanged on 04-04 (nothing on 04-03), then trained on 04-04.
    assert models[-1].trained == [events["2014-04-01"], events["2014-04-02"], events["2014-04-04"]]
    assert [r["day"] for r in rows if "not_evaluated" in r] == ["2014-04-03", "2014-04-04"]
    assert rows[-1]["warm"]["items"] == df[days(df) < "2014-04-05"]["ItemId"].nunique()
