"""Tests of the command line (`tf_gru4rec.cli`: python -m tf_gru4rec.train / .evaluate / .export).

Commands run in-process through `train_main` / `evaluate_main` (fast), and as real
subprocesses where start-up matters (TensorFlow not imported for --help and bad settings,
its logs silenced, progress on a pipe, the README's demo table). Training runs are tiny
(16 units, 1 epoch) and seeded.
"""

import contextlib
import io
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tf_gru4rec.cli.common import Progress, resolve_params
from tf_gru4rec.cli.evaluate import evaluate_main
from tf_gru4rec.cli.train import train_main, train_parser
from tf_gru4rec.data.reading import read_sessions
from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions
from tf_gru4rec.evaluation import baselines
from tf_gru4rec.evaluation import evaluator as evaluation
from tf_gru4rec.evaluation import protocols
from tf_gru4rec.evaluation.baselines import ItemKNN, Pop, evaluate_baseline
from tf_gru4rec.training.params import (
    load_param_file,
    parse_params,
    shipped_param_files,
)

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
        assert m[f"ndcg@{a}"] <= m[f"ndcg@{b}"]
    for k in cutoffs:
        assert 0.0 <= m[f"mrr@{k}"] <= m[f"ndcg@{k}"] <= m[f"recall@{k}"] <= 1.0
    assert m["recall@1"] == m["mrr@1"] == m["ndcg@1"]


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


METRIC_KEYS = [f"{m}@{k}" for k in (1, 5, 10, 20) for m in ("recall", "mrr", "ndcg")]


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
                                        "-m", "3", "7", "--baselines", "pop", "-q", "--protocol", "last",
                                        "--beyond-accuracy"], capsys)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == ("| model | Recall@3 | MRR@3 | NDCG@3 | Coverage@3 | Pop@3 | "
                        "Recall@7 | MRR@7 | NDCG@7 | Coverage@7 | Pop@7 |")
    pop = evaluate_baseline(Pop().fit(files["train_df"]), files["test_df"], (3, 7), protocol="last",
                            coverage=True, popularity=Pop().fit(files["train_df"]).support)
    names = ("recall", "mrr", "ndcg", "coverage", "popularity")
    assert lines[3] == "| Pop | " + " | ".join(f"{pop[f'{m}@{k}']:.4f}" for k in (3, 7) for m in names) + " |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| GRU4Rec", "| Pop"]
    assert "trained 1 epoch(s)" in err
    assert "% (" not in err and "Epoch 1/1" not in err  # -q: no progress at all


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


# ----- protocols and beyond-accuracy metrics -----------------------------------------------------
def test_last_click_protocol_and_beyond_accuracy_equal_the_functions(files, trained, capsys):
    """--protocol last --beyond-accuracy: the saved model (with --train for the popularity)
    and a baseline print exactly what the functions return, Coverage and Pop in the table."""
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.training.model_dir import load_model_dir

    train_df, test_df = read_sessions(files["train"]), read_sessions(files["test2"])
    model = load_model_dir(trained["model_dir"])[0]
    clicks = SessionData.from_frame(train_df, model.item_map).support()
    options = ["--protocol", "last", "--beyond-accuracy", "-m", "5", "20", "--json", "-q"]
    status, out, err = run(evaluate_main, [trained["model_dir"], files["test2"], "--train", files["train"]]
                           + options, capsys)
    assert status == 0, err
    want = evaluation.evaluate(model, test_df, (5, 20), protocol="last", coverage=True, popularity=clicks)
    got = last_json(out)
    assert {k: v for k, v in got.items() if k not in ("eval_seconds", "tests")} == {
        k: v for k, v in want.items() if k != "eval_seconds"}
    assert got["n_events"] == test_df["SessionId"].nunique() - got["skipped_sessions"] == 81  # one per session
    assert err.splitlines()[0] == ("| model | Recall@5 | MRR@5 | NDCG@5 | Coverage@5 | Pop@5 | "
                                   "Recall@20 | MRR@20 | NDCG@20 | Coverage@20 | Pop@20 |")

    status, out, err = run(evaluate_main, [trained["model_dir"], files["test2"]] + options, capsys)
    assert status == 0 and "Popularity@K needs the training clicks: add --train TRAIN" in err
    assert "popularity@5" not in last_json(out) and last_json(out)["coverage@5"] == want["coverage@5"]

    status, out, err = run(evaluate_main, ["--baseline", "itemknn", files["train"], files["test2"]] + options,
                           capsys)
    assert status == 0, err
    knn = ItemKNN().fit(train_df)
    want = evaluate_baseline(knn, test_df, (5, 20), protocol="last", coverage=True, popularity=knn.support)
    assert {k: v for k, v in last_json(out).items() if k not in ("eval_seconds", "tests")} == {
        k: v for k, v in want.items() if k != "eval_seconds"}


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


def test_shipped_param_file_by_name_and_in_the_help(files, capsys):
    """`--param-file NAME` takes a shipped published set by name (with or without .py); the
    help and the README list the shipped names."""
    rsc15 = load_param_file("rsc15_xe_shared_best")
    assert resolve_params(param_file="rsc15_xe_shared_best.py") == rsc15
    assert resolve_params("n_epochs=1", "rsc15_xe_shared_best") == parse_params(
        rsc15.to_string() + ",n_epochs=1")
    help_text = " ".join(train_parser().format_help().split())
    readme = (REPO / "README.md").read_text()
    for name in shipped_param_files():
        assert name in help_text and f"{name}.py" in readme


# ----- several test files, some unusable: the good ones are still reported -------------------------
def test_train_reports_the_good_test_files_and_exits_1_for_a_bad_one(files, capsys):
    foreign = foreign_items_file(files["root"])
    status, out, err = run(train_main, [files["train"], "--test", files["test"], foreign, "--params", TINY,
                                        "--baselines", "pop", "--json", "-q"], capsys)
    assert status == 1
    problem = f"{foreign}: no item is known to the model (all 2 events skipped)"
    assert err.strip().splitlines()[-1] == f"tf_gru4rec.train: error: {problem}"
    assert err.count(problem) == 1 and "Traceback" not in err
    result = last_json(out)
    good, bad = result["tests"]
    assert bad == {"path": str(foreign), "error": problem}
    assert good["path"] == files["test"] and good["n_events"] == 409
    assert set(good["baselines"]) == {"pop"} and "path" not in good["baselines"]["pop"]
    assert result["recall@20"] == good["recall@20"] > 0.5
    assert f"| GRU4Rec ({files['test']}) |" in err and f"| Pop ({files['test']}) |" in err  # the table
    assert str(foreign) not in err.split("| model |")[1].split("tf_gru4rec.train: error")[0]


def test_evaluate_reports_the_good_test_files_and_exits_1_for_a_bad_one(files, trained, capsys):
    foreign = foreign_items_file(files["root"])
    argv = [trained["model_dir"], foreign, files["test"], "-q"]
    status, out, err = run(evaluate_main, argv, capsys)
    assert status == 1
    problem = f"{foreign}: no item is known to the model (all 2 events skipped)"
    assert err.strip().splitlines() == [f"tf_gru4rec.evaluate: error: {problem}"]
    rows = out.strip().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| GRU4Rec ({files['test']})"]

    status, out, err = run(evaluate_main, argv + ["--json"], capsys)
    assert status == 1
    result = last_json(out)
    assert result["tests"][0] == {"path": str(foreign), "error": problem}
    assert result["tests"][1]["path"] == files["test"]
    assert result["recall@20"] == result["tests"][1]["recall@20"]  # the first evaluated file
    assert result["recall@20"] == pytest.approx(trained["result"]["recall@20"], abs=1e-6)


# ----- errors: one line, no traceback ---------------------------------------------------------
def bad_time_file(root):
    path = root / "bad_time.tsv"
    path.write_text("SessionId\tItemId\tTime\n1\t10\t0\n1\t11\tnoon\n")
    return path


def foreign_items_file(root):
    path = root / "foreign.tsv"
    path.write_text("SessionId\tItemId\tTime\n1\t1\t0\n1\t2\t1\n")
    return path


SHIPPED = ", ".join(shipped_param_files())


@pytest.mark.parametrize("main, argv, status, message", [
    # bad settings: usage errors, exit 2
    (train_main, ["{train}", "--params", "hidden_size=3"], 2, "unknown parameter(s): hidden_size"),
    (train_main, ["{train}", "--params", "layers=abc"], 2, "invalid value for layers: ['abc']"),
    (train_main, ["{train}", "--param-file", "{root}/nope.json"], 2,
     f"nope.json: no such parameter file, nor a shipped one ({SHIPPED})"),
    (train_main, ["{train}", "--param-file", "rsc15_best"], 2,
     f"rsc15_best: no such parameter file, nor a shipped one ({SHIPPED})"),
    (train_main, ["{train}", "--param-file", "{bad_py}"], 2, "bad.py: defines no gru4rec_params"),
    (train_main, ["--test", "{train}"], 2, "--test needs a TRAIN file"),
    (train_main, ["{train}", "-m", "0"], 2, "expected a positive integer, got '0'"),
    (evaluate_main, ["--baseline", "knn", "{train}", "{train}"], 2, "invalid choice: 'knn'"),
    (evaluate_main, ["{root}", "{train}", "--protocol", "first"], 2, "invalid choice: 'first'"),
    (evaluate_main, ["{root}", "{train}", "--train", "{train}"], 2,
     "--train is only for the Popularity@K of --beyond-accuracy with a MODEL_DIR"),
    (evaluate_main, ["--baseline", "pop", "{train}", "{train}", "--train", "{train}", "--beyond-accuracy"],
     2, "--train is only for the Popularity@K of --beyond-accuracy"),
    # bad input data, missing files: exit 1
    (train_main, ["{root}/missing.tsv"], 1, "missing.tsv: no such file"),
    (train_main, ["{bad_time}"], 1, "Time value(s)"),
    (train_main, ["{train}", "--test", "{foreign}"], 1, "foreign.tsv: no item is known to the model"),
    (train_main, ["{train}", "--test", "{root}/missing.tsv"], 1, "missing.tsv: no such file"),
    (evaluate_main, ["{root}", "{train}"], 1, "not a model directory (no model.keras)"),
    # item features
    (train_main, ["{train}", "--feature-columns", "genre"], 2,
     "--feature-columns and --feature-encodings need --item-features"),
    (train_main, ["{train}", "--item-features", "{features}", "--feature-encodings", "genre"], 2,
     "--feature-encodings: 'genre' is not COLUMN=ENCODING"),
    (train_main, ["{train}", "--item-features", "{features}", "--feature-columns", "nope"], 1,
     "features.tsv: unknown column(s) ['nope'] in columns; available: ['genre', 'price']"),
    (train_main, ["{train}", "--item-features", "{dup_features}"], 1,
     "dup.tsv: 1 ItemId value(s) occur more than once (2 rows), e.g. 1 (2 rows)"),
])
def test_bad_input_exits_with_one_line(files, capsys, main, argv, status, message):
    bad_py = files["root"] / "bad.py"
    bad_py.write_text("params = {}\n")
    names = {"train": files["train"], "root": files["root"], "bad_time": bad_time_file(files["root"]),
             "foreign": foreign_items_file(files["root"]), "bad_py": bad_py,
             "features": features_file(files), "dup_features": files["root"] / "dup.tsv"}
    (files["root"] / "dup.tsv").write_text("ItemId\tgenre\n1\ta\n1\tb\n")
    code, out, err = run(main, [a.format(**names) for a in argv], capsys)
    assert code == status
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "error:" in err and "Traceback" not in err


def features_file(files):
    """Item features of every training item and of test2's item 5, which nobody clicked in
    training (a cold-start item)."""
    path = files["root"] / "features.tsv"
    ids = [*sorted(files["train_df"]["ItemId"].unique()), 5]
    pd.DataFrame({"ItemId": ids, "genre": [f"g{i % 7}|h{i % 3}" for i in ids],
                  "price": [float(i % 11) for i in ids]}).to_csv(path, sep="\t", index=False)
    return path


def test_train_with_item_features_evaluates_cold_start_targets(files, capsys):
    """With features, test2's never-clicked item 5 is in the catalogue: the session 1000 5
    1007 gives two predictions (one without features) and nothing is skipped as unknown."""
    code, out, err = run(train_main, [files["train"], "--test", files["test2"], "--item-features",
                                      features_file(files), "--feature-encodings", "price=numeric:4",
                                      "--params", "layers=16,batch_size=16,n_sample=16,n_epochs=1,seed=1",
                                      "--json", "-q"], capsys)
    assert code == 0, err
    n_items = files["train_df"]["ItemId"].nunique()
    assert (f"features.tsv: item features: {n_items} of {n_items} items have a feature row "
            "(0 without: no features); 1 cold-start item(s) with features only") in err
    result = last_json(out)
    assert (result["n_events"], result["skipped_unknown"], result["skipped_sessions"]) == (411, 0, 1)
    check_metrics(result)


# ----- real processes ---------------------------------------------------------------------------
# TensorFlow's log lines: absl/glog prefixes (I0000 00:00:...), CUDA probing, oneDNN, TF-TRT.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4}|cuda|oneDNN|TF-TRT|absl::InitializeLog", re.IGNORECASE | re.MULTILINE)


def subprocess_run(*args, timeout=240, env=None):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           **(env or {})}
    env = {k: v for k, v in env.items() if v is not None}
    proc = subprocess.run([sys.executable, *args], capture_output=True, check=False, env=env, cwd=REPO,
                          timeout=timeout)
    # Decoded here, not with text=True, which would turn carriage returns into newlines.
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    return proc


#: conftest.py sets TF_CPP_MIN_LOG_LEVEL for the tests; these runs check the commands' default.
DEFAULT_ENV = {"TF_CPP_MIN_LOG_LEVEL": None}


def readme_demo_table():
    readme = (REPO / "README.md").read_text()
    return re.search(r"```\n(\| model \|.*?)```", readme, re.DOTALL).group(1).strip()


def test_demo_prints_the_readme_table_quietly():
    """The quickstart, exactly (`python -m tf_gru4rec.train`, seeded): stdout is the README's
    table; stderr has progress lines (piped: no carriage return, no colour code) and no
    TensorFlow log line."""
    proc = subprocess_run("-m", "tf_gru4rec.train", env=DEFAULT_ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == readme_demo_table()
    rows = {line.split(" | ")[0][2:]: [float(v) for v in line.strip(" |").split(" | ")[1:]]
            for line in proc.stdout.strip().splitlines()[2:]}
    assert rows["GRU4Rec"][-3] > rows["Pop"][-3] + 0.4  # Recall@20: 0.853 vs 0.228 (item-kNN 0.808)
    assert rows["GRU4Rec"][-2] > rows["Pop"][-2] + 0.3  # MRR@20
    assert not TF_LOG_LINE.search(proc.stderr), proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr and "\b" not in proc.stderr
    assert "Epoch 4/4" in proc.stderr
    assert "GRU4Rec on synthetic test data: 100% (3,074/3,074 events)" in proc.stderr
    assert "Item-kNN on synthetic test data:   0% (0/3,074 events)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_command_is_quiet_and_shows_progress(files, trained):
    proc = subprocess_run("-m", "tf_gru4rec.evaluate", trained["model_dir"], files["test"],
                          env=DEFAULT_ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not TF_LOG_LINE.search(proc.stderr), proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == f"GRU4Rec on {files['test']}:   0% (0/409 events)"
    assert lines[-1] == f"GRU4Rec on {files['test']}: 100% (409/409 events)"
    # A line at each tenth (one step predicts for many sessions, so some tenths share a line).
    assert len(lines) >= 8 and all(re.fullmatch(rf"GRU4Rec on {re.escape(files['test'])}: +\d+% \(\d+/409 events\)", line)
                                   for line in lines)
    assert "| GRU4Rec |" in proc.stdout


@pytest.mark.parametrize("args, status", [
    (["tf_gru4rec.train", "--help"], 0),
    (["tf_gru4rec.train", "--paramz", "layers=100"], 2),
    (["tf_gru4rec.train", "train.tsv", "-m", "0"], 2),
    (["tf_gru4rec.train", "--test", "test.tsv"], 2),
    (["tf_gru4rec.evaluate", "--help"], 0),
    (["tf_gru4rec.evaluate", "model", "test.tsv", "--baseline", "knn"], 2),
    (["tf_gru4rec.evaluate", "model", "test.tsv", "--protocol", "first"], 2),
    (["tf_gru4rec.evaluate", "model", "test.tsv", "--train", "train.tsv"], 2),
    (["tf_gru4rec.tune", "--help"], 0),
    (["tf_gru4rec.export", "--help"], 0),
    (["tf_gru4rec.export", "model"], 2),
    (["tf_gru4rec.serving.client", "--help"], 0),
    (["tf_gru4rec.serving.client", "--items", "1"], 2),
    (["tf_gru4rec.serving.local_server", "--help"], 0),
    (["tf_gru4rec.serving.local_server", "--port", "x"], 2),
])
def test_help_and_bad_arguments_do_not_import_tensorflow(args, status):
    proc = subprocess_run("-X", "importtime", "-m", *args, timeout=60)
    assert proc.returncode == status, proc.stderr[-2000:]
    imported = re.findall(r"^import time:.*\|\s*(\S+)\s*$", proc.stderr, re.MULTILINE)
    assert "argparse" in imported  # the import log was read
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras")]
    messages = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert len(messages) == (status != 0), messages
    if status:
        assert messages[0].split(": error: ")[0] in (args[0], f"python -m {args[0]}")
    else:
        assert proc.stdout.startswith("usage: python -m " + args[0])


@pytest.mark.parametrize("verbose", [False, True])
def test_error_in_a_subprocess_is_one_line_and_tensorflow_logs_only_with_verbose(files, verbose):
    # A bad Time column: found when reading, after TensorFlow's import (missing files are before).
    bad = bad_time_file(files["root"])
    proc = subprocess_run("-m", "tf_gru4rec.evaluate", "--baseline", "pop", bad, files["test"],
                          *(["--verbose"] if verbose else []), env=DEFAULT_ENV, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    error = proc.stderr.splitlines()[-1]
    assert error.startswith(f"tf_gru4rec.evaluate: error: {bad}: ") and "Time value(s)" in error
    assert "Traceback" not in proc.stderr
    if verbose:  # TensorFlow's start-up lines, which TF_LOG_LINE recognises
        assert TF_LOG_LINE.search(proc.stderr), proc.stderr
    else:
        assert proc.stderr.splitlines() == [error]


# ----- pieces -------------------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_redraws_on_a_terminal_and_prints_plain_lines_otherwise():
    def drive(stream, enabled=True):
        progress = Progress("GRU4Rec on t.tsv", enabled=enabled, stream=stream)
        for done in [*range(0, 1000, 7), 1000]:
            progress(done, 1000)
        return stream.getvalue()

    terminal = drive(Terminal())
    assert terminal.startswith("\rGRU4Rec on t.tsv [") and terminal.endswith("100% (1,000/1,000 events)\n")
    assert terminal.count("\n") == 1
    piped = drive(io.StringIO())
    lines = piped.splitlines()
    assert "\r" not in piped and "\x1b" not in piped
    assert lines[0] == "GRU4Rec on t.tsv:   0% (0/1,000 events)"
    assert lines[-1] == "GRU4Rec on t.tsv: 100% (1,000/1,000 events)"
    assert len(lines) == 11  # one per tenth
    assert drive(io.StringIO(), enabled=False) == ""


def test_static_names_equal_the_modules():
    """The parsers' choices are repeated in cli.py so that building them imports no TensorFlow."""
    from tf_gru4rec.cli import common

    assert common.TIE_MODES == protocols.TIE_MODES
    assert common.PROTOCOLS == protocols.PROTOCOLS
    assert common.BASELINE_NAMES == tuple(baselines.BASELINES)
    assert list(common.PARAM_FILES) == shipped_param_files()
    from tf_gru4rec import losses
    from tf_gru4rec.training import params

    assert params.LOSS_NAMES == tuple(losses.LOSSES)


# ----- the README's example ids -------------------------------------------------------------------
README_DATA = SHARED_DATA / "yoochoose1_64"


def test_readme_example_ids_are_consecutive_clicks_of_the_named_training_data():
    if not (README_DATA / "train_full.tsv").exists():
        pytest.skip(f"{README_DATA} is absent")
    readme = (REPO / "README.md").read_text()
    assert '"../shared/data/yoochoose1_64/"' in readme
    (a, b), = {tuple(map(int, m)) for m in re.findall(r"recommend\(\[\[(\d+), (\d+)\]\]", readme)}
    assert f"--items {a},{b}" in readme  # the gRPC client example
    train = pd.read_csv(README_DATA / "train_full.tsv", sep="\t")
    items = train.groupby("SessionId", sort=False)["ItemId"].agg(list)
    assert any([a, b] == session[i:i + 2] for session in items for i in range(len(session) - 1))


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


@pytest.mark.slow
def test_readme_python_api_runs_on_the_data_it_names(tmp_path):
    """The README's Python API example, as written but with 1 epoch instead of 10."""
    if not (README_DATA / "train_full.tsv").exists():
        pytest.skip(f"{README_DATA} is absent")
    readme = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(import tf_gru4rec as g\n.*?)```", readme, re.DOTALL).group(1)
    code = code.replace("n_epochs=10", "n_epochs=1").replace("epochs=10", "epochs=1")
    code = code.replace('"../shared/data/yoochoose1_64/"', repr(f"{README_DATA}/"))
    code += ("assert report['unknown'] == [[]] and report['empty'] == [] and report['padded'] == [0] "
             "and ids.shape == (1, 20), report\n")
    (tmp_path / "example.py").write_text(code)
    proc = subprocess.run([sys.executable, "example.py"], capture_output=True, text=True, check=False,
                          cwd=tmp_path, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "gru4rec.keras").exists()


# ----- user files, resumable runs, strict JSON ---------------------------------------------------
def test_save_is_checked_before_training_and_never_deletes_user_files(files, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    status, _, err = run(train_main, [files["train"], "--params", TINY, "--save", mine], capsys)
    assert status == 1 and "not empty and holds no model" in err and "trained" not in err
    assert os.listdir(mine) == ["thesis.tex"]
    model = tmp_path / "model"
    status, _, err = run(train_main, [files["train"], "--params", TINY, "--save", model, "-q"], capsys)
    assert status == 0 and "warning" not in err, err  # saved: no "model will be discarded" warning
    (tmp_path / f".model.tmp-{2**22 + 4321}-x").mkdir()  # a killed save's leftover
    status, _, err = run(train_main, [files["train"], "--params", TINY, "--save", model], capsys)
    assert status == 1 and "pass overwrite=True (--overwrite)" in err and "trained" not in err
    assert "left by an interrupted save" in err  # cleaned first: a cleanup may restore the folder
    status, _, err = run(train_main, [files["train"], "--params", TINY, "--save", model, "--overwrite",
                                      "-q"], capsys)
    assert status == 0, err
    assert sorted(os.listdir(tmp_path)) == ["mine", "model"]


def test_checkpoint_dir_drop_repeats_and_eval_batch_size(files, tmp_path, capsys):
    repeats = files["train_df"].iloc[[0, 0, 0]]
    train = pd.concat([files["train_df"], repeats]).sort_values(["SessionId", "Time"], kind="stable")
    train.to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    args = [tmp_path / "train.tsv", "--test", files["test"], "--params", TINY, "--json", "-q",
            "--checkpoint-dir", tmp_path / "ckpt", "--eval-batch-size", 3]
    status, out, err = run(train_main, args + ["--drop-repeats"], capsys)
    assert status == 0, err
    assert "3 duplicate row(s)" in err and "(removed)" in err
    assert json.loads((tmp_path / "ckpt" / "progress.json").read_text())["epochs_done"] == 1
    first = last_json(out)
    status, out, err = run(train_main, args, capsys)  # other data (repeats kept): refused
    assert status == 1 and "the checkpoint is of another run (data_sha1 differs)" in err
    status, out, err = run(train_main, args + ["--drop-repeats"], capsys)  # all epochs done: resumes at the end
    assert status == 0 and "trained 0 epoch(s)" in err
    assert last_json(out)["recall@20"] == first["recall@20"]


def test_a_run_that_cannot_fit_in_memory_is_refused_before_building(files, capsys):
    status, out, err = run(train_main, [files["train"], "--params", TINY + ",batch_size=100000"], capsys)
    assert status == 1 and out == "" and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.match(r"tf_gru4rec.train: error: this run needs about \d+\.\d GiB but .* the largest part is "
                    r"the training step .*: reduce batch_size and n_sample$", last), last


def test_json_is_strict_without_nan():
    from tf_gru4rec.cli.common import strict_json

    line = strict_json({"mrr@20": float("nan"), "tests": [{"x": float("inf"), "y": 0.5}]})
    assert line == '{"mrr@20": null, "tests": [{"x": null, "y": 0.5}]}'
    json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


# ----- issue 17, item 9: a new user's traps (errors before TensorFlow, progress, warnings) --------
@pytest.mark.parametrize("args, status, message", [
    (["tf_gru4rec.train", "{root}/missing.tsv"], 1, "{root}/missing.tsv: no such file"),
    (["tf_gru4rec.train", "{train}", "--params", "layers=abc"], 2, "invalid value for layers: ['abc']"),
    (["tf_gru4rec.train", "{train}", "--params", "hidden_size=3"], 2, "unknown parameter(s): hidden_size"),
    (["tf_gru4rec.train", "{train}", "--param-file", "{root}/nope.json"], 2, "nope.json: no such parameter file"),
    (["tf_gru4rec.train", "{train}", "--test", "{root}/t1.tsv", "{root}/t2.tsv"], 1, "{root}/t2.tsv: no such file"),
    (["tf_gru4rec.train", "{train}", "--init-from", "{root}"], 1, "{root}: not a model directory (no model.keras)"),
    (["tf_gru4rec.train", "{train}", "--init-from", "{damaged}"], 1, "model.keras: damaged, not a complete .keras archive"),
    (["tf_gru4rec.evaluate", "{root}", "{train}"], 1, "{root}: not a model directory (no model.keras)"),
    (["tf_gru4rec.evaluate", "{damaged}", "{train}"], 1, "model.keras: damaged, not a complete .keras archive (8 bytes)"),
    (["tf_gru4rec.evaluate", "--baseline", "pop", "{root}/missing.tsv", "{train}"], 1, "missing.tsv: no such file"),
])
def test_file_and_parameter_errors_come_before_tensorflow(files, args, status, message):
    damaged = files["root"] / "damaged"
    damaged.mkdir(exist_ok=True)
    (damaged / "model.keras").write_bytes(b"PK\x03\x04trun")
    names = {"root": files["root"], "train": files["train"], "damaged": damaged}
    # Not -X importtime: the commands silence stderr while TensorFlow imports.
    code = (f"import runpy, sys\ntry:\n    runpy.run_module({args[0]!r}, run_name='__main__')\n"
            "finally:\n    print('imported:', sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    proc = subprocess_run("-c", code, *[a.format(**names) for a in args[1:]], timeout=60)
    assert proc.stdout == "imported: []\n", proc.stderr[-2000:]
    assert proc.returncode == status, proc.stderr
    assert proc.stderr.startswith(f"{args[0]}: error: ") and len(proc.stderr.splitlines()) <= 2
    assert message.format(**names) in proc.stderr.splitlines()[-1]


def test_train_without_save_or_test_warns_that_the_model_is_discarded(files, capsys):
    """(The same run with --save, and no warning, is the first successful training of
    `test_save_is_checked_before_training_and_never_deletes_user_files`.)"""
    warning = "warning: no --save, --test or --checkpoint-dir: the trained model will be discarded"
    code, out, err = run(train_main, [files["train"], "--params", TINY, "-q"], capsys)
    assert code == 0 and warning in err.splitlines(), err
