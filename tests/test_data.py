import os

import numpy as np
import pandas as pd
import pytest

from tf_gru4rec.data import reading
from tf_gru4rec.data.batcher import SessionParallelBatcher, unique_rows
from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.reading import Columns, DataError, read_sessions
from tf_gru4rec.data.schedule import session_parallel_schedule
from tf_gru4rec.data.sessions import SessionData


def frame(rows):
    return pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"])


# ----- reading and validation -------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["tsv", "csv", "parquet"])
def test_read_sessions_formats_and_column_names(tmp_path, fmt):
    df = pd.DataFrame({"sid": [1, 1, 2], "iid": [10, 11, 10], "ts": [0.5, 1.5, 2.0]})
    path = tmp_path / f"clicks.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, sep="\t" if fmt == "tsv" else ",", index=False)
    out = read_sessions(path, Columns(session="sid", item="iid", time="ts"))
    assert list(out.columns) == ["SessionId", "ItemId", "Time"]
    assert out["ItemId"].tolist() == [10, 11, 10] and out["ItemId"].dtype == np.int64
    assert out["Time"].tolist() == [0.5, 1.5, 2.0]


def test_string_item_ids_stay_strings(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("SessionId\tItemId\tTime\n1\tabc\t1\n1\t12\t2\n")
    out = read_sessions(path)
    assert out["ItemId"].tolist() == ["abc", "12"]


def test_64_bit_integer_ids_stay_exact_integers(tmp_path):
    big = [2**53 + 1, 2**62 + 7, 9_223_372_036_854_775_807]
    path = tmp_path / "big.tsv"
    path.write_text("SessionId\tItemId\tTime\n" + "".join(f"{i}\t{v}\t{i}\n" for i, v in enumerate(big)))
    out = read_sessions(path)
    assert out["ItemId"].dtype == np.int64 and out["ItemId"].tolist() == big
    assert read_sessions(path)["SessionId"].dtype == np.int64
    beyond = tmp_path / "beyond.tsv"  # past int64: kept exactly, as strings
    beyond.write_text("SessionId\tItemId\tTime\n1\t18446744073709551615\t1\n1\t5\t2\n")
    assert read_sessions(beyond)["ItemId"].tolist() == ["18446744073709551615", "5"]


def test_time_accepts_numbers_iso_strings_and_datetimes(tmp_path):
    iso = tmp_path / "iso.tsv"
    iso.write_text("SessionId\tItemId\tTime\n1\t5\t2014-04-01T10:00:00Z\n"
                   "1\t6\t2014-04-01T11:00:01.5+01:00\n1\t7\t2014-04-01 10:00:03\n")
    expected = 1396346400.0 + np.array([0.0, 1.5, 3.0])
    np.testing.assert_array_equal(read_sessions(iso)["Time"].to_numpy(), expected)
    df = frame([(1, 5, 0), (1, 6, 0), (1, 7, 0)])
    df["Time"] = pd.to_datetime(expected, unit="s")
    df.to_parquet(tmp_path / "dt.parquet")
    np.testing.assert_array_equal(read_sessions(tmp_path / "dt.parquet")["Time"].to_numpy(), expected)


def test_duplicates_are_counted_and_repeats_dropped_on_request():
    df = frame([(1, 10, 0), (1, 10, 0), (1, 10, 1), (1, 11, 2), (1, 10, 3), (2, 11, 4), (2, 11, 5)])
    kept = SessionData.from_frame(df)
    assert (kept.duplicate_rows, kept.repeated_clicks, kept.n_events) == (1, 3, 7)
    dropped = SessionData.from_frame(df, drop_repeats=True)
    ids = dropped.item_map.ids
    assert ids[dropped.items].tolist() == [10, 11, 10]  # session 2 became one click: dropped
    assert (dropped.repeated_clicks, dropped.skipped_sessions) == (3, 1)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("SessionId\tItem\tTime\n1\t2\t3\n", "missing column"),
        ("SessionId\tItemId\tTime\n1\t2\tyesterday\n", "neither numbers nor ISO-8601"),
        ("SessionId\tItemId\tTime\n1\t2\t0\n1\t3\tnoon\n", "1 Time value.* e.g. 'noon'"),
        ("SessionId\tItemId\tTime\n1\t2\t5\n1\t3\t2014-04-01\n", "mixes numbers and ISO-8601"),
        ("SessionId\tItemId\tTime\n1\t2\t1\n1\t3\tinf\n", "non-finite Time"),
        ("SessionId\tItemId\tTime\n1\t2\t-inf\n1\t3\t4\n", "non-finite Time"),
        ("SessionId\tItemId\tTime\n1\t\t3\n", "missing ItemId"),
        ("SessionId\tItemId\tTime\n1\t2.5\t3\n", "fractional"),
        ("SessionId\tItemId\tTime\n", "no rows"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        read_sessions(path)
    assert str(path) in str(info.value)


def test_missing_file():
    with pytest.raises(DataError, match="no such file"):
        read_sessions("/nonexistent/clicks.tsv")


# ----- item map and sessions ----------------------------------------------------------------
def test_item_map_lookup():
    m = ItemMap([30, 10, 20])
    assert m.lookup([10, 99, 30]).tolist() == [1, -1, 0]
    assert m.lookup(["x"]).tolist() == [-1]  # wrong id type: unknown, not a crash
    assert m.lookup(["10", "abc", 20.0, 20.5]).tolist() == [1, -1, 2, -1]
    s = ItemMap(["a", "b"])
    assert s.lookup(["b", "zz"]).tolist() == [1, -1]
    with pytest.raises(DataError, match="unique"):
        ItemMap([1, 1])


def test_session_data_order_and_counts():
    df = frame(
        [
            (7, 100, 5.0),  # session 7 starts at t=5
            (7, 101, 6.0),
            (3, 102, 9.0),  # session 3 starts at t=1 (rows out of order)
            (3, 100, 1.0),
            (3, 103, 2.0),
            (9, 104, 0.5),  # one-click session: dropped
        ]
    )
    data = SessionData.from_frame(df)
    ids = data.item_map.ids
    # Session 3 (first event t=1) before session 7 (t=5); within a session by time.
    assert ids[data.items].tolist() == [100, 103, 102, 100, 101]
    assert data.offsets.tolist() == [0, 3, 5]
    assert data.skipped_sessions == 1 and data.n_examples == 3


@pytest.mark.parametrize("session_ids", [[1, 2, 3, 4], ["d", "c", "b", "a"]])
def test_sessions_train_in_order_of_first_event_not_of_id(session_ids):
    """Id order and time order differ (and rows come interleaved): slots take sessions by
    the time of their first event, so the last updates come from the most recent data."""
    a, b, c, d = session_ids
    df = frame([
        (a, 10, 50.0), (c, 30, 31.0), (a, 11, 51.0), (b, 20, 10.0), (d, 40, 40.0),
        (c, 31, 30.0), (b, 21, 11.0), (d, 41, 41.0), (b, 22, 12.0),
    ])
    data = SessionData.from_frame(df)
    ids = data.item_map.ids
    sessions = [ids[data.items[s:e]].tolist() for s, e in zip(data.offsets[:-1], data.offsets[1:])]
    assert sessions == [[20, 21, 22], [31, 30], [40, 41], [10, 11]]  # b, c, d, a
    batcher = SessionParallelBatcher(data, batch_size=2, n_sample=0)
    first_inputs = [ids[i] for i in next(batcher.blocks())["inputs"][0]]
    assert first_inputs == [20, 31]  # the two earliest sessions fill the slots first


def test_unknown_test_items_are_dropped_before_sessions_are_formed():
    train = SessionData.from_frame(frame([(1, 10, 0), (1, 11, 1), (1, 12, 2)]))
    test = frame([(5, 10, 0), (5, 99, 1), (5, 12, 2), (6, 98, 0), (6, 11, 1)])
    data = SessionData.from_frame(test, train.item_map)
    assert train.item_map.ids[data.items].tolist() == [10, 12]  # the session continues
    assert data.skipped_unknown == 2 and data.skipped_sessions == 1


def test_nothing_trainable_and_nothing_known():
    with pytest.raises(DataError, match="nothing trainable"):
        SessionData.from_frame(frame([(1, 10, 0), (2, 11, 1)]))
    train = SessionData.from_frame(frame([(1, 10, 0), (1, 11, 1)]))
    with pytest.raises(DataError, match="no item is known"):
        SessionData.from_frame(frame([(1, 50, 0), (1, 51, 1)]), train.item_map)


# ----- session-parallel batches ------------------------------------------------------------
def reference_schedule(lengths, batch_size, min_active):
    """Plain per-step simulation of session-parallel mini-batches."""
    offsets = np.r_[0, np.cumsum(lengths)]
    slots = [None] * batch_size  # (session, position within session)
    nxt = 0
    for i in range(batch_size):
        if nxt < len(lengths):
            slots[i], nxt = (nxt, 0), nxt + 1
    steps = []
    while sum(s is not None for s in slots) >= min_active:
        step = []
        for i, slot in enumerate(slots):
            if slot is None:
                step.append((-1, False))
                continue
            s, p = slot
            step.append((offsets[s] + p, p == 0))
            if p + 1 == lengths[s] - 1:
                if nxt < len(lengths):
                    slots[i], nxt = (nxt, 0), nxt + 1
                else:
                    slots[i] = None
            else:
                slots[i] = (s, p + 1)
        steps.append(step)
    pos = np.array([[p for p, _ in st] for st in steps]).reshape(-1, batch_size)
    reset = np.array([[r for _, r in st] for st in steps]).reshape(-1, batch_size)
    return pos, reset


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("min_active", [1, 2])
def test_schedule_equals_brute_force(seed, batch_size, min_active):
    rng = np.random.default_rng(seed)
    lengths = rng.choice([2, 2, 3, 5, 9], size=40)  # many length-2 sessions
    offsets = np.r_[0, np.cumsum(lengths)]
    sched = session_parallel_schedule(offsets, batch_size, min_active)
    pos, reset = reference_schedule(lengths, batch_size, min_active)
    np.testing.assert_array_equal(sched.position, pos)
    np.testing.assert_array_equal(sched.reset, reset)


def test_every_example_once_per_epoch_except_the_tail():
    rng = np.random.default_rng(5)
    lengths = rng.integers(2, 12, size=60)
    offsets = np.r_[0, np.cumsum(lengths)]
    examples = {p for s in range(len(lengths)) for p in range(offsets[s], offsets[s + 1] - 1)}
    for min_active in (1, 2):
        sched = session_parallel_schedule(offsets, 7, min_active)
        seen = sched.position[sched.valid]
        assert len(seen) == len(set(seen.tolist()))  # no example twice
        missing = examples - set(seen.tolist())
        if min_active == 1:
            assert not missing
        else:
            # Only the tail may be let go: examples of the one session left running alone.
            sessions = {int(np.searchsorted(offsets, p, side="right") - 1) for p in missing}
            assert len(sessions) <= 1
            assert sched.valid[-1].sum() == 2


def test_unique_rows_positions_and_padding():
    items = np.array([[5, 3, 5, -1, 9], [2, 2, 2, 2, 2]])
    rows, pos = unique_rows(items, width=6)
    assert rows[0].tolist() == [3, 5, 9, 9, 9, 9]
    assert rows[1].tolist() == [2] * 6
    for k in range(2):
        present = items[k] >= 0
        np.testing.assert_array_equal(rows[k][pos[k][present]], items[k][present])


def synthetic_data(n_sessions=30, n_items=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    t = 0
    for s in range(n_sessions):
        for _ in range(rng.integers(2, 7)):
            rows.append((s, int(rng.integers(n_items)) * 10, t))
            t += 1
    return SessionData.from_frame(frame(rows))


@pytest.mark.parametrize("shared", [True, False])
def test_batcher_blocks_match_schedule(shared):
    data = synthetic_data()
    b = SessionParallelBatcher(data, batch_size=4, n_sample=5, block_steps=6, seed=3,
                               inputs_in_rows=shared)
    sched = b.schedule
    blocks = list(b.blocks())
    assert len(blocks) == b.n_blocks == -(-sched.n_steps // 6)
    assert sum(int(bl["n_steps"]) for bl in blocks) == sched.n_steps
    valid = np.concatenate([bl["valid"] for bl in blocks])[: sched.n_steps]
    np.testing.assert_array_equal(valid, sched.valid)
    reset = np.concatenate([bl["reset"] for bl in blocks])[: sched.n_steps]
    np.testing.assert_array_equal(reset, sched.reset)
    inputs = np.concatenate([bl["inputs"] for bl in blocks])[: sched.n_steps]
    targets = np.concatenate([bl["targets"] for bl in blocks])[: sched.n_steps]
    np.testing.assert_array_equal(inputs[valid], data.items[sched.position[valid]])
    np.testing.assert_array_equal(targets[valid], data.items[sched.position[valid] + 1])
    assert b.n_examples == int(valid.sum()) == data.n_examples  # n_sample > 0: nothing let go
    support = np.log(data.support())
    for bl in blocks:
        assert bl["rows"].shape == (6, b.width) and bl["negatives"].shape == (6, 5)
        for k in range(int(bl["n_steps"])):
            v = bl["valid"][k]
            rows = bl["rows"][k]
            cols = rows[bl["column_pos"][k]]
            np.testing.assert_array_equal(cols[:4][v], bl["targets"][k][v])
            np.testing.assert_array_equal(cols[4:], bl["negatives"][k])
            if shared:
                np.testing.assert_array_equal(rows[bl["input_pos"][k]][v], bl["inputs"][k][v])
            touched = set(bl["targets"][k][v]) | set(bl["negatives"][k])
            if shared:
                touched |= set(bl["inputs"][k][v])
            assert set(rows.tolist()) == touched  # exactly the touched rows, no stray row
            np.testing.assert_allclose(bl["column_log_q"][k][:4][v], support[bl["targets"][k][v]],
                                       rtol=1e-6)
            np.testing.assert_allclose(bl["column_log_q"][k][4:],
                                       0.5 * support[bl["negatives"][k]], rtol=1e-6)


def test_dataset_elements_and_new_negatives_each_epoch():
    data = synthetic_data()
    b = SessionParallelBatcher(data, batch_size=4, n_sample=8, block_steps=5, seed=1)
    ds = b.dataset()
    assert int(ds.cardinality()) == b.n_blocks
    first = [e["negatives"].numpy() for e in ds]
    second = [e["negatives"].numpy() for e in ds]
    assert not np.array_equal(first[0], second[0])
    e = next(iter(ds))
    assert e["inputs"].shape == (5, 4) and e["column_pos"].shape == (5, 12)
    # Autotuning off: its thread delays the end of every epoch (see `dataset`).
    assert ds.options().autotune.enabled is False


def test_extra_negatives_are_new_at_every_step_and_epoch():
    """One draw per step, never one draw reused across a block's steps or across epochs."""
    data = synthetic_data(n_sessions=60, n_items=50)
    batcher = SessionParallelBatcher(data, batch_size=4, n_sample=8, block_steps=6, seed=2,
                                     sample_cache_size=40)  # refills inside an epoch too
    epochs = [np.concatenate([b["negatives"][: b["n_steps"]] for b in batcher.blocks()])
              for _ in range(2)]
    for negatives in epochs:
        assert len(negatives) == batcher.schedule.n_steps
        distinct = {tuple(row) for row in negatives}
        assert len(distinct) == len(negatives)  # 8 ids of 50 items: repeats would be a reuse
    assert not {tuple(r) for r in epochs[0]} & {tuple(r) for r in epochs[1]}


def test_batcher_rejects_bad_arguments():
    data = synthetic_data()
    with pytest.raises(ValueError, match="batch_size"):
        SessionParallelBatcher(data, batch_size=0)


@pytest.mark.parametrize("n_sample, fewest", [(0, 2), (4, 1)])
def test_without_extra_negatives_the_epoch_ends_below_two_active_rows(n_sample, fewest):
    """With S = 0 a lone row has no negative: the batcher's epoch stops before it."""
    df = frame([(s, 10 + (s * 7 + i) % 5, s * 100 + i) for s, n in enumerate([2, 2, 9]) for i in range(n)])
    batcher = SessionParallelBatcher(SessionData.from_frame(df), batch_size=2, n_sample=n_sample)
    assert batcher.schedule.valid.sum(axis=1).min() == fewest


def test_shard_is_vectorised_and_deals_sessions_in_turn():
    """Session s of shard r of R is session r + s R, whole (the deal is numpy, no Python
    loop per session: the loop took ~1 s for 1M sessions, paid per replica at start-up)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 4, size=1_000_000)
    offsets = np.r_[0, np.cumsum(lengths)]
    data = SessionData(rng.integers(0, 50, size=offsets[-1]).astype(np.int32), offsets,
                       ItemMap(np.arange(50)))
    shard = data.shard(1, 2)
    assert shard.n_sessions == 500_000 and shard.item_map is data.item_map
    np.testing.assert_array_equal(np.diff(shard.offsets), lengths[1::2])
    for s in (0, 1, 77_777, 499_999):  # shard session s is session 1 + 2 s
        np.testing.assert_array_equal(shard.items[shard.offsets[s]:shard.offsets[s + 1]],
                                      data.items[offsets[1 + 2 * s]:offsets[2 + 2 * s]])
    assert data.shard(2, 3).n_sessions == len(range(2, 1_000_000, 3))


# ----- string ids: bounded, stored without fixed-width copies; reading progress (issue 17) ------
def test_an_id_longer_than_the_export_bound_is_refused_in_one_line():
    from tf_gru4rec.data.reading import MAX_ID_BYTES
    from tf_gru4rec.serving.export import MAX_SESSION_ID_BYTES

    assert MAX_ID_BYTES == MAX_SESSION_ID_BYTES == 256  # any id of the data can be a request's
    fits, over = "é" * 128, "é" * 128 + "x"  # 256 and 257 bytes, 128 and 129 characters
    df = frame([(1, "a", 0.0), (1, fits, 1.0), (2, "a", 2.0), (2, "b", 3.0)])
    assert list(SessionData.from_frame(df).item_map.ids) == ["a", fits, "b"]
    with pytest.raises(DataError) as e:
        SessionData.from_frame(frame([(1, "a", 0.0), (1, over, 1.0)]), source="clicks.tsv")
    assert str(e.value) == ("clicks.tsv: 1 ItemId value(s) longer than 256 bytes (UTF-8), e.g. one of 257 "
                            "bytes starting 'éééééééééééééééééééé'")
    with pytest.raises(DataError, match="SessionId value"):
        SessionData.from_frame(frame([("s" * 300, "a", 0.0), ("s" * 300, "b", 1.0)]))
    with pytest.raises(DataError, match="item map: 1 item id value"):
        ItemMap(["a", "x" * 1000])


def test_string_ids_are_stored_as_objects_not_as_wide_as_the_longest():
    df = frame([(1, "a", 0.0), (1, "b" * 250, 1.0), (2, "a", 2.0), (2, "c", 3.0)])
    data = SessionData.from_frame(df)
    ids = data.item_map.ids
    assert ids.dtype == object and ids.nbytes == 3 * 8  # pointers, not 3 x 250 x 4 bytes of <U250
    assert data.item_map.id_length == pytest.approx(252 / 3)
    wide = ItemMap(np.array(["a", "b" * 250, "c"]))  # e.g. loaded from a saved model's <U250 array
    assert wide.ids.dtype == object and wide == data.item_map
    assert list(wide.lookup(np.array(["c", "zz", "a"]))) == [2, -1, 0]
    assert wide.tobytes() == data.item_map.tobytes() != ItemMap(["a", "c", "b" * 250]).tobytes()


def test_string_ids_are_saved_without_a_fixed_width_copy(tmp_path):
    ids = ["a", "é" * 128, "", "c d"]
    ItemMap(ids).save(tmp_path / "ids.npy")
    saved = np.load(tmp_path / "ids.npy")
    assert saved.dtype == np.uint8 and saved.nbytes == len("\0".join(ids).encode())  # 263 bytes, not 4 x 512
    assert ItemMap.load(tmp_path / "ids.npy") == ItemMap(ids)
    np.save(tmp_path / "old.npy", np.array(ids))  # as earlier versions saved them: <U128
    assert ItemMap.load(tmp_path / "old.npy") == ItemMap(ids)
    ItemMap([5, 7]).save(tmp_path / "ints.npy")
    assert np.load(tmp_path / "ints.npy").dtype == np.int64 and ItemMap.load(tmp_path / "ints.npy") == ItemMap([5, 7])
    with pytest.raises(DataError, match="NUL"):  # the separator of the saved form
        ItemMap(["a", "b\0c"])


def test_a_long_read_reports_its_progress(tmp_path, monkeypatch):


    path = tmp_path / "clicks.tsv"
    frame([(s // 3, s % 7, float(s)) for s in range(30_000)]).to_csv(path, sep="\t", index=False)
    monkeypatch.setattr(reading, "LONG_READ_BYTES", 1000)  # the file is ~400 KiB: a long read here
    lines = []
    df = read_sessions(path, progress=lines.append)
    assert len(df) == 30_000 and df["ItemId"].dtype == np.int64
    assert lines[-1].startswith(f"{path}: read 100% (") and len(lines) == len(set(lines)) >= 2
    lines.clear()
    monkeypatch.setattr(reading, "LONG_READ_BYTES", os.path.getsize(path) + 1)  # short: read as before
    read_sessions(path, progress=lines.append)
    assert lines == []
