"""Tests of tf_gru4rec.serving.rules and Recommender: the business rules (blocklist, exclude seen, candidate
restriction, padding) through `GRU4Rec.recommend` and through the exported `stateful`,
`stateful_rules`, `step`, `step_rules` and `set_blocklist` signatures.

One tiny untrained model (8 units, 30 items, random output biases so that no two items tie)
is exported once per module; every result is compared with a brute-force numpy reference
built from `GRU4Rec.score_all`'s full scores. Each test loads its own copy of the export, so
neither sessions nor blocklists leak between tests.
"""

import numpy as np
import pytest
import tensorflow as tf

from tf_gru4rec.models.gru4rec import GRU4Rec
from tf_gru4rec.serving import export as export_module
from tf_gru4rec.serving import rules
from tf_gru4rec.serving.recommender import Recommender

IDS = 1000 + 7 * np.arange(30)
UNKNOWN = 5
K, H, MAX_SEEN = 6, 8, 3
PAD = -1


def tiny_model(ids=IDS):
    model = GRU4Rec(item_ids=ids, layers=[H], batch_size=2, seed=3)
    model.item_table.by.assign(np.random.default_rng(0).normal(size=len(ids)).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def blocked(model):
    """The export's initial blocklist: the first recommendation after a click on IDS[1]."""
    return [reference(model, [IDS[1]])[0][0]]


@pytest.fixture(scope="module")
def exported(model, blocked, tmp_path_factory):
    """Exported with an initial blocklist."""
    return export_module.export_model(model, tmp_path_factory.mktemp("rules") / "gru4rec",
                                      blocklist=blocked, k=K, max_seen=MAX_SEEN)


@pytest.fixture()
def served(exported):
    return tf.saved_model.load(exported)


# ----- the brute-force reference -------------------------------------------------------------
def full_scores(model, clicks):
    """score_all of the session's known clicks run from the zero state: np [N]."""
    state, h = model.initial_state(1), tf.zeros([1, H])
    for index in model.item_map.lookup(clicks):
        if index >= 0:
            state, h = model.step(tf.constant([index], tf.int32), state)
    return model.score_all(h).numpy()[0]


def reference(model, clicks, k=K, blocked=(), seen=(), candidates=None):
    """(ids [k], scores [k]): the full ranking without blocked and seen ids, only candidates
    (if given), padded with PAD / -inf."""
    scores = full_scores(model, clicks)
    ids = model.item_map.ids
    allowed = ~np.isin(ids, list(blocked)) & ~np.isin(ids, list(seen))
    if candidates is not None:
        allowed &= np.isin(ids, list(candidates))
    order = [j for j in np.argsort(-scores, kind="stable") if allowed[j]][:k]
    pad = k - len(order)
    return (np.concatenate([ids[order], np.full(pad, PAD)]),
            np.concatenate([scores[order], np.full(pad, -np.inf, np.float32)]))


def assert_matches(model, cases, item_ids, scores):
    """Rows of (item_ids, scores) equal the reference of each case (a dict of its arguments)."""
    for row, case in enumerate(cases):
        ref_ids, ref_scores = reference(model, **case)
        np.testing.assert_array_equal(np.asarray(item_ids)[row], ref_ids, err_msg=str(case))
        np.testing.assert_allclose(np.asarray(scores)[row], ref_scores, atol=1e-5, err_msg=str(case))


# ----- the shared ranking ----------------------------------------------------------------------
def test_top_k_allowed_keeps_scores_and_pads():
    scores = tf.constant([[0.5, 3.0, -1.0, 2.0], [1.0, 0.0, 4.0, -2.0]])
    allowed = tf.constant([[True, False, True, True], [False, False, True, False]])
    index, top = rules.top_k_allowed(scores, allowed, 3)
    np.testing.assert_array_equal(index, [[3, 0, 2], [2, -1, -1]])
    np.testing.assert_array_equal(top, [[2.0, 0.5, -1.0], [4.0, -np.inf, -np.inf]])
    mask = rules.allowed_items(tf.constant([True, True, False, True]),
                                      seen=tf.constant([[0, -1], [3, 3]]),
                                      candidates=tf.constant([[1, 2], [-1, -1]]),
                                      restrict=tf.constant([False, True]))
    np.testing.assert_array_equal(mask, [[False, True, False, True], [False, False, False, False]])


# ----- Python API -----------------------------------------------------------------------------------
def clicks_in_their_own_top(model, n, length):
    """n click sequences whose unrestricted top-K holds one of their own clicks."""
    found = [list(IDS[i : i + length]) for i in range(len(IDS) - length)]
    return [c for c in found if set(reference(model, c)[0]) & set(c)][:n]


def test_recommend_excludes_seen(model):
    sessions = [*clicks_in_their_own_top(model, 2, 3), [IDS[0], UNKNOWN], []]
    assert len(sessions) == 4
    ids, scores, report = Recommender(model).recommend(sessions, k=K, exclude_seen=True)
    assert_matches(model, [{"clicks": s, "seen": s} for s in sessions], ids, scores)
    assert report["unknown"] == [[], [], [UNKNOWN], []] and report["padded"] == [0] * 4


def test_recommend_blocklist_of_recommender_and_of_call(model):
    sessions = [list(IDS[[1, 2]]), [IDS[5]]]
    top = reference(model, sessions[0])[0]
    recommender = Recommender(model)
    assert recommender.set_blocklist([top[0], UNKNOWN, top[0], top[3]]) == {"blocked": 2, "unknown": [UNKNOWN]}
    np.testing.assert_array_equal(recommender.blocklist, sorted(top[[0, 3]]))
    ids, scores, report = recommender.recommend(sessions, k=K, blocklist=[top[1], 77])
    blocked = top[[0, 1, 3]]
    assert_matches(model, [{"clicks": s, "blocked": blocked} for s in sessions], ids, scores)
    assert report["unknown_blocklist"] == [77]
    # Replacing the blocklist unblocks the old items; the call's blocklist was for one call.
    recommender.set_blocklist([top[2]])
    ids, scores, _ = recommender.recommend(sessions, k=K)
    assert_matches(model, [{"clicks": s, "blocked": [top[2]]} for s in sessions], ids, scores)
    assert ids[0][0] == top[0]


def test_recommend_candidates_shared_or_per_session_keep_full_scores(model):
    sessions = [list(IDS[[1, 4]]), [IDS[8]], [IDS[2]]]
    shared = [IDS[20], UNKNOWN, IDS[3], IDS[1], IDS[27]]
    ids, scores, report = Recommender(model).recommend(sessions, k=3, candidates=shared)
    assert_matches(model, [{"clicks": s, "k": 3, "candidates": shared} for s in sessions], ids, scores)
    assert report["unknown_candidates"] == [[UNKNOWN]] * 3
    per_session = [list(IDS[[5, 6, 7, 8]]), None, [IDS[9], 123]]
    ids, scores, report = Recommender(model).recommend(sessions, k=K, candidates=per_session)
    assert_matches(model, [{"clicks": s, "candidates": c} for s, c in zip(sessions, per_session)],
                   ids, scores)
    assert report["unknown_candidates"] == [[], [], [123]] and report["padded"] == [2, 0, 5]
    # The candidates' scores are their full-catalogue scores.
    full = full_scores(model, sessions[0])
    np.testing.assert_allclose(scores[0, :4], np.sort(full[[5, 6, 7, 8]])[::-1], atol=1e-6)
    with pytest.raises(ValueError, match="one list .* per session"):
        Recommender(model).recommend(sessions, candidates=[[IDS[1]], [IDS[2]]])
    with pytest.raises(ValueError, match="mixes ids and lists"):
        Recommender(model).recommend(sessions, candidates=[IDS[1], [IDS[2]], None])


def test_recommend_all_rules_together_pad_with_the_sentinel(model):
    clicks = list(IDS[[1, 2, 3]])
    ids, scores, report = Recommender(model, blocklist=[IDS[4]]).recommend(
        [clicks], k=K, exclude_seen=True, candidates=list(IDS[[1, 2, 4, 5, 6]]))
    np.testing.assert_array_equal(ids[0, 2:], [PAD] * 4)
    assert np.isneginf(scores[0, 2:]).all() and report["padded"] == [4]
    assert_matches(model, [{"clicks": clicks, "seen": clicks, "blocked": [IDS[4]],
                            "candidates": IDS[[1, 2, 4, 5, 6]]}], ids, scores)


def test_string_ids_pad_with_empty_string_in_recommend_and_export(tmp_path):
    ids = np.array([f"i{j}" for j in range(10)])
    model = tiny_model(ids)
    top, scores, _ = Recommender(model).recommend([["i1"]], k=4, candidates=["i2", "i3", "nope"])
    assert top[0, 2:].tolist() == ["", ""] and np.isneginf(scores[0, 2:]).all()
    assert set(top[0, :2]) == {"i2", "i3"}
    loaded = tf.saved_model.load(export_module.export_model(model, tmp_path / "m", k=4))
    out = loaded.signatures["step_rules"](
        item_id=tf.constant(["i1"]), state=tf.zeros([1, H]), exclude_seen=tf.constant([False]),
        seen_ids=tf.constant([[""]]), candidate_ids=tf.constant([["i2", "nope", "", "i3"]]),
        restrict=tf.constant([True]))
    assert [i.decode() for i in out["item_ids"].numpy()[0]] == top[0].tolist()
    np.testing.assert_allclose(out["scores"].numpy()[0], scores[0], atol=1e-5)
    assert out["unknown_candidates"].numpy().tolist() == [1]  # "nope"; the pad "" is not counted
    known = loaded.signatures["set_blocklist"](item_ids=tf.constant(["i2", "", "zz"]))["known"]
    np.testing.assert_array_equal(known, [True, False, False])


# ----- exported signatures ------------------------------------------------------------------------
def stateful_rules(loaded, sessions, items, exclude_seen=False, candidates=None):
    """Calls stateful_rules; candidates: one list (or None) per row."""
    candidates = [None] * len(items) if candidates is None else candidates
    width = max([len(c or []) for c in candidates] + [0])
    out = loaded.signatures["stateful_rules"](
        session_id=tf.constant(sessions), item_id=tf.constant(items, tf.int64),
        exclude_seen=tf.constant([exclude_seen] * len(items)),
        candidate_ids=tf.constant([list(c or []) + [PAD] * (width - len(c or [])) for c in candidates],
                                  tf.int64, shape=[len(items), width]),
        restrict=tf.constant([c is not None for c in candidates]))
    return {k: v.numpy() for k, v in out.items()}


def step_rules(loaded, items, state, seen=None, candidates=None):
    """Calls step_rules; seen: per row the earlier clicks (None: exclude_seen off)."""
    rows = len(items)
    candidates = [None] * rows if candidates is None else candidates
    pad = lambda lists: tf.constant(  # noqa: E731
        [list(x) + [PAD] * (max(map(len, lists)) - len(x)) for x in lists], tf.int64,
        shape=[rows, max(map(len, lists))])
    out = loaded.signatures["step_rules"](
        item_id=tf.constant(items, tf.int64), state=tf.constant(state, tf.float32),
        exclude_seen=tf.constant([seen is not None] * rows),
        seen_ids=pad(seen or [[]] * rows), candidate_ids=pad([c or [] for c in candidates]),
        restrict=tf.constant([c is not None for c in candidates]))
    return {k: v.numpy() for k, v in out.items()}


def set_blocklist(loaded, ids):
    return loaded.signatures["set_blocklist"](item_ids=tf.constant(ids, tf.int64, shape=[len(ids)]))[
        "known"].numpy()


def test_export_checks_the_pad_id_is_no_item(tmp_path):
    with pytest.raises(export_module.ExportError, match="pad id"):
        export_module.export_model(tiny_model(np.arange(-1, 9)), tmp_path / "m", k=2)


def test_stateful_rules_exclude_the_sessions_last_clicks(served, model, blocked):
    """The store remembers each session's last MAX_SEEN known clicks, across requests and for
    a session repeated in one request; exclude_seen is per row."""
    a = IDS[[1, 2, 3, 4, 5]]
    clicks = {"s": [], "t": []}
    cases, got_ids, got_scores = [], [], []
    for rows in [[("s", a[0])], [("s", a[1]), ("t", a[2]), ("s", a[2])], [("s", UNKNOWN)],
                 [("s", a[3]), ("t", a[0])], [("s", a[4])]]:
        out = stateful_rules(served, [s for s, _ in rows], [i for _, i in rows], exclude_seen=True)
        for row, (s, item) in enumerate(rows):
            clicks[s] = clicks[s] + [item]
            known = [c for c in clicks[s] if c != UNKNOWN]
            cases.append({"clicks": clicks[s], "seen": known[-MAX_SEEN:], "blocked": blocked})
            got_ids.append(out["item_ids"][row])
            got_scores.append(out["scores"][row])
    assert_matches(model, cases, got_ids, got_scores)
    # Without exclude_seen the same session gets its clicks back (only the blocklist applies).
    out = stateful_rules(served, ["s"], [a[0]])
    assert_matches(model, [{"clicks": clicks["s"] + [a[0]], "blocked": blocked}], out["item_ids"],
                   out["scores"])
    assert set(out["item_ids"][0]) & set(clicks["s"])  # which exclude_seen would have dropped


def test_blocklist_is_set_on_the_running_model_and_applies_to_every_signature(served, exported, model,
                                                                             blocked):
    a, b = IDS[1], IDS[2]
    zeros = np.zeros((1, H), np.float32)

    def all_signatures(blocked):
        """stateful, stateful_rules, step and step_rules against the reference."""
        sid = f"x{len(blocked)}"
        outs = [{k: v.numpy() for k, v in served.signatures["stateful"](
                    session_id=tf.constant([sid]), item_id=tf.constant([a], tf.int64)).items()},
                stateful_rules(served, [sid], [b]),
                {k: v.numpy() for k, v in served.signatures["step"](
                    item_id=tf.constant([a], tf.int64), state=tf.constant(zeros)).items()},
                step_rules(served, [a], zeros)]
        prefixes = [[a], [a, b], [a], [a]]
        for out, clicks in zip(outs, prefixes):
            assert_matches(model, [{"clicks": clicks, "blocked": blocked}], out["item_ids"], out["scores"])

    all_signatures(blocked)  # the blocklist the model had at export
    top = reference(model, [a], blocked=blocked)[0]
    new = [top[0], UNKNOWN, top[2], PAD, top[0]]
    np.testing.assert_array_equal(set_blocklist(served, new), [True, False, True, False, True])
    all_signatures([top[0], top[2]])  # replaced: the export's blocked item is available again
    # Another load of the same version (another server process) keeps the export's blocklist.
    other = tf.saved_model.load(exported)
    out = other.signatures["step"](item_id=tf.constant([a], tf.int64), state=tf.constant(zeros))
    assert_matches(model, [{"clicks": [a], "blocked": blocked}], out["item_ids"], out["scores"])
    set_blocklist(served, [])  # an empty list clears it
    all_signatures([])


def test_candidates_restrict_with_full_scores_and_count_unknown(served, model, blocked):
    a, b = IDS[6], IDS[9]
    candidates = [list(IDS[[1, 2, 3, 4, 5, 6, 7, 8, 10]]), [IDS[0], UNKNOWN, *blocked, 31], None]
    out = stateful_rules(served, ["c1", "c2", "c1"], [a, a, b], candidates=candidates)
    cases = [{"clicks": [a], "blocked": blocked, "candidates": candidates[0]},
             {"clicks": [a], "blocked": blocked, "candidates": candidates[1]},
             {"clicks": [a, b], "blocked": blocked}]
    assert_matches(model, cases, out["item_ids"], out["scores"])
    np.testing.assert_array_equal(out["unknown_candidates"], [0, 2, 0])
    np.testing.assert_array_equal(out["item_ids"][1, 1:], [PAD] * (K - 1))  # IDS[0] only
    # step_rules: the same rows from the stateless side, with exclude_seen as well.
    zeros = np.zeros((2, H), np.float32)
    first = step_rules(served, [a, a], zeros)
    out = step_rules(served, [b, b], first["state"], seen=[[a], [a]], candidates=[None, candidates[0]])
    seen = [a, b]
    cases = [{"clicks": seen, "seen": seen, "blocked": blocked},
             {"clicks": seen, "seen": seen, "blocked": blocked, "candidates": candidates[0]}]
    assert_matches(model, cases, out["item_ids"], out["scores"])
    # The restricted scores are score_items' scores of the same items (full-catalogue scores).
    picked = out["item_ids"][1][out["item_ids"][1] != PAD]
    scored = served.signatures["score_items"](state=tf.constant(out["state"][1:]),
                                              candidate_ids=tf.constant([picked], tf.int64))
    np.testing.assert_allclose(scored["scores"].numpy()[0], out["scores"][1][: len(picked)], atol=1e-5)


def test_step_rules_exclude_the_given_clicks_and_the_current_one(served, model, blocked):
    c, d = [clicks[0] for clicks in clicks_in_their_own_top(model, 2, 1)]  # each in its own top
    top = [i for i in reference(model, [c])[0] if i != c]
    out = step_rules(served, [c, d, UNKNOWN], np.zeros((3, H), np.float32),
                     seen=[top[:2], [top[0], UNKNOWN, PAD], [top[0]]])
    cases = [{"clicks": [c], "seen": [*top[:2], c], "blocked": blocked},
             {"clicks": [d], "seen": [top[0], d], "blocked": blocked},
             {"clicks": [], "seen": [top[0]], "blocked": blocked}]
    assert_matches(model, cases, out["item_ids"], out["scores"])
    np.testing.assert_array_equal(out["unknown_item"], [False, False, True])


def test_mismatched_rule_inputs_fail_with_a_clear_invalid_argument(served):
    with pytest.raises(tf.errors.InvalidArgumentError, match="restrict must have one row"):
        served.signatures["stateful_rules"](
            session_id=tf.constant(["a"]), item_id=tf.constant([IDS[0]], tf.int64),
            exclude_seen=tf.constant([True]), candidate_ids=tf.zeros([1, 0], tf.int64),
            restrict=tf.constant([True, False]))


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_recommend_refuses_a_k_that_is_no_positive_int(model, k):
    with pytest.raises(ValueError, match=rf"^`k` should be a positive int\. Received: k={k}$"):
        Recommender(model).recommend([[IDS[0]]], k=k)


# ----- cold-start items ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def featured(hot_clicks):
    """`hot_clicks`; item 99 has the feature 'hot' and no clicks. Trained briefly with item
    features."""
    import pandas as pd

    from tf_gru4rec.data.item_features import FeatureEncoder
    from tf_gru4rec.training.trainer import train

    table = pd.DataFrame({"ItemId": [0, 1, 2, 3, 4, 5, 99, 98],
                          "kind": ["start", "hot", "hot", "hot", "start", "other", "hot", "new"]})
    features = FeatureEncoder.fit({"kind": list(table["kind"])}, {"kind": "categorical"}, "t").encode(table)
    return train(hot_clicks, "layers=16,batch_size=8,n_sample=4,n_epochs=3,learning_rate=0.2,seed=1",
                 verbose=0, item_features=features).model


def test_a_never_clicked_item_is_recommended_by_its_features(featured):
    """99 and 98 were never clicked (the id-only catalogue cannot hold them). 99 shares the
    feature of the items that follow 0, 98's feature is new: after 0, 99 ranks among the
    'hot' items, its score near theirs and far above 98's (whose score is its untrained id
    part: what 99's would be without features)."""
    assert sorted(featured.item_map.ids[:6].tolist()) == [0, 1, 2, 3, 4, 5]
    assert featured.item_map.ids[6:].tolist() == [99, 98]
    ids, scores, report = Recommender(featured).recommend([[0], [4]], k=8)
    after_0, score = ids[0].tolist(), dict(zip(ids[0].tolist(), scores[0].tolist()))
    assert set(after_0[:4]) == {1, 2, 3, 99}, after_0
    hot = [score[i] for i in (1, 2, 3)]
    assert score[99] - score[98] > 0.5 * (min(hot) - score[98]), score
    assert ids[1].tolist()[0] == 5
    assert report["unknown"] == [[], []]
