"""Tests of tf_gru4rec.evaluation.baselines: scores and metrics against plain-Python references."""

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from tf_gru4rec.data.item_features import read_item_features
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.evaluation.baselines import (
    FeatureOverlap,
    ItemKNN,
    Pop,
    SessionPop,
    evaluate_baseline,
    prediction_events,
)
from tf_gru4rec.evaluation.protocols import TIE_MODES

CUTOFFS = (1, 2, 3, 5)


def frame(sessions, first_session=0):
    """Lists of item ids -> click rows (one session per list, times increasing)."""
    rows = [
        (first_session + s, item, float(100 * (first_session + s) + t))
        for s, clicks in enumerate(sessions)
        for t, item in enumerate(clicks)
    ]
    return pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"])


# ----- plain-Python references ------------------------------------------------------------
def reference_model(train_sessions):
    """Catalogue (item ids in first-appearance order), training sessions of >= 2 clicks,
    and clicks per item in those sessions: what every baseline is fitted on."""
    catalogue = list(dict.fromkeys(i for s in train_sessions for i in s))
    sessions = [s for s in train_sessions if len(s) >= 2]
    supp = {i: sum(s.count(i) for s in sessions) for i in catalogue}
    return catalogue, sessions, supp


def reference_knn(catalogue, sessions, supp, n_neighbors=100, lambda_=20.0, alpha=0.5):
    """sim[i][j] by loops over event pairs; neighbours cut at n_neighbors (ties: first item)."""
    sims = {}
    for i in catalogue:
        row = {}
        for j in catalogue:
            c = sum(s.count(i) * s.count(j) for s in sessions) if i != j else 0
            if c:
                row[j] = c / ((supp[i] + lambda_) ** alpha * (supp[j] + lambda_) ** (1 - alpha))
        kept = sorted(row, key=lambda j: (-row[j], catalogue.index(j)))[:n_neighbors]
        sims[i] = {j: row[j] for j in kept}
    return sims


def reference_scorer(kind, catalogue, sessions, supp, **knn):
    """score(session_so_far, item) of a baseline."""
    if kind == "pop":
        return lambda prefix, j: supp[j]
    if kind == "session-pop":
        factor = max(supp.values()) + 1
        return lambda prefix, j: prefix.count(j) * factor + supp[j]
    sims = reference_knn(catalogue, sessions, supp, **knn)
    return lambda prefix, j: sims[prefix[-1]].get(j, 0.0)


def reference_metrics(kind, train_sessions, test_sessions, mode, cutoffs=CUTOFFS, protocol="next", **knn):
    """All metrics event by event: every catalogue item scored, target ranked by numpy, top-k
    lists by a stable argsort (ties: the item seen first in training); with protocol "last"
    only each session's last known click is a target."""
    catalogue, sessions, supp = reference_model(train_sessions)
    score = reference_scorer(kind, catalogue, sessions, supp, **knn)
    popularity = np.array([supp[j] for j in catalogue]) / max(supp.values())
    ranks, lists, skipped_unknown, skipped_sessions = [], [], 0, 0
    for clicks in test_sessions:
        known = [c for c in clicks if c in supp]
        skipped_unknown += len(clicks) - len(known)
        if len(known) < 2:
            skipped_sessions += 1
            continue
        for p in range(len(known) - 2 if protocol == "last" else 0, len(known) - 1):
            scores = np.array([score(known[: p + 1], j) for j in catalogue], dtype=np.float64)
            target = scores[catalogue.index(known[p + 1])]
            greater, equal = np.sum(scores > target), np.sum(scores == target)
            ranks.append({"standard": 1 + greater, "conservative": greater + equal,
                          "median": 1 + greater + (equal - 1) / 2}[mode])
            lists.append(np.argsort(-scores, kind="stable"))
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {}
    for k in cutoffs:
        out[f"recall@{k}"] = np.mean(ranks <= k)
        out[f"mrr@{k}"] = np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0))
        out[f"ndcg@{k}"] = np.mean(np.where(ranks <= k, 1.0 / np.log2(ranks + 1), 0.0))
        out[f"coverage@{k}"] = len({i for top in lists for i in top[:k]}) / len(catalogue)
        out[f"popularity@{k}"] = np.mean([popularity[top[:k]].mean() for top in lists])
    out.update(n_events=len(ranks), skipped_unknown=skipped_unknown,
               skipped_sessions=skipped_sessions)
    return out


# ----- random data with ties, unknown items and one-click sessions --------------------------
def random_sessions(rng, n_sessions, items, max_length=6):
    # Skewed item choice: many repeated items, so popularity and similarity ties occur.
    p = 1.0 / np.arange(1, len(items) + 1)
    return [list(rng.choice(items, size=rng.integers(1, max_length + 1), p=p / p.sum()))
            for _ in range(n_sessions)]


@pytest.fixture(scope="module")
def random_data():
    rng = np.random.default_rng(7)
    train = random_sessions(rng, 60, list(range(1, 19)))  # includes one-click sessions
    test = random_sessions(rng, 25, list(range(1, 23)))  # ids 19..22 never seen in train
    test += [[3], [99, 2], [2, 99, 4, 98], [5, 5, 5]]  # one click; unknown -> one; gaps; repeats
    return train, test


KINDS = {"pop": Pop, "session-pop": SessionPop, "itemknn": ItemKNN}


@pytest.mark.parametrize("protocol", ["next", "last"])
@pytest.mark.parametrize("mode", TIE_MODES)
@pytest.mark.parametrize("kind, knn", [("pop", {}), ("session-pop", {}),
                                       ("itemknn", {}), ("itemknn", {"n_neighbors": 3, "alpha": 0.3})])
def test_baselines_equal_brute_force(random_data, kind, knn, mode, protocol):
    train, test = random_data
    model = KINDS[kind](**knn).fit(frame(train))
    got = evaluate_baseline(model, frame(test, first_session=1000), CUTOFFS, mode, batch_size=7,
                            protocol=protocol, coverage=True, popularity=model.support)
    want = reference_metrics(kind, train, test, mode, protocol=protocol, **knn)
    assert {k: got[k] for k in ("n_events", "skipped_unknown", "skipped_sessions")} == {
        k: want[k] for k in ("n_events", "skipped_unknown", "skipped_sessions")}
    assert want["skipped_unknown"] > 5 and want["skipped_sessions"] > 2  # the cases are covered
    for k in CUTOFFS:
        for name in ("recall", "mrr", "ndcg", "coverage", "popularity"):
            assert got[f"{name}@{k}"] == pytest.approx(want[f"{name}@{k}"], abs=1e-6), (name, k)


def test_tie_modes_order_the_metrics(random_data):
    """With one neighbour kept, targets outside it tie at 0 with most of the 18 items:
    conservative ranks them last, median in the middle, standard first."""
    train, test = random_data
    knn = ItemKNN(n_neighbors=1).fit(frame(train))
    r = {m: evaluate_baseline(knn, frame(test), (20,), m)["mrr@20"] for m in TIE_MODES}
    assert r["conservative"] < r["median"] < r["standard"]
    assert r["standard"] - r["conservative"] > 0.2


def test_result_keys_are_those_of_evaluate(random_data):
    train, test = random_data
    got = evaluate_baseline(Pop().fit(frame(train)), frame(test), cutoffs=(1, 20))
    assert list(got) == ["recall@1", "mrr@1", "ndcg@1", "recall@20", "mrr@20", "ndcg@20", "n_events",
                         "skipped_unknown", "skipped_sessions", "eval_seconds"]
    assert got["eval_seconds"] > 0


# ----- item-kNN similarity by hand ----------------------------------------------------------
# Sessions A B | A B C | B C C | A D  (ids A=1, B=2, C=3, D=4)
# supp: A 3, B 3, C 3, D 1.  Event-pair co-occurrence: AB 2, AC 1, AD 1, BC 1 + 1*2 = 3.
TINY = [[1, 2], [1, 2, 3], [2, 3, 3], [1, 4]]


def dense(knn):
    return knn.similarities(np.arange(len(knn.item_map)))


def test_itemknn_similarity_exact_values():
    sim = dense(ItemKNN().fit(frame(TINY)))  # indices follow first appearance: A B C D
    s23, s21 = math.sqrt(23.0), math.sqrt(21.0)
    want = np.array([
        [0, 2 / 23, 1 / 23, 1 / (s23 * s21)],
        [2 / 23, 0, 3 / 23, 0],
        [1 / 23, 3 / 23, 0, 0],
        [1 / (s21 * s23), 0, 0, 0],
    ])
    np.testing.assert_allclose(sim, want, rtol=1e-14, atol=0)


def test_itemknn_alpha_makes_similarity_asymmetric():
    knn = ItemKNN(alpha=0.25, lambda_=20.0).fit(frame(TINY))
    sim = dense(knn)
    # row = query item: sim(A, D) = 1 / (23^0.25 * 21^0.75), sim(D, A) = 1 / (21^0.25 * 23^0.75)
    assert sim[0, 3] == pytest.approx(1 / (23**0.25 * 21**0.75), rel=1e-14)
    assert sim[3, 0] == pytest.approx(1 / (21**0.25 * 23**0.75), rel=1e-14)
    assert sim[0, 3] > sim[3, 0]  # the rarer D weighs more in the query row of A


def test_itemknn_keeps_the_top_neighbours():
    # A's similarities: B 2/23 = 0.0870 > D 0.0455 > C 1/23 = 0.0435
    knn = ItemKNN(n_neighbors=2).fit(frame(TINY))
    assert knn.neighbors[knn.indptr[0]:knn.indptr[1]].tolist() == [1, 3]  # B, D; C cut
    np.testing.assert_allclose(knn.similarity[knn.indptr[0]:knn.indptr[1]],
                               [2 / 23, 1 / math.sqrt(23 * 21)], rtol=1e-14)
    assert np.diff(knn.indptr).tolist() == [2, 2, 2, 1]
    np.testing.assert_allclose(dense(ItemKNN(n_neighbors=1).fit(frame(TINY)))[0], [0, 2 / 23, 0, 0],
                               rtol=1e-14, atol=0)


def test_itemknn_ties_at_the_cut_keep_the_smaller_index():
    # X-Q, X-P, P-Q: sim(X, Q) == sim(X, P) == 1/22; item order X, Q, P -> X keeps Q.
    knn = ItemKNN(n_neighbors=1).fit(frame([["X", "Q"], ["X", "P"], ["P", "Q"]]))
    assert knn.item_map.ids.tolist() == ["X", "Q", "P"]
    assert knn.neighbors[knn.indptr[0]:knn.indptr[1]].tolist() == [1]
    assert knn.similarity[knn.indptr[0]] == pytest.approx(1 / 22, rel=1e-15)


def test_itemknn_chunked_counting_equals_one_pass(random_data):
    train, _ = random_data
    one = ItemKNN().fit(frame(train))
    chunked = ItemKNN(max_pairs=7).fit(frame(train))
    np.testing.assert_array_equal(one.indptr, chunked.indptr)
    np.testing.assert_array_equal(one.neighbors, chunked.neighbors)
    np.testing.assert_array_equal(one.similarity, chunked.similarity)


def test_itemknn_matches_reference_similarities(random_data):
    train, _ = random_data
    knn = ItemKNN(n_neighbors=4).fit(frame(train))
    catalogue, sessions, supp = reference_model(train)
    ref = reference_knn(catalogue, sessions, supp, n_neighbors=4)
    want = np.zeros((len(catalogue), len(catalogue)))
    for i, row in ref.items():
        for j, v in row.items():
            want[catalogue.index(i), catalogue.index(j)] = v
    np.testing.assert_array_equal(dense(knn), want)


# ----- SessionPop and Pop scores ------------------------------------------------------------
def test_session_pop_scores_by_hand():
    model = SessionPop().fit(frame(TINY))  # supp A 3, B 3, C 3, D 1 -> factor 4
    items = np.array([0, 1, 0, 2])  # one session A B A C
    scores = model.score(items, starts=np.array([0, 0]), positions=np.array([0, 2]))
    assert scores.tolist() == [[4 + 3, 3, 3, 1], [2 * 4 + 3, 4 + 3, 3, 1]]
    assert Pop().fit(frame(TINY)).score(items, np.array([0]), np.array([2])).tolist() == [[3, 3, 3, 1]]


def test_prediction_events():
    starts, positions = prediction_events(np.array([0, 2, 5, 7]))
    assert positions.tolist() == [0, 2, 3, 5]
    assert starts.tolist() == [0, 2, 2, 5]
    starts, positions = prediction_events(np.array([0, 2, 5, 7]), "last")
    assert positions.tolist() == [0, 3, 5]
    assert starts.tolist() == [0, 2, 5]


# ----- FeatureOverlap -----------------------------------------------------------------------
# Values a..e (global indices 0..4). Item 4 has none; item 6 is cold (features, no click).
# File order differs from the training item map's (1 2 3 5 4), so `align` reorders.
FEATURES = {6: "a|b|e", 5: "d|e", 4: "", 3: "c", 2: "b|c", 1: "a|b"}
FEATURE_TRAIN = [[1, 2], [2, 3, 3], [1, 5], [4, 2], [5, 1]]  # supp 1: 3, 2: 3, 3: 2, 5: 2, 4: 1
FEATURE_TEST = [[1, 5, 6], [4, 2, 99, 3], [6, 6, 1], [4, 4], [3, 2, 1, 5], [2, 6]]


def write_features(path, table):
    rows = "".join(f"{i}\t{tags}\n" for i, tags in table.items())
    path.write_text("ItemId\ttags\n" + rows)
    return read_item_features(path, encodings={"tags": "multi"})


@pytest.fixture(scope="module")
def tiny_features(tmp_path_factory):
    features = write_features(tmp_path_factory.mktemp("features") / "items.tsv", FEATURES)
    train = SessionData.from_frame(frame(FEATURE_TRAIN))
    return features, train


def overlap(tiny_features, **kwargs):
    features, train = tiny_features
    return FeatureOverlap(features.align(train.item_map).features, **kwargs).fit(train)


def reference_overlap(prefix, catalogue, supp, tie_break):
    """Scores of the catalogue after the clicks `prefix` (ids), by loops over the values:
    cosine of each item's value set with the summed value counts of the prefix."""
    values = {i: set(FEATURES[i].split("|")) - {""} for i in catalogue}
    profile = {}
    for i in prefix:
        for v in values[i]:
            profile[v] = profile.get(v, 0) + 1
    norm2 = sum(c * c for c in profile.values())
    squares, cosines = {}, {}
    for j in catalogue:
        dot = sum(profile.get(v, 0) for v in values[j])
        squares[j] = Fraction(dot * dot, norm2 * len(values[j])) if dot else Fraction(0)
        cosines[j] = math.sqrt(float(squares[j]))  # one correctly rounded division, as promised
        textbook = dot / (math.sqrt(norm2) * math.sqrt(len(values[j]))) if dot else 0.0
        assert cosines[j] == pytest.approx(textbook, rel=1e-15)
    if tie_break is None:
        return [cosines[j] for j in catalogue]
    positive = sorted({q for q in squares.values() if q > 0})
    factor = max(supp.values()) + 1
    return [sum(q <= squares[j] for q in positive) * factor + supp[j] for j in catalogue]


@pytest.mark.parametrize("max_entries", [4_000_000, 3])
@pytest.mark.parametrize("tie_break", ["pop", None])
def test_feature_overlap_equals_brute_force(tiny_features, tie_break, max_entries):
    model = overlap(tiny_features, tie_break=tie_break, max_entries=max_entries)
    catalogue = [1, 2, 3, 5, 4, 6]
    assert model.item_map.ids.tolist() == catalogue
    supp = {1: 3, 2: 3, 3: 2, 5: 2, 4: 1, 6: 0}
    assert model.support.tolist() == [supp[i] for i in catalogue]
    test = SessionData.from_frame(frame(FEATURE_TEST), item_map=model.item_map)
    starts, positions = prediction_events(test.offsets)
    got = model.score(test.items, starts, positions)
    ids = model.item_map.ids[test.items]
    want = [reference_overlap(ids[s:p + 1].tolist(), catalogue, supp, tie_break)
            for s, p in zip(starts, positions)]
    assert len(want) == 11  # 99 skipped; the one-item session [4, 4] is scored too
    np.testing.assert_array_equal(got, np.array(want))


def test_feature_overlap_ranks_the_cold_item_first(tiny_features):
    # Session 1 5: profile a b d e. Cold 6 (a b e) shares 3 values: 3 / (2 sqrt 3); items 1
    # (a b) and 5 (d e) 2 / (2 sqrt 2); 2 (b c) 1 / (2 sqrt 2); 3 (c) and 4 (no values) 0.
    items, starts, positions = np.array([0, 3]), np.array([0]), np.array([1])
    cos = overlap(tiny_features, tie_break=None).score(items, starts, positions)[0]
    np.testing.assert_allclose(cos, [1 / math.sqrt(2), 1 / (2 * math.sqrt(2)), 0, 1 / math.sqrt(2), 0,
                                     math.sqrt(3) / 2], rtol=1e-15, atol=0)
    assert cos[0] == cos[3]  # 1 and 5: an exact tie
    scores = overlap(tiny_features).score(items, starts, positions)[0]  # factor 4
    assert scores.tolist() == [2 * 4 + 3, 1 * 4 + 3, 2, 2 * 4 + 2, 1, 3 * 4 + 0]
    assert np.argmax(scores) == 5  # no clicks, yet first


def test_feature_overlap_items_without_features_score_zero(tiny_features):
    none, pop = overlap(tiny_features, tie_break=None), overlap(tiny_features)
    items = np.array([4, 4, 0])  # 4 (no values), 4, then 1
    starts, positions = np.zeros(3, np.int64), np.arange(3)
    cos = none.score(items, starts, positions)
    assert (cos[:, 4] == 0).all()  # item 4 never overlaps
    assert (cos[:2] == 0).all()  # a session of value-less items overlaps with nothing
    np.testing.assert_array_equal(pop.score(items, starts, positions)[:2], [pop.support, pop.support])
    assert pop.score(items, starts, positions)[2, 4] == 1  # its support only


def test_feature_overlap_evaluates_cold_clicks(tiny_features):
    """Clicks on the cold item are targets (not skipped); metrics as from the reference ranks."""
    model = overlap(tiny_features)
    got = evaluate_baseline(model, frame(FEATURE_TEST), cutoffs=(1, 3), mode="conservative")
    catalogue, supp = [1, 2, 3, 5, 4, 6], {1: 3, 2: 3, 3: 2, 5: 2, 4: 1, 6: 0}
    ranks = []
    for clicks in FEATURE_TEST:
        known = [c for c in clicks if c in supp]
        for p in range(len(known) - 1):
            scores = reference_overlap(known[:p + 1], catalogue, supp, "pop")
            ranks.append(sum(s >= scores[catalogue.index(known[p + 1])] for s in scores))
    ranks = np.array(ranks, dtype=np.float64)
    assert got["n_events"] == len(ranks) == 11 and got["skipped_unknown"] == 1
    for k in (1, 3):
        assert got[f"recall@{k}"] == pytest.approx(np.mean(ranks <= k), abs=1e-12)
        assert got[f"mrr@{k}"] == pytest.approx(np.mean(np.where(ranks <= k, 1 / ranks, 0)), abs=1e-12)


def test_feature_overlap_chunks_equal_dense_reference(tmp_path):
    """Random catalogue (ties, value-less and cold items): the chunked sparse products equal
    a dense p @ X^T, whatever max_entries."""
    rng = np.random.default_rng(3)
    values = [f"v{k:02d}" for k in range(30)]
    table = {i: "|".join(rng.choice(values, rng.integers(0, 5), replace=False)) for i in range(1, 121)}
    features = write_features(tmp_path / "items.tsv", table)
    train = SessionData.from_frame(frame(random_sessions(rng, 80, list(range(1, 101)))))
    aligned = features.align(train.item_map)
    assert aligned.n_cold > 0
    x = np.zeros((len(aligned.features), features.n_values))  # [N, M], dense on purpose
    for j in range(len(x)):
        x[j, aligned.features.item_values(j)] = 1
    model = FeatureOverlap(aligned.features, tie_break=None).fit(train)
    test = SessionData.from_frame(frame(random_sessions(rng, 40, list(range(1, 121)))),
                                  item_map=model.item_map)
    starts, positions = prediction_events(test.offsets)
    p = np.stack([x[test.items[s:e + 1]].sum(axis=0) for s, e in zip(starts, positions)])  # [E, M]
    dot = p @ x.T
    want = np.sqrt(dot * dot / np.outer(np.maximum((p * p).sum(1), 1), np.maximum(x.sum(1), 1)))
    for max_entries in (4_000_000, 1, 57):
        got = FeatureOverlap(aligned.features, tie_break=None, max_entries=max_entries).fit(train)
        np.testing.assert_array_equal(got.score(test.items, starts, positions), want)
    np.testing.assert_array_equal(model.profiles(test.items, starts, positions), p)


def test_feature_overlap_errors(tiny_features, tmp_path):
    features, train = tiny_features
    with pytest.raises(ValueError, match=r"^`features` row 0 is item 6, the training item map's item 0 is 1: "
                                         r"the first rows should be .*align"):
        FeatureOverlap(features).fit(train)  # file order, not aligned
    with pytest.raises(ValueError, match="`features` has 2 rows, fewer than the 5 items"):
        FeatureOverlap(write_features(tmp_path / "two.tsv", {1: "a", 2: "b"})).fit(train)
    with pytest.raises(TypeError, match="`features` should be an ItemFeatures"):
        FeatureOverlap(features.align(train.item_map))
    with pytest.raises(ValueError, match="`tie_break` should be \"pop\" or None"):
        FeatureOverlap(features, tie_break="popularity")


# ----- errors -------------------------------------------------------------------------------
def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="`n_neighbors` should be a positive int. Received: `n_neighbors` = 0"):
        ItemKNN(n_neighbors=0)
    with pytest.raises(ValueError, match="`alpha` should be in"):
        ItemKNN(alpha=1.5)
    with pytest.raises(ValueError, match="Pop is not fitted"):
        evaluate_baseline(Pop(), frame(TINY))
    with pytest.raises(ValueError, match="Unknown tie mode .optimistic."):
        evaluate_baseline(Pop().fit(frame(TINY)), frame(TINY), mode="optimistic")
    with pytest.raises(TypeError, match="`train` should be a pandas DataFrame"):
        Pop().fit([[1, 2]])
