"""Tests of tf_gru4rec.data.preprocess, its command and the gru4rec_sessions TFDS builder.

Every test writes a tiny raw file (or frame) by hand and checks exact rows or
counts worked out by hand in the comments.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tf_gru4rec.cli import preprocess as preprocess_cli
from tf_gru4rec.data import preprocess

T0 = 1396310400.0  # 2014-04-01T00:00:00Z
HEADER = "SessionId\tItemId\tTime"


def frame(rows):
    """rows of (session, item, time) -> canonical frame."""
    s, i, t = zip(*rows, strict=True)
    return preprocess._frame(s, i, t)


def rows_of(df):
    return [
        (int(s), int(i), float(t))
        for s, i, t in df[["SessionId", "ItemId", "Time"]].itertuples(index=False)
    ]


def iso(seconds):
    """Unix seconds -> YOOCHOOSE timestamp string (ms precision, Z suffix)."""
    ts = pd.Timestamp(round(seconds * 1000), unit="ms", tz="UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def write_yoochoose(path, rows):
    """rows of (session, time seconds, item) -> headerless yoochoose click file."""
    path.write_text("".join(f"{s},{iso(t)},{i},0\n" for s, t, i in rows))
    return path


# Six 2-click sessions of items 1 -> 2 (60 s apart), placed so that with the
# RSC15 rule: tmax = T0+3d+1h+60s, test boundary = T0+2d+1h+60s -> sessions 5, 6
# are test; train tmax = T0+1d+2h+60s, boundary T0+2h+60s -> 1, 2 train_tr and
# 3, 4 train_valid. Session 7 is a single click (dropped).
H, D = 3600.0, 86400.0
RSC15_STARTS = {1: 0.123, 2: H, 3: D + H, 4: D + 2 * H, 5: 3 * D, 6: 3 * D + H}


def rsc15_rows():
    rows = []
    for s, start in RSC15_STARTS.items():
        rows += [(s, T0 + start, 1), (s, T0 + start + 60, 2)]
    rows.append((7, T0 + 2 * H, 3))
    return rows


@pytest.fixture
def rsc15_raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    return write_yoochoose(raw / "yoochoose-clicks.dat", rsc15_rows())


# ----------------------------------------------------------------- readers ---


def test_load_raw_rsc15_parses_iso_time_to_unix_seconds(tmp_path):
    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text(
        "1,2014-04-01T00:00:00.123Z,214536502,0\n1,2014-04-07T10:51:09.277Z,214536500,S\n"
    )
    df = preprocess.load_raw_rsc15(str(path))
    assert list(df.columns) == ["SessionId", "ItemId", "Time"]
    assert df.dtypes.tolist() == [np.int64, np.int64, np.float64]
    assert rows_of(df) == [(1, 214536502, 1396310400.123), (1, 214536500, 1396867869.277)]


def test_load_raw_yoochoose_adds_test_file_from_same_folder(tmp_path):
    write_yoochoose(tmp_path / "yoochoose-clicks.dat", [(1, T0, 10)])
    write_yoochoose(tmp_path / "yoochoose-test.dat", [(9, T0 + 5, 11)])
    df = preprocess.load_raw_yoochoose(str(tmp_path / "yoochoose-clicks.dat"))
    assert rows_of(df) == [(1, 10, T0), (9, 11, T0 + 5)]
    # rsc15 reads the clicks file only.
    assert rows_of(preprocess.load_raw_rsc15(str(tmp_path / "yoochoose-clicks.dat"))) == [(1, 10, T0)]


def test_load_raw_diginetica_time_is_first_eventdate_plus_timeframe(tmp_path):
    path = tmp_path / "train-item-views.csv"
    path.write_text(
        "sessionId;userId;itemId;timeframe;eventdate\n"
        "1;NA;81766;526309;2016-05-09\n"
        "1;;31331;1031018;2016-05-09\n"
        # session 2 crosses midnight: its clock starts on its first day (05-09)
        "2;5;9654;90000000;2016-05-10\n"
        "2;5;33043;0;2016-05-09\n"
    )
    day = 1462752000.0  # 2016-05-09T00:00:00Z
    assert rows_of(preprocess.load_raw_diginetica(str(path))) == [
        (1, 81766, day + 526.309),
        (1, 31331, day + 1031.018),
        (2, 9654, day + 90000.0),
        (2, 33043, day),
    ]


def test_load_raw_retailrocket_views_only_and_one_hour_gap(tmp_path):
    path = tmp_path / "events.csv"
    t = 1433221332117  # ms
    path.write_text(
        "timestamp,visitorid,event,itemid,transactionid\n"
        f"{t},7,view,100,\n"
        f"{t + 3_600_000 + 3_600_001},7,view,102,\n"  # > 1 h after the previous view
        f"{t + 3_600_000},7,view,101,\n"  # exactly 1 h after the first: same session
        f"{t + 10},7,addtocart,100,\n"
        f"{t + 20},3,view,200,\n"
        f"{t + 30},3,transaction,200,4000\n"
    )
    s = t / 1000
    # Sorted by visitor then time; ids 0.. in that order.
    assert rows_of(preprocess.load_raw_retailrocket(str(path))) == [
        (0, 200, s + 0.02),
        (1, 100, s),
        (1, 101, s + 3600),
        (2, 102, s + 7200.001),
    ]


# --------------------------------------------------------------- filtering ---


def rsc15_filter_rows():
    # s10 = [2] single; s11 = [1, 2]; s12 = [3, 2]; s13, s14 = [1, 3, 2]; s15, s16 = [3, 1]
    # clicks: item 1: 5, item 2: 5 (4 after s10 goes), item 3: 5.
    sessions = {
        10: [2],
        11: [1, 2],
        12: [3, 2],
        13: [1, 3, 2],
        14: [1, 3, 2],
        15: [3, 1],
        16: [3, 1],
    }
    return [
        (s, item, float(10 * s + k))
        for s, items in sessions.items()
        for k, item in enumerate(items)
    ]


def test_filter_rsc15_is_one_pass_in_order():
    out = preprocess.filter_rsc15(frame(rsc15_filter_rows()))
    # 1) s10 dropped; 2) item 2 has 4 clicks -> dropped; 3) s11 = [1] and s12 = [3] dropped.
    # Items 1 and 3 now have 4 clicks each but are NOT filtered again.
    assert rows_of(out) == [
        (13, 1, 130.0),
        (13, 3, 131.0),
        (14, 1, 140.0),
        (14, 3, 141.0),
        (15, 3, 150.0),
        (15, 1, 151.0),
        (16, 3, 160.0),
        (16, 1, 161.0),
    ]
    # The iterated filter goes on until items 1 and 3 fall below 5 too: nothing is left.
    assert preprocess.filter_iterative(frame(rsc15_filter_rows())).empty


def test_filter_rsc15_keeps_duplicates():
    # Three sessions [5, 5]: repeated clicks count, so item 5 has 6 clicks and all stay.
    rows = [(s, 5, float(k)) for s in range(1, 4) for k in range(2)]
    assert rows_of(preprocess.filter_rsc15(frame(rows))) == rows
    assert preprocess.filter_iterative(frame(rows)).empty  # de-duplicated: one-click sessions


def test_remove_consecutive_duplicates_sorts_by_session_time_item():
    df = frame(
        [
            (1, 5, 3.0),
            (1, 4, 1.0),
            (1, 4, 2.0),
            (1, 5, 2.0),
            (1, 4, 4.0),
            (2, 6, 1.0),
            (2, 4, 0.0),
        ]
    )
    # s1 sorted by (time, item): 4@1, 4@2, 5@2, 5@3, 4@4 -> duplicates 4@2 and 5@3 go,
    # the return to item 4 at t=4 stays; s2 starts with 4 after s1 ended with 4: kept.
    assert rows_of(preprocess.remove_consecutive_duplicates(df)) == [
        (1, 4, 1.0),
        (1, 5, 2.0),
        (1, 4, 4.0),
        (2, 4, 0.0),
        (2, 6, 1.0),
    ]


def test_filter_iterative_runs_to_a_fixed_point():
    sessions = {s: [1, 2] for s in range(1, 6)}
    # Item 7: 5 clicks, 4 after de-duplication (s7 clicks it twice in a row).
    sessions.update({6: [7, 8], 7: [7, 7, 1], 8: [7, 2], 9: [7, 2]})
    # Item 8: 5 clicks (s6 and these four).
    sessions.update({10: [8, 1], 11: [8, 2], 12: [8, 1], 13: [8, 2]})
    sessions[14] = [9]  # a one-click session
    df = frame(
        [
            (s, item, float(10 * s + k))
            for s, items in sessions.items()
            for k, item in enumerate(items)
        ]
    )
    # Round 1: s14 and item 7 go -> s6..s9 become one-click.
    # Round 2: s6..s9 go, item 8 falls to 4 and goes -> s10..s13 become one-click.
    # Round 3: s10..s13 go (items 1, 2 keep 5 clicks). Round 4: no change.
    out = preprocess.filter_iterative(df)
    assert rows_of(out) == [
        (s, item, float(10 * s + k)) for s in range(1, 6) for k, item in enumerate([1, 2])
    ]
    # One round only would still hold s10..s13.
    assert preprocess.filter_rsc15(df)["SessionId"].nunique() > 5


# --------------------------------------------------------------- splitting ---


def test_split_rsc15_last_day_by_session_end_and_train_items_only():
    tmax = 200_000.0
    boundary = tmax - 86_400  # 113,600
    df = frame(
        [
            (1, 1, 0.0),
            (1, 2, 100.0),
            (2, 2, 100_000.0),
            (2, 3, boundary - 1),  # ends just before: train
            (3, 3, 100_000.0),
            (3, 1, boundary),  # ends at the boundary: test (whole session)
            (4, 1, 150_000.0),
            (4, 9, tmax),  # 9 unseen in train -> [1] -> dropped
            (5, 1, 160_000.0),
            (5, 9, 160_001.0),
            (5, 2, 160_002.0),  # -> [1, 2]
        ]
    )
    train, test = preprocess.split_rsc15(df)
    assert rows_of(train) == [(1, 1, 0.0), (1, 2, 100.0), (2, 2, 100_000.0), (2, 3, boundary - 1)]
    assert rows_of(test) == [
        (3, 3, 100_000.0),
        (3, 1, boundary),
        (5, 1, 160_000.0),
        (5, 2, 160_002.0),
    ]


def test_split_by_window_sessions_starting_in_window():
    df = frame(
        [
            (1, 1, 0.0),
            (1, 2, 10.0),
            (2, 1, 150.0),
            (2, 2, 199.0),
            (2, 3, 250.0),  # starts before 200: train, cut at 200
            (3, 3, 190.0),
            (3, 1, 210.0),  # cut to one event -> dropped from train, not test
            (4, 2, 200.0),
            (4, 1, 230.0),  # starts at the window start: test
            (5, 1, 260.0),
            (5, 99, 300.0),  # item 99 unseen in train stays in test
        ]
    )
    train, test = preprocess.split_by_window(df, 100)  # window [200, 300]
    assert rows_of(train) == [(1, 1, 0.0), (1, 2, 10.0), (2, 1, 150.0), (2, 2, 199.0)]
    assert rows_of(test) == [(4, 2, 200.0), (4, 1, 230.0), (5, 1, 260.0), (5, 99, 300.0)]
    # One window earlier: [100, 200).
    tr, valid = preprocess.split_by_window(train, 100, end=200.0)
    assert rows_of(tr) == [(1, 1, 0.0), (1, 2, 10.0)]
    assert rows_of(valid) == [(2, 1, 150.0), (2, 2, 199.0)]


# ---------------------------------------------------------------- pipeline ---


def read_tsv(path):
    return pd.read_csv(path, sep="\t")


def test_cli_rsc15_writes_four_files_and_prints_table(rsc15_raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert preprocess_cli.main(["rsc15", str(rsc15_raw), str(out)]) == 0
    # Atomic writes leave exactly the four files, no temporaries.
    assert sorted(os.listdir(out)) == [
        "test.tsv",
        "train_full.tsv",
        "train_tr.tsv",
        "train_valid.tsv",
    ]
    expected_sessions = {
        "train_full": [1, 2, 3, 4],
        "test": [5, 6],
        "train_tr": [1, 2],
        "train_valid": [3, 4],
    }
    for name, sessions in expected_sessions.items():
        text = (out / f"{name}.tsv").read_text()
        assert text.splitlines()[0] == HEADER
        df = read_tsv(out / f"{name}.tsv")
        assert df["SessionId"].tolist() == [s for s in sessions for _ in range(2)]
        assert df["ItemId"].tolist() == [1, 2] * len(sessions)
        assert df["Time"].tolist() == [T0 + RSC15_STARTS[s] + d for s in sessions for d in (0, 60)]
    assert (out / "train_full.tsv").read_text().splitlines()[1] == "1\t1\t1396310400.123"
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["file", "events", "sessions", "items"]
    assert [line.split() for line in table[1:]] == [
        ["train_full", "8", "4", "2"],
        ["test", "4", "2", "2"],
        ["train_tr", "4", "2", "2"],
        ["train_valid", "4", "2", "2"],
    ]


def test_preprocess_accepts_folder_and_overwrites(rsc15_raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "test.tsv").write_text("stale\n")
    splits = preprocess.preprocess("rsc15", str(rsc15_raw.parent), str(out))
    assert {k: len(v) for k, v in splits.items()} == {
        "train_full": 8,
        "test": 4,
        "train_tr": 4,
        "train_valid": 4,
    }
    assert read_tsv(out / "test.tsv")["SessionId"].tolist() == [5, 5, 6, 6]
    assert len(os.listdir(out)) == 4


def test_write_tsv_failure_keeps_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "test.tsv"
    preprocess.write_tsv(frame([(1, 2, 3.5)]), str(path))
    assert path.read_text() == f"{HEADER}\n1\t2\t3.5\n"
    with pytest.raises(KeyError):
        preprocess.write_tsv(pd.DataFrame({"x": [1]}), str(path))  # fails after the temp file exists
    assert os.listdir(tmp_path) == ["test.tsv"]
    assert path.read_text() == f"{HEADER}\n1\t2\t3.5\n"


def test_preprocess_yoochoose_windows_and_dedup(tmp_path):
    # Sessions (2 clicks of items 1 -> 2, 60 s apart) starting at T0 + offset.
    starts = {1: 0, 2: H, 3: D + H, 4: D + 2 * H, 5: 3 * D}
    rows = [
        (s, T0 + st + d, item) for s, st in starts.items() for d, item in ((0, 1), (30, 1), (60, 2))
    ]
    write_yoochoose(tmp_path / "yoochoose-clicks.dat", rows)  # the 30 s click repeats item 1
    write_yoochoose(
        tmp_path / "yoochoose-test.dat", [(6, T0 + 3 * D + H, 2), (6, T0 + 3 * D + H + 60, 1)]
    )
    splits = preprocess.preprocess(
        "yoochoose", str(tmp_path / "yoochoose-clicks.dat"), str(tmp_path / "out")
    )
    # tmax = T0+3d+1h+60 -> test window starts T0+2d+1h+60: sessions 5, 6 start in it.
    # Validation window [T0+1d+1h+60, T0+2d+1h+60): session 4 starts in it; session 3 starts
    # 60 s before it, so train_tr keeps only its first click and then drops it (length 1).
    expected = {"train_full": [1, 2, 3, 4], "test": [5, 6], "train_tr": [1, 2], "train_valid": [4]}
    for name, sessions in expected.items():
        df = splits[name]
        assert df["SessionId"].tolist() == [s for s in sessions for _ in range(2)], name
    assert rows_of(splits["test"]) == [
        (5, 1, T0 + 3 * D),
        (5, 2, T0 + 3 * D + 60),
        (6, 2, T0 + 3 * D + H),
        (6, 1, T0 + 3 * D + H + 60),
    ]


def test_preprocess_diginetica_end_to_end(tmp_path):
    day = 1462752000.0  # 2016-05-09
    lines = ["sessionId;userId;itemId;timeframe;eventdate"]
    # Sessions of items 5 -> 6 (1.5 s apart) on days 0, 1, 8, 16, 16. tmax = day 16 + 1.5 s:
    # test window starts day 9 + 1.5 s (sessions 4, 5), validation window day 2 + 1.5 s (3).
    for s, d in {1: 0, 2: 1, 3: 8, 4: 16, 5: 16}.items():
        date = pd.Timestamp(day + d * D, unit="s").strftime("%Y-%m-%d")
        lines += [f"{s};;5;0;{date}", f"{s};;6;1500;{date}"]
    path = tmp_path / "train-item-views.csv"
    path.write_text("\n".join(lines) + "\n")
    splits = preprocess.preprocess("diginetica", str(path), str(tmp_path / "out"))
    assert {k: sorted(set(v["SessionId"])) for k, v in splits.items()} == {
        "train_full": [1, 2, 3],
        "test": [4, 5],
        "train_tr": [1, 2],
        "train_valid": [3],
    }
    assert rows_of(splits["test"])[:2] == [(4, 5, day + 16 * D), (4, 6, day + 16 * D + 1.5)]


# ------------------------------------------------------------------ errors ---


def run_main_error(argv):
    with pytest.raises(SystemExit) as e:
        preprocess_cli.main(argv)
    message = e.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message
    return message


def test_error_missing_file(tmp_path):
    missing = str(tmp_path / "nope.dat")
    assert (
        run_main_error(["rsc15", missing, str(tmp_path / "out")])
        == f"error: raw file not found: {missing}"
    )
    assert not (tmp_path / "out").exists()


def test_error_missing_file_cli_has_no_traceback(tmp_path):
    missing = str(tmp_path / "nope.csv")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_gru4rec.preprocess",
            "diginetica",
            missing,
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"error: raw file not found: {missing}"]


def test_error_missing_columns(tmp_path):
    path = tmp_path / "train-item-views.csv"
    path.write_text("sessionId;userId;timeframe;eventdate\n1;;0;2016-05-09\n")
    message = run_main_error(["diginetica", str(path), str(tmp_path / "out")])
    assert message.startswith(f"error: {path}: missing column(s) itemId;")
    path = tmp_path / "events.csv"
    path.write_text("timestamp,visitorid,itemid\n1,2,3\n")
    message = run_main_error(["retailrocket", str(path), str(tmp_path / "out")])
    assert message.startswith(f"error: {path}: missing column(s) event;")
    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text("1,2014-04-01T00:00:00.000Z\n")
    message = run_main_error(["rsc15", str(path), str(tmp_path / "out")])
    assert message.startswith(f"error: {path}: expected comma separated columns")


def test_error_unparsable_time_and_ids(tmp_path):
    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text("1,yesterday,10,0\n")
    message = run_main_error(["rsc15", str(path), str(tmp_path / "out")])
    assert message.startswith(f"error: {path}: unparsable time in column Timestamp")
    path.write_text("1,2014-04-01T00:00:00.000Z,abc,0\n")
    message = run_main_error(["rsc15", str(path), str(tmp_path / "out")])
    assert message.startswith(f"error: {path}: cannot parse")


def test_error_empty_result(tmp_path):
    # Only one-click sessions: nothing survives the filters.
    path = write_yoochoose(tmp_path / "yoochoose-clicks.dat", [(s, T0 + s, 1) for s in range(10)])
    message = run_main_error(["rsc15", str(path), str(tmp_path / "out")])
    assert message.startswith(f"error: {path}: train_full is empty after filtering")
    assert not (tmp_path / "out").exists()


def test_error_unknown_dataset(capsys):
    with pytest.raises(SystemExit) as e:
        preprocess_cli.main(["movielens", "raw", "out"])
    assert e.value.code == 2
    assert "invalid choice: 'movielens'" in capsys.readouterr().err


# -------------------------------------------------------------------- TFDS ---


def test_tfds_builder_matches_preprocess(rsc15_raw, tmp_path):
    import tensorflow_datasets as tfds  # imported here: the other tests don't pay for TF
    from tf_gru4rec.data.datasets import Gru4recSessions

    builder = Gru4recSessions(config="rsc15", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(rsc15_raw.parent))
    )
    splits = preprocess.make_splits("rsc15", str(rsc15_raw))
    counts = {
        name: builder.info.splits[name].num_examples
        for name in ("train", "test", "train_tr", "train_valid")
    }
    assert counts == {"train": 8, "test": 4, "train_tr": 4, "train_valid": 4}
    for split, name in (
        ("train", "train_full"),
        ("test", "test"),
        ("train_tr", "train_tr"),
        ("train_valid", "train_valid"),
    ):
        assert counts[split] == len(splits[name])
        rows = [
            (int(x["session_id"]), int(x["item_id"]), float(x["time"]))
            for x in tfds.as_numpy(builder.as_dataset(split=split))
        ]
        # Same rows in the same order, time at full float64 precision.
        assert rows == rows_of(splits[name]), split
    assert rows[0] == (3, 1, T0 + D + H)
    first = next(iter(tfds.as_numpy(builder.as_dataset(split="train"))))
    assert float(first["time"]) == 1396310400.123
