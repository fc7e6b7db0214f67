"""Tests of the stateful serving behaviour and of tf_gru4rec.serving (client + local server).

One tiny model is trained, saved as a model directory, loaded back (as the export CLI
does) and exported once per module. The reference for every recommendation is the Keras
model's offline `recommend` on the session's prefix (each session alone, from zero state).
Each test loads its own fresh copy of the export, so session state never leaks between tests.
"""

import os
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tf_gru4rec.cli.client import main as client_main
from tf_gru4rec.data.synthetic import synthetic_sessions
from tf_gru4rec.serving import GRU4RecClient, start_local_server
from tf_gru4rec.serving import export as export_module
from tf_gru4rec.serving.recommender import Recommender
from tf_gru4rec.training import model_dir, trainer

PARAMS = "layers=16,batch_size=8,n_sample=16,n_epochs=1,seed=1,block_steps=10"
K, H = 5, 16
UNKNOWN = 5  # synthetic item ids are 1000 + 7 * i


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    trained = trainer.train(synthetic_sessions(n_sessions=300, n_items=60, seed=0), PARAMS, verbose=0)
    path = model_dir.save_model_dir(trained.model, tmp_path_factory.mktemp("model") / "gru4rec")
    return model_dir.load_model_dir(path)[0]


@pytest.fixture(scope="module")
def base(model, tmp_path_factory):
    """Base path holding version 1 (capacity 1000)."""
    base = tmp_path_factory.mktemp("export") / "gru4rec"
    export_module.export_model(model, base, k=K, capacity=1000)
    return base


@pytest.fixture(scope="module")
def small_export(model, tmp_path_factory):
    return export_module.export_model(model, tmp_path_factory.mktemp("small") / "gru4rec", k=K, capacity=4)


@pytest.fixture(scope="module")
def limited_export(model, tmp_path_factory):
    return export_module.export_model(model, tmp_path_factory.mktemp("limited") / "gru4rec", k=K,
                               max_rows=30, max_session_id_bytes=16)


@pytest.fixture()
def served(base):
    """A freshly loaded export: no session state."""
    return tf.saved_model.load(os.path.join(base, "1"))


@pytest.fixture(scope="module")
def server(base):
    server, port = start_local_server(base, port=0)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture(scope="module")
def sessions(model):
    """100 new sessions in the training catalogue's id space (a few clicks may be unknown)."""
    df = synthetic_sessions(n_sessions=100, n_items=70, seed=7)
    return [g.tolist() for _, g in df.groupby("SessionId", sort=False)["ItemId"]]


def stateful(loaded, session_ids, items, signature="stateful"):
    out = loaded.signatures[signature](session_id=tf.constant([str(s) for s in session_ids]),
                                       item_id=tf.constant(items, tf.int64))
    return {k: v.numpy() for k, v in out.items()}


def end(loaded, session_ids):
    return loaded.signatures["end_session"](session_id=tf.constant(session_ids))["ended"].numpy()


def assert_recommends(model, prefixes, item_ids, scores):
    """Served (item_ids, scores) [n, k] equal offline top-k of each prefix run alone."""
    ref_ids, ref_scores, _ = Recommender(model).recommend(prefixes, k=np.shape(item_ids)[1])
    np.testing.assert_array_equal(np.asarray(item_ids), ref_ids)
    np.testing.assert_allclose(np.asarray(scores), ref_scores, atol=1e-5)


def interleaved_events(sessions, seed):
    """(session index, click position) of every click, sessions interleaved at random, each
    session's clicks in order."""
    clicks = np.repeat(np.arange(len(sessions)), list(map(len, sessions)))
    order = np.random.default_rng(seed).permutation(clicks)
    position = [0] * len(sessions)
    events = []
    for s in order:
        events.append((int(s), position[s]))
        position[s] += 1
    return events


# ----- stateful signature ------------------------------------------------------------------------
def test_interleaved_sessions_one_click_per_request_match_offline(served, model, sessions):
    assert len(sessions) == 100
    events = interleaved_events(sessions, seed=1)
    assert any(model.item_map.lookup([sessions[s][t] for s, t in events]) < 0)  # unknown clicks too
    served_ids, served_scores, prefixes = [], [], []
    for s, t in events:
        out = stateful(served, [f"s{s}"], [sessions[s][t]])
        served_ids.append(out["item_ids"][0])
        served_scores.append(out["scores"][0])
        prefixes.append(sessions[s][: t + 1])
    assert_recommends(model, prefixes, served_ids, served_scores)
    assert int(served.n_sessions()) == 100


def test_interleaved_sessions_32_per_request_match_offline(served, model, sessions):
    events = interleaved_events(sessions, seed=2)
    served_ids, served_scores, prefixes = [], [], []
    for start in range(0, len(events), 32):
        chunk = events[start : start + 32]  # may hold one session twice: processed in order
        out = stateful(served, [f"s{s}" for s, _ in chunk], [sessions[s][t] for s, t in chunk])
        served_ids.extend(out["item_ids"])
        served_scores.extend(out["scores"])
        prefixes.extend(sessions[s][: t + 1] for s, t in chunk)
    assert_recommends(model, prefixes, served_ids, served_scores)


def test_fresh_load_holds_no_session(base, model):
    a, b, c = model.item_map.ids[:3].tolist()
    first = tf.saved_model.load(os.path.join(base, "1"))
    assert int(first.n_sessions()) == 0
    stateful(first, ["u", "u"], [a, b])
    assert int(first.n_sessions()) == 1
    second = tf.saved_model.load(os.path.join(base, "1"))  # as TF Serving loading a version
    assert int(second.n_sessions()) == 0
    new, continued = stateful(second, ["u"], [c]), stateful(first, ["u"], [c])
    assert_recommends(model, [[c], [a, b, c]], [new["item_ids"][0], continued["item_ids"][0]],
                      [new["scores"][0], continued["scores"][0]])


def test_same_session_twice_in_one_request_is_processed_in_row_order(served, model):
    a, b, c, d, e = model.item_map.ids[:5].tolist()
    out = stateful(served, ["d", "e", "d", "d"], [a, b, c, d])
    assert_recommends(model, [[a], [b], [a, c], [a, c, d]], out["item_ids"], out["scores"])
    out = stateful(served, ["d"], [e])  # the request left the state after its last row
    assert_recommends(model, [[a, c, d, e]], out["item_ids"], out["scores"])
    assert int(served.n_sessions()) == 2


def test_serving_default_is_stateful_and_shares_its_sessions(served, model):
    a, b = model.item_map.ids[:2].tolist()
    stateful(served, ["v"], [a])
    out = stateful(served, ["v"], [b], signature="serving_default")
    assert_recommends(model, [[a, b]], out["item_ids"], out["scores"])


def test_end_session_frees_the_state(served, model):
    a, b, c = model.item_map.ids[:3].tolist()
    stateful(served, ["w", "x"], [a, a])
    stateful(served, ["w"], [b])
    np.testing.assert_array_equal(end(served, ["w", "never-seen"]), [True, False])
    assert int(served.n_sessions()) == 1
    np.testing.assert_array_equal(end(served, ["w"]), [False])
    out = stateful(served, ["w", "x"], [c, c])  # w restarts from zero; x continues
    assert_recommends(model, [[c], [a, c]], out["item_ids"], out["scores"])


def test_least_recently_used_session_is_evicted_beyond_capacity(small_export, model):
    served = tf.saved_model.load(small_export)
    a, b, c = model.item_map.ids[:3].tolist()
    for s in ["s0", "s1", "s2", "s3"]:
        stateful(served, [s], [a])
    stateful(served, ["s0"], [b])  # s1 is now the least recently used
    assert int(served.n_sessions()) == 4
    stateful(served, ["s4"], [a])  # a 5th session evicts s1
    assert int(served.n_sessions()) == 4
    np.testing.assert_array_equal(end(served, ["s1"]), [False])
    # s1 restarts from zero (and evicts s2, now the oldest); s0 and s3 continue.
    out = stateful(served, ["s1"], [c])
    assert_recommends(model, [[c]], out["item_ids"], out["scores"])
    out = stateful(served, ["s0", "s3"], [c, c])
    assert_recommends(model, [[a, b, c], [a, c]], out["item_ids"], out["scores"])
    ended = end(served, ["s2", "s0", "s1", "s3", "s4"])
    np.testing.assert_array_equal(ended, [False, True, True, True, True])
    assert int(served.n_sessions()) == 0


def test_unknown_items_keep_the_state_and_are_flagged(served, model):
    a, b = model.item_map.ids[:2].tolist()
    out = stateful(served, ["y", "y", "y", "z"], [a, UNKNOWN, b, UNKNOWN])
    np.testing.assert_array_equal(out["unknown_item"], [False, True, False, True])
    # Recommendations of the session so far; an unknown first click gets an empty session's.
    assert_recommends(model, [[a], [a], [a, b], []], out["item_ids"], out["scores"])
    np.testing.assert_array_equal(out["item_ids"][1], out["item_ids"][0])


def run_in_threads(work, n_threads):
    """Runs work(0) ... work(n_threads - 1) at once, each on its own thread, and fails with
    the first error a thread met (bounded: 120 s a thread)."""
    errors = []

    def guarded(i):
        try:
            work(i)
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a thread did not finish within 120 s"
    if errors:
        raise errors[0]


def table_sizes(loaded):
    """Entries of every hash table the loaded export's session store holds."""
    tables = [t for t in vars(loaded.sessions).values() if hasattr(t, "resource_handle")]
    return [int(tf.raw_ops.LookupTableSizeV2(table_handle=t.resource_handle)) for t in tables]


def test_concurrent_requests_keep_the_bound_and_each_session_its_own_state(small_export, model, sessions):
    """Threads on one loaded SavedModel, 32 sessions for 4 places: every request evicts,
    racing other threads' requests. The store stays at its bound, and every row equals the
    offline recommendation (exclude_seen) of its session since it (re)started from zero (as
    `new_session` or an `end_session` says): no session read another's or a stale state or
    seen clicks."""
    capacity, n_threads, per_thread, n_requests = 4, 8, 4, 60
    served = tf.saved_model.load(small_export)
    rows, barrier = [], threading.Barrier(n_threads)

    def work(thread):
        mine = [thread * per_thread + i for i in range(per_thread)]
        prefix = {s: [] for s in mine}
        barrier.wait()
        for r in range(n_requests):
            clicks = [sessions[s][r % len(sessions[s])] for s in mine]
            out = served.signatures["stateful_rules"](
                session_id=tf.constant([f"c{s}" for s in mine]), item_id=tf.constant(clicks, tf.int64),
                exclude_seen=tf.ones([per_thread], tf.bool), candidate_ids=tf.zeros([per_thread, 0], tf.int64),
                restrict=tf.zeros([per_thread], tf.bool))
            out = {k: v.numpy() for k, v in out.items()}
            for i, (s, click) in enumerate(zip(mine, clicks)):
                prefix[s] = [click] if out["new_session"][i] else prefix[s] + [click]
                rows.append((prefix[s], out["item_ids"][i], out["scores"][i]))
            if r % 7 == 6:  # an ended session restarts clean: no state, no seen clicks
                end(served, [f"c{mine[r % per_thread]}"])
                prefix[mine[r % per_thread]] = []

    run_in_threads(work, n_threads)
    assert len(rows) == n_threads * per_thread * n_requests
    sizes = table_sizes(served)
    assert max(sizes) <= capacity and len(set(sizes)) == 1, sizes
    assert int(served.n_sessions()) <= capacity
    ref_ids, ref_scores, _ = Recommender(model).recommend([p for p, _, _ in rows], k=K, exclude_seen=True)
    np.testing.assert_array_equal(np.array([i for _, i, _ in rows]), ref_ids)
    np.testing.assert_allclose(np.array([s for _, _, s in rows]), ref_scores, atol=1e-5)


def test_new_session_flags_rows_that_start_from_zero(small_export, model):
    """New, ended and evicted sessions say so; a held one, or a later row of the same
    session in one request, continues."""
    served = tf.saved_model.load(small_export)  # capacity 4
    a, b = model.item_map.ids[:2].tolist()
    out = stateful(served, ["n0", "n1", "n0"], [a, a, b])
    np.testing.assert_array_equal(out["new_session"], [True, True, False])
    np.testing.assert_array_equal(stateful(served, ["n0", "n2"], [a, a])["new_session"], [False, True])
    end(served, ["n1"])
    np.testing.assert_array_equal(stateful(served, ["n1"], [a])["new_session"], [True])
    for s in ["n3", "n4", "n5"]:  # n0 and n2 are the least recently used: evicted
        stateful(served, [s], [a])
    np.testing.assert_array_equal(stateful(served, ["n0", "n5"], [b, b])["new_session"], [True, False])


def test_occurrence_rank_is_exact_and_linear_in_memory():
    from tf_gru4rec.serving.export import occurrence_rank

    keys = np.random.default_rng(0).integers(0, 50, size=400).astype(str)
    seen = {}
    expected = [seen.setdefault(k, []).append(1) or len(seen[k]) - 1 for k in keys]
    np.testing.assert_array_equal(occurrence_rank(tf.constant(keys)).numpy(), expected)
    n = 50_000  # the old [B, B] comparison would need 2.5e9 elements here
    graph = tf.function(occurrence_rank).get_concrete_function(tf.TensorSpec([n], tf.string)).graph
    largest = max(int(np.prod(t.shape.as_list())) for op in graph.get_operations() for t in op.outputs
                  if t.shape.rank is not None and None not in t.shape.as_list())
    assert largest <= n


@pytest.mark.parametrize("signature, inputs, message", [
    ("stateful", {"session_id": ["a"] * 31, "item_id": [1] * 31}, "at most 30 rows"),
    ("stateful", {"session_id": ["a", "b"], "item_id": [1]}, "item_id must have one row per request row"),
    ("stateful", {"session_id": ["x" * 17], "item_id": [1]}, "session_id has at most 16 bytes"),
    ("end_session", {"session_id": ["x" * 17]}, "session_id has at most 16 bytes"),
    ("step", {"item_id": [1, 2], "state": np.zeros((1, 16), np.float32)}, "state must have one row"),
    ("step", {"item_id": [1], "state": np.full((1, 16), np.nan, np.float32)}, "NaN or infinite"),
    ("score_items", {"state": np.full((1, 16), np.inf, np.float32), "candidate_ids": [[1]]},
     "NaN or infinite"),
    ("score_items", {"state": np.zeros((2, 16), np.float32), "candidate_ids": [[1]]},
     "candidate_ids must have one row"),
])
def test_bad_requests_fail_with_a_clear_invalid_argument(limited_export, signature, inputs, message):
    served = tf.saved_model.load(limited_export)
    fn = served.signatures[signature]
    args = {k: tf.constant(v, tf.int64 if k in ("item_id", "candidate_ids") else None) for k, v in inputs.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        fn(**args)


# ----- gRPC: local server and client -------------------------------------------------------------
def test_concurrent_clients_lose_and_mix_nothing(server, model, sessions):
    n_threads, per_thread = 4, 8
    results = {}
    barrier = threading.Barrier(n_threads)

    def work(thread):
        mine = range(thread * per_thread, (thread + 1) * per_thread)
        with GRU4RecClient(server, model_name="gru4rec") as client:
            barrier.wait()
            for t in range(max(len(sessions[s]) for s in mine)):
                for s in mine:
                    if t < len(sessions[s]):
                        results[s, t] = client.next_items(f"thread-{s}", sessions[s][t])

    run_in_threads(work, n_threads)
    keys = sorted(results)
    assert len(keys) == sum(len(sessions[s]) for s in range(n_threads * per_thread))
    assert_recommends(model, [sessions[s][: t + 1] for s, t in keys],
                      [results[k][0] for k in keys], [results[k][1] for k in keys])


def test_client_equals_in_process_signatures(server, served, model, sessions):
    clicks = sessions[0]
    with GRU4RecClient(server, model_name="gru4rec", version=1) as client:
        assert (client.state_size, client.k) == (H, K)
        state = None
        for t, item in enumerate(clicks):
            ids, scores = client.next_items("client-0", item)
            local = stateful(served, ["client-0"], [item])
            np.testing.assert_array_equal(ids, local["item_ids"][0])
            np.testing.assert_allclose(scores, local["scores"][0], atol=1e-5)
            step_ids, step_scores, state = client.step([item], state)
            np.testing.assert_array_equal(step_ids[0], ids)
            np.testing.assert_allclose(step_scores[0], scores, atol=1e-5)
        ids, scores = client.next_items_batch(["client-1", "client-1"], clicks[:2], k=2)
        assert ids.shape == (2, 2)
        assert_recommends(model, [clicks[:1], clicks[:2]], ids, scores)
        ended = client.end_sessions(["client-0", "client-1", "nobody"])
        np.testing.assert_array_equal(ended, [True, True, False])
        assert client.end_session("client-0") is False
        with pytest.raises(ValueError, match="`k` should be in"):
            client.next_items("client-2", clicks[0], k=K + 1)


def test_score_items_through_client_equals_step_scores(server, model):
    a, b = model.item_map.ids[:2].tolist()
    with GRU4RecClient(server) as client:
        ids, scores, state = client.step([a, b])
        candidates = [[ids[0, 3], UNKNOWN, ids[0, 0]], [ids[1, 1], ids[1, 2], 7]]
        cand_scores, known = client.score_items(state, candidates)
    np.testing.assert_array_equal(known, [[True, False, True], [True, True, False]])
    np.testing.assert_allclose(cand_scores[:, [0, 2]][0], scores[0, [3, 0]], atol=1e-5)
    np.testing.assert_allclose(cand_scores[1, :2], scores[1, [1, 2]], atol=1e-5)
    assert np.isneginf(cand_scores[[0, 1], [1, 2]]).all()


def test_client_command_line_prints_recommendations(server, model):
    a, b = model.item_map.ids[:2].tolist()
    out = subprocess.run(
        [sys.executable, "-m", "tf_gru4rec.serving.client", "--server", server, "--model", "gru4rec",
         "--session", "cli-1", "--items", f"{a},{UNKNOWN},{b}", "--k", "3", "--end-session"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    ref_ids, ref_scores, _ = Recommender(model).recommend([[a], [a], [a, b]], k=3)

    def line(item, row, flag=""):
        recs = ", ".join(f"{i} ({s:.4f})" for i, s in zip(ref_ids[row], ref_scores[row]))
        return f"{item}{flag} -> {recs}"

    unknown = line(UNKNOWN, 1, " [unknown item: state unchanged]")
    assert out.stdout.splitlines() == [line(a, 0), unknown, line(b, 2), "session cli-1: ended"]
    with GRU4RecClient(server) as client:
        assert client.end_session("cli-1") is False  # --end-session freed it


def test_client_business_rules_and_a_blocklist_per_server_process(server, base, model):
    """set_blocklist reaches only the process it is sent to; rules go through both
    stateful_rules and step_rules and equal the offline recommend."""
    own, port = start_local_server(base, port=0)  # a second server process of the same version
    a, b = model.item_map.ids[:2].tolist()
    top = Recommender(model).recommend([[a]], k=K)[0][0].tolist()
    candidates = [top[1], top[3], UNKNOWN, a, b]
    try:
        with GRU4RecClient(f"127.0.0.1:{port}") as client, GRU4RecClient(server) as other:
            assert client.set_blocklist([top[0], UNKNOWN, top[0]]) == {"blocked": 1, "unknown": [UNKNOWN]}
            ids, scores = client.next_items("r2", a)
            ref = Recommender(model).recommend([[a]], k=K, blocklist=[top[0]])
            np.testing.assert_array_equal(ids, ref[0][0])
            np.testing.assert_allclose(scores, ref[1][0], atol=1e-5)
            other_ids, other_scores = other.next_items("r2", a)  # the other process: not blocked
            assert_recommends(model, [[a]], [other_ids], [other_scores])
            ids, scores = client.next_items("r2", b, exclude_seen=True, candidates=candidates)
            ref = Recommender(model).recommend([[a, b]], k=K, exclude_seen=True, candidates=[candidates],
                                  blocklist=[top[0]])
            np.testing.assert_array_equal(ids, ref[0][0])
            assert (ids[2:] == -1).all()  # at most top[1] and top[3] are left: padding
            np.testing.assert_allclose(scores, ref[1][0], atol=1e-5)
            _, _, state = client.step([a])
            ids, scores, _ = client.step([b], state, seen=[[a]], candidates=[candidates])
            np.testing.assert_array_equal(ids[0], ref[0][0])
            np.testing.assert_allclose(scores[0], ref[1][0], atol=1e-5)
    finally:
        own.stop(grace=None)


def run_client(*args):
    return subprocess.run([sys.executable, "-m", "tf_gru4rec.serving.client", *map(str, args)],
                          capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=False)


def test_client_command_line_sets_the_blocklist_and_applies_rules(base, model, tmp_path, capsys):
    own, port = start_local_server(base, port=0)  # its own process: the blocklist stays there
    a, b = model.item_map.ids[:2].tolist()
    top = Recommender(model).recommend([[a]], k=K)[0][0].tolist()
    (tmp_path / "blocked.txt").write_text(f"{top[0]}\nnope\n{UNKNOWN}\n")
    candidates = [top[0], top[1], top[2], a, UNKNOWN]
    try:
        out = run_client("--server", f"127.0.0.1:{port}", "--set-blocklist", tmp_path / "blocked.txt")
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.splitlines() == ["blocklist: 1 items blocked, 2 unknown ids skipped"]
        out = run_client("--server", f"127.0.0.1:{port}", "--session", "c", "--items", f"{a},{b}",
                         "--exclude-seen", "--candidates", ",".join(map(str, candidates)), "--k", 3)
        assert out.returncode == 0, out.stderr[-2000:]
        # In-process (no second TensorFlow start-up): a missing file is one line, exit 1.
        with pytest.raises(SystemExit, match="1"):
            client_main(["--server", f"127.0.0.1:{port}", "--set-blocklist", str(tmp_path / "missing.txt")])
        assert "No such file" in capsys.readouterr().err
    finally:
        own.stop(grace=None)
    ref_ids, ref_scores, _ = Recommender(model).recommend([[a], [a, b]], k=3, exclude_seen=True,
                                             candidates=candidates, blocklist=[top[0]])
    lines = [f"{item} -> " + ", ".join(f"{i} ({s:.4f})" for i, s in zip(ids, scores) if i != -1)
             for item, ids, scores in zip((a, b), ref_ids, ref_scores)]
    assert out.stdout.splitlines() == [*lines, "candidates: 1 unknown ids skipped"]
    with pytest.raises(SystemExit, match="2"):
        client_main(["--server", f"127.0.0.1:{port}"])
    assert "give --session with --items and/or --end-session, or --set-blocklist" in capsys.readouterr().err


def test_client_command_line_ends_a_session_alone_and_says_when_no_item_is_left(server, model, capsys):
    a, b = model.item_map.ids[:2].tolist()
    # In-process: the command's own output, without a second start-up per call.
    client_main(["--server", server, "--session", "e1", "--items", str(a), "--exclude-seen",
                 "--candidates", f"{a},{UNKNOWN}", "--k", "3"])
    client_main(["--server", server, "--session", "e1", "--end-session"])  # no --items needed
    client_main(["--server", server, "--session", "e1", "--end-session"])
    assert capsys.readouterr().out.splitlines() == [
        f"{a} -> no item left to recommend (each is seen, blocked or not a candidate)",
        "candidates: 1 unknown ids skipped", "session e1: ended", "session e1: not held (nothing to end)"]
    with pytest.raises(SystemExit, match="2"):
        client_main(["--server", server, "--end-session"])
    assert "--end-session needs --session" in capsys.readouterr().err


CLIENT_IMPORTS = """
import sys, time
start = time.perf_counter()
import tf_gru4rec.serving.client
loaded = [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
print(time.perf_counter() - start, "tensorflow.python" in loaded, "tensorflow.core.framework.tensor_pb2" in loaded)
"""


def test_client_imports_the_protos_not_the_tensorflow_runtime():
    out = subprocess.run([sys.executable, "-c", CLIENT_IMPORTS], capture_output=True, text=True, check=True)
    seconds, runtime, protos = out.stdout.split()
    assert (runtime, protos) == ("False", "True")
    assert float(seconds) < 3  # TensorFlow's runtime alone takes 5-19 s


@pytest.mark.parametrize("value, dtype", [
    (np.arange(6, dtype=np.float32).reshape(2, 3), tf.float32), (np.array([[1, -2]], np.int64), tf.int64),
    (np.array([True, False]), tf.bool), (np.array(7, np.int64), tf.int64), (np.zeros((0, 5), np.int32), tf.int32),
    (np.array([["a", ""], ["é", "x" * 300]], object), tf.string),
])
def test_client_tensor_protos_equal_tensorflows(value, dtype):
    from tf_gru4rec.serving.client import tensor_proto, to_ndarray

    ours = tensor_proto(value, dtype.as_datatype_enum)
    encoded = np.vectorize(str.encode, otypes=[object]) if dtype == tf.string else np.asarray
    np.testing.assert_array_equal(tf.make_ndarray(ours), encoded(value))
    for theirs in (tf.make_tensor_proto(value, dtype), ours):
        back = to_ndarray(theirs)
        assert back.dtype == (object if dtype == tf.string else value.dtype) and back.shape == value.shape
        np.testing.assert_array_equal(back, value)
    np.testing.assert_array_equal(to_ndarray(tf.make_tensor_proto(3, tf.int64, shape=[2, 2])), np.full((2, 2), 3))


def test_local_server_passes_the_named_error_on(limited_export, server):
    with GRU4RecClient(server) as client, pytest.raises(grpc.RpcError) as caught:  # 256-byte ids
        client.predict("stateful", {"session_id": ["x" * 257], "item_id": [1000]})
    assert caught.value.details() == "a session_id has at most 256 bytes; the longest has 257"
    own, port = start_local_server(os.path.dirname(limited_export), port=0)  # at most 30 rows, 16-byte ids
    zeros = lambda b, width=H: np.zeros((b, width), np.float32)  # noqa: E731
    cases = [
        ("step", {"item_id": [1000], "state": zeros(1, 8)},
         "Shape of tensor state [1,8] is not compatible with expected shape [?,16]."),
        ("step", {"item_id": [1000], "state": np.full((1, H), np.nan, np.float32)},
         "state holds NaN or infinite values (pass a state this model's step returned)"),
        ("stateful", {"session_id": ["x" * 17], "item_id": [1000]}, "a session_id has at most 16 bytes; "
         "the longest has 17"),
        ("step", {"item_id": [[1000]], "state": zeros(1)},
         "Shape of tensor item_id [1,1] is not compatible with expected shape [?]."),
        ("step", {"item_id": [1000] * 31, "state": zeros(31)},
         "a request holds at most 30 rows (the export's limit for this catalogue); got 31"),
    ]
    try:
        with GRU4RecClient(f"127.0.0.1:{port}") as client:
            for signature, inputs, message in cases:
                with pytest.raises(grpc.RpcError) as caught:
                    client.predict(signature, inputs)
                assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    finally:
        own.stop(grace=None)


def test_local_server_answers_errors_like_tf_serving(server, base):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server))

    def code(name="gru4rec", signature="step", version=None, item_dtype=tf.int64):
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = name, signature
        if version is not None:
            request.model_spec.version.value = version
        request.inputs["item_id"].CopyFrom(tf.make_tensor_proto([1000], dtype=item_dtype))
        request.inputs["state"].CopyFrom(tf.make_tensor_proto(np.zeros((1, H), np.float32)))
        try:
            response = stub.Predict(request, timeout=10)
        except grpc.RpcError as e:
            return e.code()
        assert (response.model_spec.name, response.model_spec.version.value) == ("gru4rec", 1)
        return grpc.StatusCode.OK

    assert code() == grpc.StatusCode.OK
    assert code(version=1) == grpc.StatusCode.OK
    assert code(name="other") == grpc.StatusCode.NOT_FOUND
    assert code(version=2) == grpc.StatusCode.NOT_FOUND
    assert code(signature="nope") == grpc.StatusCode.INVALID_ARGUMENT
    assert code(signature="score_items") == grpc.StatusCode.INVALID_ARGUMENT  # wrong input keys
    assert code(item_dtype=tf.int32) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(FileNotFoundError, match="no numeric version folder"):
        start_local_server(os.path.dirname(base), port=0)
