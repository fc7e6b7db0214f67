"""Tests of tf_gru4rec.serving.export: the SavedModel's signatures, their values against the Keras
model, the on-disk layout (versions, atomic writes, warm-up file) and the command line.

One tiny model (16 units, 60 synthetic items) is trained and exported once per module;
every value is compared with `GRU4Rec.step` / `score_all` / `recommend` on the same weights.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions
from tf_gru4rec.serving import export as export_module
from tf_gru4rec.serving.recommender import Recommender
from tf_gru4rec.system.memory import request_limits
from tf_gru4rec.training import model_dir, trainer

PARAMS = "layers=16,batch_size=8,n_sample=16,n_epochs=1,seed=1,block_steps=10"
K, H = 5, 16
UNKNOWN = 5  # synthetic item ids are 1000 + 7 * i
CLI_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
# TensorFlow's script, beside this interpreter: found also when the venv is not activated.
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


@pytest.fixture(scope="module")
def data():
    return split_by_time(synthetic_sessions(n_sessions=300, n_items=60, seed=0))


@pytest.fixture(scope="module")
def model(data):
    return trainer.train(data[0], PARAMS, verbose=0).model


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_module.export_model(model, tmp_path_factory.mktemp("export") / "gru4rec", k=K, capacity=1000)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported)


@pytest.fixture(scope="module")
def sessions(data, model):
    """Click sequences of the test split (original ids), items unknown to the model dropped."""
    test = data[1][model.item_map.lookup(data[1]["ItemId"]) >= 0]
    clicks = [g.tolist() for _, g in test.groupby("SessionId", sort=False)["ItemId"]]
    return [c for c in clicks if len(c) >= 2]


def run_step(loaded, items, state):
    out = loaded.signatures["step"](item_id=tf.constant(items, tf.int64), state=tf.constant(state))
    return {k: v.numpy() for k, v in out.items()}


def keras_top_k(model, items, state):
    """The Keras model's own step + full ranking: (state', ids [b, K], scores [b, K])."""
    state, h = model.step(tf.constant(model.item_map.lookup(items), tf.int32), state)
    top = tf.math.top_k(model.score_all(h), K)
    return state.numpy(), model.item_map.ids[top.indices.numpy()], top.values.numpy()


def spec_table(fn):
    def table(specs):
        return {k: (s.dtype.name, tuple(s.shape.as_list())) for k, s in specs.items()}

    return table(fn.structured_input_signature[1]), table(fn.structured_outputs)


def quiet(stderr):
    """stderr without TensorFlow's start-up log lines."""
    noise = ("WARNING: All log messages", "I0000", "W0000", "E0000")
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(noise)]


# ----- signatures -------------------------------------------------------------------------------
def test_signatures_have_the_documented_keys_dtypes_and_shapes(loaded):
    recs = {"item_ids": ("int64", (None, K)), "scores": ("float32", (None, K)),
            "unknown_item": ("bool", (None,))}
    stateful = ({"session_id": ("string", (None,)), "item_id": ("int64", (None,))},
                {**recs, "new_session": ("bool", (None,))})
    rules = {"exclude_seen": ("bool", (None,)), "candidate_ids": ("int64", (None, None)),
             "restrict": ("bool", (None,))}
    counts = {"unknown_candidates": ("int32", (None,))}
    expected = {
        "stateful": stateful,
        "serving_default": stateful,
        "end_session": ({"session_id": ("string", (None,))}, {"ended": ("bool", (None,))}),
        "step": ({"item_id": ("int64", (None,)), "state": ("float32", (None, H))},
                 {**recs, "state": ("float32", (None, H))}),
        "score_items": ({"state": ("float32", (None, H)), "candidate_ids": ("int64", (None, None))},
                        {"scores": ("float32", (None, None)), "known": ("bool", (None, None))}),
        "stateful_rules": ({**stateful[0], **rules}, {**stateful[1], **counts}),
        "step_rules": ({"item_id": ("int64", (None,)), "state": ("float32", (None, H)),
                        "seen_ids": ("int64", (None, None)), **rules},
                       {**recs, "state": ("float32", (None, H)), **counts}),
        "set_blocklist": ({"item_ids": ("int64", (None,))}, {"known": ("bool", (None,))}),
        "limits": ({}, {key: ("int64", ()) for key in
                        ("max_rows", "max_candidates", "max_session_id_bytes", "capacity", "n_items",
                         "spare_items")}),
    }
    assert {name: spec_table(fn) for name, fn in loaded.signatures.items()} == expected


def test_saved_model_cli_show_lists_signatures(exported):
    out = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", exported, "--all"], capture_output=True,
                         text=True, env=CLI_ENV, check=True).stdout
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)Method name", out, re.DOTALL))
    assert set(blocks) == {"__saved_model_init_op", *export_module.SIGNATURES}

    def keys(block):
        inputs, outputs = block.split("output(s):")
        names = lambda kind, text: sorted(re.findall(kind + r"\['(\w+)'\]", text))
        return names("inputs", inputs), names("outputs", outputs)

    recs = ["item_ids", "scores", "unknown_item"]
    assert keys(blocks["stateful"]) == (["item_id", "session_id"], sorted(recs + ["new_session"]))
    assert keys(blocks["step"]) == (["item_id", "state"], sorted(recs + ["state"]))
    assert keys(blocks["score_items"]) == (["candidate_ids", "state"], ["known", "scores"])
    assert keys(blocks["end_session"]) == (["session_id"], ["ended"])
    info = r"inputs\['{}'\] tensor_info:\s+dtype: {}\s+shape: \({}\)"
    assert re.search(info.format("item_id", "DT_INT64", "-1"), blocks["step"])
    assert re.search(info.format("state", "DT_FLOAT", "-1, 16"), blocks["step"])


def cli_results(stdout):
    """`saved_model_cli run` output -> {output key: flat np.ndarray of its printed values}."""
    found = re.findall(r"Result for output key (\w+):\n(.*?)(?=\nResult for|\Z)", stdout, re.DOTALL)
    number = r"-?inf|-?\d+(?:\.\d*)?(?:e[-+]?\d+)?|True|False"
    as_value = lambda v: {"True": 1.0, "False": 0.0}.get(v, v)
    return {key: np.array([as_value(v) for v in re.findall(number, text)], float) for key, text in found}


def test_saved_model_cli_runs_step_and_stateful(exported, model):
    a, b = model.item_map.ids[:2].tolist()
    zeros = [[0.0] * H] * 2
    run = lambda sig, exprs: cli_results(subprocess.run(
        [SAVED_MODEL_CLI, "run", "--dir", exported, "--tag_set", "serve", "--signature_def", sig,
         "--input_exprs", exprs], capture_output=True, text=True, env=CLI_ENV, check=True).stdout)

    step = run("step", f"item_id=[{a},{UNKNOWN}];state={zeros}")
    _, ids, scores = keras_top_k(model, [a], tf.zeros([1, H]))
    np.testing.assert_array_equal(step["item_ids"].reshape(2, K)[0], ids[0])
    np.testing.assert_allclose(step["scores"].reshape(2, K)[0], scores[0], atol=1e-5)
    np.testing.assert_array_equal(step["unknown_item"], [0, 1])
    np.testing.assert_array_equal(step["state"].reshape(2, H)[1], np.zeros(H))  # unknown: state kept
    # The session-based (C++ loader) path that TF Serving uses keeps state within a request too.
    stateful = run("stateful", f'session_id=["s","s"];item_id=[{a},{b}]')
    ref_ids, ref_scores, _ = Recommender(model).recommend([[a], [a, b]], k=K)
    np.testing.assert_array_equal(stateful["item_ids"].reshape(2, K), ref_ids)
    np.testing.assert_allclose(stateful["scores"].reshape(2, K), ref_scores, atol=1e-5)


LOAD_WITHOUT_PACKAGE = r"""
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tf_gru4rec":
            raise ImportError("tf_gru4rec is blocked")

sys.meta_path.insert(0, Block())
try:
    import tf_gru4rec
    sys.exit("tf_gru4rec importable")
except ImportError:
    pass
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
items = json.loads(sys.argv[2])
step = loaded.signatures["step"](item_id=tf.constant(items, tf.int64), state=tf.zeros([len(items), 16]))
stateful = loaded.signatures["stateful"](
    session_id=tf.constant(["x"] * len(items)), item_id=tf.constant(items, tf.int64))
print(json.dumps({"step": step["item_ids"].numpy().tolist(),
                  "stateful": stateful["item_ids"].numpy().tolist(),
                  "n_sessions": int(loaded.n_sessions()),
                  "modules": [m for m in sys.modules if m.startswith("tf_gru4rec")]}))
"""


def test_loads_and_runs_without_tf_gru4rec(exported, model, tmp_path):
    items = model.item_map.ids[:3].tolist()
    env = {k: v for k, v in CLI_ENV.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_PACKAGE, exported, json.dumps(items)],
                         capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["modules"] == []
    assert result["step"] == Recommender(model).recommend([[i] for i in items], k=K)[0].tolist()
    assert result["stateful"] == Recommender(model).recommend([items[:1], items[:2], items], k=K)[0].tolist()
    assert result["n_sessions"] == 1


# ----- values against the Keras model --------------------------------------------------------------
def test_step_chain_equals_keras_model(loaded, model, sessions):
    batch = sessions[:20]
    length = max(map(len, batch))
    state = np.zeros((len(batch), H), np.float32)
    keras_state = tf.zeros([len(batch), H])
    prefixes, served_ids, served_scores = [], [], []
    for t in range(length):
        # Sessions that have ended repeat their last click; only rows still running are compared.
        items = [s[min(t, len(s) - 1)] for s in batch]
        out = run_step(loaded, items, state)
        keras_state, ids, scores = keras_top_k(model, items, keras_state)
        np.testing.assert_allclose(out["state"], keras_state, atol=1e-5)
        np.testing.assert_array_equal(out["item_ids"], ids)
        np.testing.assert_allclose(out["scores"], scores, atol=1e-5)
        assert not out["unknown_item"].any()
        state = out["state"]
        for row, s in enumerate(batch):
            if t < len(s):
                prefixes.append(s[: t + 1])
                served_ids.append(out["item_ids"][row])
                served_scores.append(out["scores"][row])
    ref_ids, ref_scores, _ = Recommender(model).recommend(prefixes, k=K)
    np.testing.assert_array_equal(np.array(served_ids), ref_ids)
    np.testing.assert_allclose(np.array(served_scores), ref_scores, atol=1e-5)


@pytest.mark.parametrize("params", ["layers=8/12,embedding=6", "layers=10,constrained_embedding=False"])
def test_other_architectures_match_offline(params, data, sessions, tmp_path):
    """Two layers with a separate embedding, and one-hot input: the served state's last d
    columns are the last layer's output, whatever the architecture."""
    model = trainer.train(data[0], PARAMS.replace("layers=16", params), verbose=0).model
    loaded = tf.saved_model.load(export_module.export_model(model, tmp_path / "gru4rec", k=K))
    clicks = sessions[1]
    out = loaded.signatures["stateful"](session_id=tf.constant(["s"] * len(clicks)),
                                        item_id=tf.constant(clicks, tf.int64))
    ref_ids, ref_scores, _ = Recommender(model).recommend([clicks[: t + 1] for t in range(len(clicks))], k=K)
    np.testing.assert_array_equal(out["item_ids"].numpy(), ref_ids)
    np.testing.assert_allclose(out["scores"].numpy(), ref_scores, atol=1e-5)


def test_unknown_item_keeps_state_and_is_flagged(loaded, model):
    a = int(model.item_map.ids[0])
    first = run_step(loaded, [a], np.zeros((1, H), np.float32))
    states = np.concatenate([first["state"], np.zeros((1, H), np.float32)])
    after = run_step(loaded, [UNKNOWN, UNKNOWN], states)
    np.testing.assert_array_equal(after["unknown_item"], [True, True])
    np.testing.assert_array_equal(after["state"], states)
    # Recommendations of the session so far: [a], and an empty session for a first click.
    ref_ids, ref_scores, report = Recommender(model).recommend([[a, UNKNOWN], [UNKNOWN]], k=K)
    assert report["empty"] == [1]
    np.testing.assert_array_equal(after["item_ids"], ref_ids)
    np.testing.assert_allclose(after["scores"], ref_scores, atol=1e-5)
    np.testing.assert_array_equal(after["item_ids"][0], first["item_ids"][0])


def test_score_items_equals_full_scores_and_flags_unknown(loaded, model, sessions):
    clicks = sessions[0]
    state = np.zeros((1, H), np.float32)
    for item in clicks:
        out = run_step(loaded, [item], state)
        state = out["state"]
    top = out["item_ids"][0].tolist()
    candidates = [top[2], UNKNOWN, *model.item_map.ids[:6].tolist(), top[0]]
    result = loaded.signatures["score_items"](state=tf.constant(state),
                                              candidate_ids=tf.constant([candidates], tf.int64))
    scores, known = result["scores"].numpy()[0], result["known"].numpy()[0]
    np.testing.assert_array_equal(known, [c != UNKNOWN for c in candidates])
    assert scores[1] == -np.inf
    h = tf.constant(state[:, -H:])  # one layer: the state is the last layer's output
    full = model.score_all(h).numpy()[0]
    index = model.item_map.lookup([c for c in candidates if c != UNKNOWN])
    np.testing.assert_allclose(np.delete(scores, 1), full[index], atol=1e-5)
    np.testing.assert_allclose(scores[[0, -1]], out["scores"][0, [2, 0]], atol=1e-5)


def test_string_item_ids_give_string_signatures(data, tmp_path):
    train = data[0].assign(ItemId="i" + data[0]["ItemId"].astype(str))
    model = trainer.train(train, PARAMS, verbose=0).model
    loaded = tf.saved_model.load(export_module.export_model(model, tmp_path / "gru4rec", k=K))
    tables = {name: spec_table(fn) for name, fn in loaded.signatures.items()}
    assert tables["stateful"][0]["item_id"] == ("string", (None,))
    assert tables["stateful"][1]["item_ids"] == ("string", (None, K))
    assert tables["step"][0]["item_id"] == ("string", (None,))
    assert tables["step"][1]["item_ids"] == ("string", (None, K))
    assert tables["score_items"][0]["candidate_ids"] == ("string", (None, None))
    a, b = model.item_map.ids[:2].tolist()
    out = loaded.signatures["stateful"](session_id=tf.constant(["s", "s", "s"]),
                                        item_id=tf.constant([a, "nope", b]))
    ref_ids, ref_scores, _ = Recommender(model).recommend([[a], [a], [a, b]], k=K)
    np.testing.assert_array_equal(np.char.decode(out["item_ids"].numpy().astype("S")), ref_ids)
    np.testing.assert_allclose(out["scores"].numpy(), ref_scores, atol=1e-5)
    np.testing.assert_array_equal(out["unknown_item"].numpy(), [False, True, False])


# ----- request limits ------------------------------------------------------------------------------
def limits_of(loaded):
    return {key: int(value) for key, value in loaded.signatures["limits"]().items()}


def test_request_limits_follow_the_catalogue_and_the_request_memory(model, loaded, tmp_path):
    n, d = model.n_items, H  # one layer: the output table's width is the state's
    assert limits_of(loaded) == {**request_limits(n, H, K, d), "max_session_id_bytes": 256,
                                 "capacity": 1000, "n_items": n, "spare_items": 0}
    row = 2**30 / request_limits(n, H, K, d)["max_rows"]  # bytes of a request row, about
    small = tf.saved_model.load(export_module.export_model(model, tmp_path / "m", k=K,
                                                    request_memory=4.5 * row / 2**30))
    limits = limits_of(small)
    assert limits["max_rows"] == 4 and limits == {
        **request_limits(n, H, K, d, int(4.5 * row)), "max_session_id_bytes": 256, "capacity": 100_000,
        "n_items": n, "spare_items": 0}
    items, c = tf.constant(model.item_map.ids[:5], tf.int64), limits["max_candidates"]
    zeros, same = lambda b: tf.zeros([b, H]), lambda shape: tf.fill(shape, items[0])
    small.signatures["step"](item_id=items[:4], state=zeros(4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 4 rows"):
        small.signatures["step"](item_id=items, state=zeros(5))
    small.signatures["score_items"](state=zeros(1), candidate_ids=same([1, c]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"candidate_ids holds at most {c} ids"):
        small.signatures["score_items"](state=zeros(2), candidate_ids=same([2, c // 2 + 1]))
    with pytest.raises(export_module.ExportError, match="holds not even one request row of 60 items"):
        export_module.ServingModule(model, k=K, request_memory=row / 2 / 2**30)
    assert export_module.ServingModule(model, k=K, max_rows=7).max_rows == 7  # explicit: replaces it


def test_an_empty_request_answers_empty_outputs(loaded):
    ids = lambda *shape: tf.zeros(shape, tf.int64)
    flags, no_sessions = tf.zeros([0], tf.bool), tf.zeros([0], tf.string)
    rules = {"exclude_seen": flags, "candidate_ids": ids(0, 0), "restrict": flags}
    calls = {
        "stateful": {"session_id": no_sessions, "item_id": ids(0)},
        "stateful_rules": {"session_id": no_sessions, "item_id": ids(0), **rules},
        "end_session": {"session_id": no_sessions},
        "step": {"item_id": ids(0), "state": tf.zeros([0, H])},
        "step_rules": {"item_id": ids(0), "state": tf.zeros([0, H]), "seen_ids": ids(0, 0), **rules},
        "score_items": {"state": tf.zeros([0, H]), "candidate_ids": ids(0, 3)},
    }
    for name, inputs in calls.items():
        out = loaded.signatures[name](**inputs)
        assert all(v.shape[0] == 0 for v in out.values()), name
        assert out.get("item_ids", ids(0, K)).shape == (0, K)


# ----- layout on disk ----------------------------------------------------------------------------------
def test_warmup_file_holds_step_requests_only(exported, model):
    path = os.path.join(exported, "assets.extra", "tf_serving_warmup_requests")
    records = tf.data.TFRecordDataset(path)
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log", "predict_log"]
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.signature_name for r in requests] == ["step", "step"]
    assert [r.model_spec.name for r in requests] == ["gru4rec", "gru4rec"]
    assert [sorted(r.inputs) for r in requests] == [["item_id", "state"]] * 2
    items = [tf.make_ndarray(r.inputs["item_id"]) for r in requests]
    states = [tf.make_ndarray(r.inputs["state"]) for r in requests]
    assert [i.shape for i in items] == [(1,), (32,)] and items[1].dtype == np.int64
    assert [s.shape for s in states] == [(1, H), (32, H)] and not np.any(states[1])
    assert set(items[1]) <= set(model.item_map.ids)
    # Replaying them (what TF Serving does on load) leaves no session behind.
    fresh = tf.saved_model.load(exported)
    for item, state in zip(items, states):
        run_step(fresh, item, state)
    assert int(fresh.n_sessions()) == 0


def test_versions_are_numbered_and_never_overwritten(model, tmp_path):
    base = tmp_path / "gru4rec"
    paths = [export_module.export_model(model, base, k=2), export_module.export_model(model, base, k=2)]
    assert [os.path.basename(p) for p in paths] == ["1", "2"]
    assert os.path.basename(export_module.export_model(model, base, version=7, k=2)) == "7"
    assert os.path.basename(export_module.export_model(model, base, k=2)) == "8"
    with pytest.raises(export_module.ExportError, match="already exists"):
        export_module.export_model(model, base, version=2, k=2)
    for bad in ({"k": 0}, {"capacity": -1}, {"version": 0}, {"k": 2.5}):
        with pytest.raises(export_module.ExportError, match=next(iter(bad))):
            export_module.export_model(model, base, **bad)
    assert sorted(os.listdir(base)) == ["1", "2", "7", "8"]
    assert os.stat(paths[0]).st_mode & 0o777 == 0o755  # readable by a server running as another user
    assert export_module.existing_versions(base) == [1, 2, 7, 8]


def test_failed_export_leaves_no_folder(model, exported, tmp_path, monkeypatch):
    import shutil

    base = tmp_path / "gru4rec"
    shutil.copytree(exported, base / "1")  # an earlier version (the module's export, not a second one)
    seen = []

    def fail(version_dir, logs):
        seen.append(sorted(os.listdir(base)))  # the SavedModel is written by now
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "write_warmup", fail)
    with pytest.raises(OSError, match="disk full"):
        export_module.export_model(model, base, k=2)
    # While being written, version 2 exists only under a temporary, non-numeric name.
    assert len(seen[0]) == 2 and seen[0][0].startswith(".2.tmp-") and seen[0][1] == "1"
    assert os.listdir(base) == ["1"]


# ----- command line -------------------------------------------------------------------------------
def run_cli(*args):
    """`python -m tf_gru4rec.export ARGS` in a new process (the entry point itself)."""
    return subprocess.run([sys.executable, "-m", "tf_gru4rec.export", *map(str, args)],
                          capture_output=True, text=True, env=CLI_ENV, check=False)


def run_main(capsys, *args):
    """The same command in this process (`export_main`): (returncode, stdout, stderr)."""
    from tf_gru4rec.cli.export import export_main

    status = export_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["export_main", *map(str, args)], status, out, err)


def test_cli_exports_and_prints_signatures(model, tmp_path, capsys):
    model_dir.save_model_dir(model, tmp_path / "model")
    base = tmp_path / "models" / "gru4rec"
    a, b = model.item_map.ids[:2].tolist()
    top = Recommender(model).recommend([[a]], k=3)[0][0].tolist()
    (tmp_path / "blocked.txt").write_text(f"# out of stock\n{top[0]}\n\n{UNKNOWN}\nnot-an-id\n{top[2]}\n")
    out = run_main(capsys, tmp_path / "model", "--out", base, "--k", 3, "--capacity", 50,
                   "--blocklist", tmp_path / "blocked.txt", "--max-seen", 1)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"exported {base / '1'} (version 1)" in out.stdout
    assert "blocklist: 2 items blocked, 2 unknown ids skipped" in out.stdout.splitlines()
    max_rows = request_limits(model.n_items, H, 3, H)["max_rows"]
    assert f"request limits: {max_rows} rows," in out.stdout
    loaded = tf.saved_model.load(str(base / "1"))
    step = loaded.signatures["step"](item_id=tf.constant([a], tf.int64), state=tf.zeros([1, H]))
    ref_ids, ref_scores, _ = Recommender(model).recommend([[a]], k=3, blocklist=[top[0], top[2]])
    np.testing.assert_array_equal(step["item_ids"].numpy(), ref_ids)
    np.testing.assert_allclose(step["scores"].numpy(), ref_scores, atol=1e-5)
    # --max-seen 1: exclude_seen drops only the session's last click.
    rules = {"exclude_seen": tf.constant([True]), "candidate_ids": tf.constant([[a, b]], tf.int64),
             "restrict": tf.constant([True])}
    for item in (a, b):
        last = loaded.signatures["stateful_rules"](session_id=tf.constant(["s"]),
                                                   item_id=tf.constant([item], tf.int64), **rules)
    assert last["item_ids"].numpy()[0].tolist() == [a, -1, -1]
    for line in ("stateful         inputs: item_id int64[-1], session_id string[-1]",
                 "                 outputs: item_ids int64[-1,3], new_session bool[-1], scores float32[-1,3], "
                 "unknown_item bool[-1]",
                 "step             inputs: item_id int64[-1], state float32[-1,16]",
                 "score_items      inputs: candidate_ids int64[-1,-1], state float32[-1,16]",
                 "end_session      inputs: session_id string[-1]"):
        assert line in out.stdout.splitlines()
    assert os.listdir(base) == ["1"]


@pytest.mark.parametrize(
    "args, message, status",
    [(["{tmp}/missing", "--out", "{tmp}/o"], "not a model directory", 1),
     (["{tmp}/missing", "--out", "{tmp}/o", "--k", "0"], "`k` should be a positive int", 2),
     (["{tmp}/missing", "--out", "{tmp}/o", "--max-rows", "0"], "`max_rows` should be a positive", 2),
     (["{tmp}/missing", "--out", "{tmp}/o", "--max-seen", "0"], "`max_seen` should be a positive", 2),
     (["{tmp}/missing", "--out", "{tmp}/o", "--request-memory", "0"], "`request_memory` should be a "
      "positive number of GiB", 2),
     (["{tmp}/missing"], "the following arguments are required: --out", 2)],
)
def test_cli_bad_arguments_fail_in_one_line(args, message, status, tmp_path, capsys):
    out = run_main(capsys, *(a.format(tmp=tmp_path) for a in args))
    assert out.returncode == status
    assert "Traceback" not in out.stderr
    lines = quiet(out.stderr)
    assert len(lines) == 1 and lines[0].startswith("python -m tf_gru4rec.export: error: ")
    assert message in lines[0]
    assert not os.path.exists(tmp_path / "o")


def test_the_export_command_runs_as_python_m(tmp_path):
    """The entry point itself (`python -m tf_gru4rec.export`, a new process): past the
    TensorFlow import, a missing model directory is exit 1 and one stderr line, TensorFlow's
    start-up logs silenced. The other settings and errors are checked in-process above;
    `test_cli.py` runs --help and a usage error in new processes too."""
    out = run_cli(tmp_path / "missing", "--out", tmp_path / "o")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = quiet(out.stderr)
    assert len(lines) == 1 and lines[0].startswith("python -m tf_gru4rec.export: error: ")
    assert "not a model directory" in lines[0]
    assert not os.path.exists(tmp_path / "o")


def test_a_model_with_item_features_exports_its_cold_items(data, tmp_path):
    """Item 5 was never clicked; with features it is in the exported catalogue: the step
    signature's scores are the Keras model's (features included), and score_items knows it."""
    import pandas as pd

    from tf_gru4rec.data.item_features import FeatureEncoder

    ids = [*sorted(data[0]["ItemId"].unique()), UNKNOWN]
    table = pd.DataFrame({"ItemId": ids, "group": [f"g{i % 4}" for i in ids]})
    features = FeatureEncoder.fit({"group": list(table["group"])}, {"group": "categorical"}, "t").encode(table)
    model = trainer.train(data[0], PARAMS, verbose=0, item_features=features).model
    assert model.item_map.ids[-1] == UNKNOWN
    loaded = tf.saved_model.load(export_module.export_model(model, tmp_path / "gru4rec", k=K, capacity=1000))
    items = model.item_map.ids[:3].tolist()
    out = run_step(loaded, items, np.zeros((3, H), np.float32))
    state, top_ids, top_scores = keras_top_k(model, items, tf.zeros((3, H)))
    np.testing.assert_allclose(out["state"], state, atol=1e-5)
    np.testing.assert_array_equal(out["item_ids"], top_ids)
    np.testing.assert_allclose(out["scores"], top_scores, atol=1e-5)
    result = loaded.signatures["score_items"](state=tf.constant(out["state"]),
                                              candidate_ids=tf.constant([[UNKNOWN, ids[0]]] * 3, tf.int64))
    assert result["known"].numpy().all()
    full = model.score_all(model.output_of(tf.constant(out["state"]))).numpy()
    np.testing.assert_allclose(result["scores"].numpy(), full[:, model.item_map.lookup([UNKNOWN, ids[0]])], atol=1e-5)
