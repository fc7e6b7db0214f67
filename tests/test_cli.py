"""Tests of the command line (`tf_gru4rec.cli`: python -m tf_gru4rec.train / .evaluate).

Commands run in-process through `train_main` / `evaluate_main` (fast), and twice as real
subprocesses. Training runs are tiny (16 units, 1 epoch) and seeded.
"""

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tf_gru4rec.baselines import ItemKNN, Pop, evaluate_baseline
from tf_gru4rec.cli import evaluate_main, resolve_params, train_main
from tf_gru4rec.data import read_sessions
from tf_gru4rec.params import parse_params
from tf_gru4rec.synthetic import split_by_time, synthetic_sessions

TINY = "layers=16,batch_size=16,n_sample=16,learning_rate=0.1,n_epochs=1,seed=1,block_steps=20"
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Synthetic train/test TSV files; `test2` adds unknown items and a one-click session."""
    root = tmp_path_factory.mktemp("cli")
    train, test = split_by_time(synthetic_sessions(n_sessions=400, n_items=60, seed=3), 0.2)
    extra = pd.DataFrame({"SessionId": [90001, 90001, 90001, 90002],
                          "ItemId": [1000, 5, 1007, 1014], "Time": [1e6, 1e6 + 1, 1e6 + 2, 1e6 + 3]})
    paths = {"train": root / "train.tsv", "test": root / "test.tsv", "test2": root / "test2.tsv"}
    train.to_csv(paths["train"], sep="\t", index=False)
    test.to_csv(paths["test"], sep="\t", index=False)
    pd.concat([test, extra]).to_csv(paths["test2"], sep="\t", index=False)
    return {k: str(v) for k, v in paths.items()} | {"root": root, "train_df": train, "test_df": test}


def run(main, argv, capsys):
    """(exit status, stdout, stderr) of an in-process command."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def expected_events(test_df, train_df):
    """Predictions the evaluation makes: known test clicks per session minus one (>= 2 only)."""
    known = test_df[test_df["ItemId"].isin(set(train_df["ItemId"]))]
    sizes = known.groupby("SessionId").size()
    return int((sizes[sizes >= 2] - 1).sum())


def check_metrics(m, cutoffs=(1, 5, 10, 20)):
    for a, b in itertools.pairwise(cutoffs):
        assert m[f"recall@{a}"] <= m[f"recall@{b}"] and m[f"mrr@{a}"] <= m[f"mrr@{b}"]
    for k in cutoffs:
        assert 0.0 <= m[f"mrr@{k}"] <= m[f"recall@{k}"] <= 1.0
    assert m["recall@1"] == m["mrr@1"]


# ----- train --json --save, then evaluate the saved model ------------------------------------
@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    """One training run on the TSV files: JSON param file + --params override, --save,
    --tensorboard, two test files. The parameters are those of TINY."""
    root = tmp_path_factory.mktemp("trained")
    param_file = root / "params.json"
    param_file.write_text(json.dumps({"layers": [16], "batch_size": 16, "n_sample": 16,
                                      "learning_rate": 0.1, "n_epochs": 3, "seed": 1}))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = train_main([
            files["train"], "--test", files["test"], files["test2"], "--param-file", str(param_file),
            "--params", "n_epochs=1,block_steps=20", "--save", str(root / "model"), "--json", "-q",
            "--tensorboard", str(root / "tb")])
    assert status == 0, err.getvalue()
    return {"result": last_json(out.getvalue()), "model_dir": root / "model", "logdir": root / "tb"}


METRIC_KEYS = [f"{m}@{k}" for k in (1, 5, 10, 20) for m in ("recall", "mrr")]


def test_train_json_keys_and_values(files, trained):
    result = trained["result"]
    assert list(result) == METRIC_KEYS + ["n_events", "skipped_unknown", "skipped_sessions",
                                          "eval_seconds", "train_seconds", "events_per_second", "tests"]
    check_metrics(result)
    assert result["recall@20"] > 0.75  # 60 items: Pop reaches 0.645 (measured 0.8435)
    assert result["n_events"] == expected_events(files["test_df"], files["train_df"]) == 409
    assert result["skipped_unknown"] == 0 and result["skipped_sessions"] == 0
    assert result["train_seconds"] > 0 and result["events_per_second"] > 0
    assert [t["path"] for t in result["tests"]] == [files["test"], files["test2"]]
    assert {k: v for k, v in result["tests"][0].items() if k != "path"} == {
        k: v for k, v in result.items() if k not in ("tests", "train_seconds", "events_per_second")}
    second = result["tests"][1]  # + one session 1000 5 1007 (5 unknown) and a one-click session
    assert (second["n_events"], second["skipped_unknown"], second["skipped_sessions"]) == (410, 1, 1)


def test_saved_model_records_params_and_evaluates_the_same(files, trained, capsys):
    # --params overrides the file; the model directory records the parameters used.
    saved = json.loads((trained["model_dir"] / "params.json").read_text())["params"]
    assert parse_params(saved) == parse_params(TINY)
    assert any((trained["logdir"] / "train").glob("events.out.tfevents.*"))
    assert any((trained["logdir"] / "validation").glob("events.out.tfevents.*"))  # val curves
    assert (trained["logdir"] / "train" / "metadata.tsv").exists()  # projector
    status, out, err = run(evaluate_main, [trained["model_dir"], files["test"], files["test2"],
                                           "--json"], capsys)
    assert status == 0, err
    evaluated = last_json(out)
    for train_side, eval_side in zip(trained["result"]["tests"], evaluated["tests"], strict=True):
        assert eval_side["path"] == train_side["path"]
        for k in METRIC_KEYS + ["n_events", "skipped_unknown", "skipped_sessions"]:
            assert eval_side[k] == pytest.approx(train_side[k], abs=1e-6)


def test_table_output_and_cutoffs(files, capsys):
    status, out, err = run(train_main, [files["train"], "--test", files["test"], "--params", TINY,
                                        "-m", "3", "7", "--baselines", "pop", "-q"], capsys)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "| model | Recall@3 | MRR@3 | Recall@7 | MRR@7 |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| GRU4Rec", "| Pop"]
    assert "trained 1 epoch(s)" in err


# ----- other formats and column names ---------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_train_csv_and_parquet_with_column_options(files, trained, tmp_path, capsys, fmt):
    """The same clicks as CSV (';', via --sep) or Parquet, with other column names, train
    (seeded, deterministic) to the same metrics as the TSV run."""
    rename = {"SessionId": "visit", "ItemId": "product", "Time": "ts"}
    paths = {}
    for name in ("train", "test"):
        df = files[f"{name}_df"].rename(columns=rename)
        paths[name] = tmp_path / f"{name}.{'txt' if fmt == 'csv' else 'parquet'}"
        if fmt == "csv":
            df.to_csv(paths[name], sep=";", index=False)
        else:
            df.to_parquet(paths[name])
    options = ["--session-key", "visit", "--item-key", "product", "--time-key", "ts"]
    options += ["--sep", ";"] if fmt == "csv" else []
    status, out, err = run(train_main, [paths["train"], "--test", paths["test"], "--params", TINY,
                                        "--json", "-q", "--baselines", "pop"] + options, capsys)
    assert status == 0, err
    result = last_json(out)
    for k in METRIC_KEYS + ["n_events"]:
        assert result[k] == pytest.approx(trained["result"][k], abs=1e-6)
    pop = evaluate_baseline(Pop().fit(files["train_df"]), files["test_df"])
    assert result["baselines"]["pop"]["recall@20"] == pytest.approx(pop["recall@20"], abs=1e-9)
    assert pop["recall@20"] == pytest.approx(0.6455, abs=1e-4)


# ----- baselines through the evaluate command --------------------------------------------------
@pytest.mark.parametrize("name, cls", [("pop", Pop), ("itemknn", ItemKNN)])
def test_evaluate_baseline_json_equals_the_function(files, capsys, name, cls):
    status, out, err = run(evaluate_main, ["--baseline", name, files["train"], files["test2"],
                                           "--json", "-m", "1", "5", "--eval-mode", "median"], capsys)
    assert status == 0, err
    got = last_json(out)
    want = evaluate_baseline(cls().fit(read_sessions(files["train"])), read_sessions(files["test2"]),
                             (1, 5), "median")
    assert got["tests"][0]["path"] == files["test2"]
    assert {k: v for k, v in got.items() if k not in ("eval_seconds", "tests")} == {
        k: v for k, v in want.items() if k != "eval_seconds"}
    assert want["skipped_unknown"] == 1 and want["n_events"] > 100


# ----- parameter files ------------------------------------------------------------------------
PARAM_STRING = ("loss=bpr-max,layers=100/100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.2,"
                "learning_rate=0.05,momentum=0.3,n_sample=2048,sample_alpha=0.5,bpreg=1.0,"
                "elu_param=0.5,constrained_embedding=True,n_epochs=10")
REFERENCE_PY = """from collections import OrderedDict
gru4rec_params = OrderedDict([
    ('loss', 'bpr-max'), ('constrained_embedding', True), ('embedding', 0), ('elu_param', 0.5),
    ('layers', [100, 100]), ('n_epochs', 10), ('batch_size', 32), ('dropout_p_embed', 0.0),
    ('dropout_p_hidden', 0.2), ('learning_rate', 0.05), ('momentum', 0.3), ('n_sample', 2048),
    ('sample_alpha', 0.5), ('bpreg', 1.0), ('logq', 0.0),
])
"""


def test_param_files_json_and_reference_python_equal_the_string(tmp_path):
    py_file, json_file = tmp_path / "rsc15_bprmax.py", tmp_path / "bprmax.json"
    py_file.write_text(REFERENCE_PY)
    json_file.write_text(json.dumps(dict(p.split("=") for p in PARAM_STRING.split(","))))
    want = parse_params(PARAM_STRING)
    assert want.layers == [100, 100] and want.loss == "bpr-max" and want.bpreg == 1.0
    assert resolve_params(param_file=py_file) == want
    assert resolve_params(param_file=json_file) == want
    # the file replaces the base (the demo's parameters), the string overrides both
    p = resolve_params("momentum=0.1", py_file, base="n_sample=64,seed=3")
    assert (p.momentum, p.n_sample, p.seed, p.learning_rate) == (0.1, 2048, None, 0.05)
    p = resolve_params("momentum=0.1", base="n_sample=64,seed=3")
    assert (p.momentum, p.n_sample, p.seed, p.learning_rate) == (0.1, 64, 3, 0.05)


# ----- errors: one line, no traceback ---------------------------------------------------------
def bad_time_file(root):
    path = root / "bad_time.tsv"
    path.write_text("SessionId\tItemId\tTime\n1\t10\t0\n1\t11\tnoon\n")
    return path


def foreign_items_file(root):
    path = root / "foreign.tsv"
    path.write_text("SessionId\tItemId\tTime\n1\t1\t0\n1\t2\t1\n")
    return path


@pytest.mark.parametrize("main, argv, status, message", [
    (train_main, ["{train}", "--params", "hidden_size=3"], 1, "unknown parameter(s): hidden_size"),
    (train_main, ["{train}", "--params", "layers=abc"], 1, "invalid value for layers: ['abc']"),
    (train_main, ["{root}/missing.tsv"], 1, "missing.tsv: no such file"),
    (train_main, ["{bad_time}"], 1, "bad_time.tsv: 1 non-numeric Time value(s), e.g. 'noon'"),
    (train_main, ["{train}", "--test", "{foreign}"], 1, "foreign.tsv: no item is known to the model"),
    (train_main, ["{train}", "--param-file", "{root}/nope.json"], 1, "nope.json: cannot read parameter file"),
    (train_main, ["--test", "{train}"], 2, "--test needs a TRAIN file"),
    (train_main, ["{train}", "-m", "0"], 2, "expected a positive integer, got '0'"),
    (evaluate_main, ["{root}", "{train}"], 1, "not a model directory (no model.keras)"),
    (evaluate_main, ["--baseline", "knn", "{train}", "{train}"], 2, "invalid choice: 'knn'"),
])
def test_bad_input_exits_with_one_line(files, capsys, main, argv, status, message):
    names = {"train": files["train"], "root": files["root"], "bad_time": bad_time_file(files["root"]),
             "foreign": foreign_items_file(files["root"])}
    code, out, err = run(main, [a.format(**names) for a in argv], capsys)
    assert code == status
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "error:" in err and "Traceback" not in err


# ----- real processes ---------------------------------------------------------------------------
def subprocess_run(*args, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, check=False,
                          env=env, cwd=REPO, timeout=timeout)


def test_demo_beats_pop_in_a_subprocess():
    """The quickstart (`python -m tf_gru4rec.train`, 2 epochs here) clearly beats Pop."""
    proc = subprocess_run("tf_gru4rec.train", "--params", "n_epochs=2", "--json", "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    pop, knn = result["baselines"]["pop"], result["baselines"]["itemknn"]
    assert result["recall@20"] > pop["recall@20"] + 0.4  # measured: 0.832 vs 0.228 (item-kNN 0.808)
    assert result["mrr@20"] > pop["mrr@20"] + 0.3
    assert knn["recall@20"] > pop["recall@20"] + 0.4
    assert result["n_events"] == 3074 and result["tests"][0]["path"] == "synthetic test data"
    assert "| GRU4Rec |" in proc.stderr and "Traceback" not in proc.stderr


def test_error_in_a_subprocess_is_one_line(files):
    proc = subprocess_run("tf_gru4rec.evaluate", files["root"] / "no_model", files["test"], timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == (
        f"tf_gru4rec.evaluate: error: {files['root'] / 'no_model'}: not a model directory (no model.keras)")
    assert "Traceback" not in proc.stderr


# ----- real data (slow) -------------------------------------------------------------------------
RSC15_PARAMS = ("loss=cross-entropy,layers=100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,"
                "learning_rate=0.2,momentum=0.2,n_sample=2048,sample_alpha=0.5,logq=1,"
                "constrained_embedding=True,n_epochs=10,seed=1")


@pytest.mark.slow
def test_rsc15_100k_gru4rec_beats_pop(capsys):
    data = SHARED_DATA / "rsc15_100k"
    if not (data / "train_full.tsv").exists():
        pytest.skip(f"{data} is absent")
    status, out, err = run(train_main, [data / "train_full.tsv", "--test", data / "test.tsv",
                                        "--params", RSC15_PARAMS, "--baselines", "pop", "itemknn",
                                        "--json", "-q"], capsys)
    assert status == 0, err
    result = last_json(out)
    pop, knn = result["baselines"]["pop"], result["baselines"]["itemknn"]
    with capsys.disabled():
        print(f"\nrsc15_100k Recall@20 / MRR@20: GRU4Rec {result['recall@20']:.4f} / "
              f"{result['mrr@20']:.4f}, Pop {pop['recall@20']:.4f} / {pop['mrr@20']:.4f}, "
              f"item-kNN {knn['recall@20']:.4f} / {knn['mrr@20']:.4f}, "
              f"{result['events_per_second']:,.0f} events/s")
    assert result["recall@20"] > 2 * pop["recall@20"]  # measured 0.68 vs 0.09 (item-kNN 0.39)
    assert result["mrr@20"] > 2 * pop["mrr@20"]
    assert result["recall@20"] > knn["recall@20"] + 0.1
    assert np.isfinite(result["train_seconds"])
