"""Tests of tf_gru4rec.training.tune and its command: a tiny resumable Optuna study and the search-space checks."""

import json
import sys

import optuna
import pytest

from tf_gru4rec.cli import tune as tune_cli
from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions
from tf_gru4rec.training import tune
from tf_gru4rec.training.params import ParamError, parse_params

SPACE = {
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.2, "log": True},
    "layers": {"type": "categorical", "choices": ["8", "16"]},
    "n_sample": {"type": "int", "low": 0, "high": 32, "step": 16},
}
FIXED = "batch_size=16,n_epochs=1,seed=1,block_steps=20"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    train, valid = split_by_time(synthetic_sessions(n_sessions=300, n_items=40, seed=5), 0.2)
    train.to_csv(root / "train.tsv", sep="\t", index=False)
    valid.to_csv(root / "valid.tsv", sep="\t", index=False)
    (root / "space.json").write_text(json.dumps(SPACE))
    return root


def tune_argv(root, trials, metric="mrr"):
    return [str(root / "train.tsv"), str(root / "valid.tsv"), "--space", str(root / "space.json"),
            "--trials", str(trials), "--metric", metric, "--cutoff", "10", "--params", FIXED,
            "--storage", f"sqlite:///{root / 'study.db'}", "--study-name", "tiny"]


def test_study_runs_resumes_and_prints_best_params(files, capsys):
    assert tune_cli.main(tune_argv(files, 2)) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{files / 'study.db'}")
    assert len(study.trials) == 2 and all(t.value is not None for t in study.trials)
    assert all(0.0 < t.value <= 1.0 for t in study.trials)

    assert tune_cli.main(tune_argv(files, 1)) == 0  # resumes: one more trial in the same study
    best_line = capsys.readouterr().out.strip().splitlines()[-1]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{files / 'study.db'}")
    assert len(study.trials) == 3
    best = parse_params(best_line)
    assert (best.batch_size, best.n_epochs, best.seed, best.block_steps) == (16, 1, 1, 20)  # fixed
    assert best.layers in ([8], [16]) and best.n_sample in (0, 16, 32)
    assert 0.02 <= best.learning_rate <= 0.2
    assert best.learning_rate == pytest.approx(study.best_params["learning_rate"], rel=1e-12)
    assert study.best_value >= max(t.value for t in study.trials[:2])
    assert first.startswith(FIXED + ",learning_rate=")


@pytest.mark.parametrize("space, message", [
    ({"hidden": {"type": "int", "low": 1, "high": 2}}, "`hidden` is not a GRU4Rec parameter"),
    ({"momentum": {"type": "uniform", "low": 0, "high": 1}}, "should be an object with \"type\""),
    ({"momentum": {"type": "float", "low": 0.5, "high": 0.1}}, "needs \"low\" <= \"high\""),
    ({"momentum": {"type": "float", "low": 0.0, "high": 1.5}}, "invalid value for momentum: 1.5"),
    ({"layers": {"type": "categorical", "choices": []}}, "\"choices\" should be a non-empty list"),
    ({"n_sample": {"type": "int", "low": 0, "high": 64, "log": True, "step": 8}},
     "\"log\" and \"step\" cannot be combined"),
    ({"loss": {"type": "categorical", "choices": ["bpr-max"], "low": 1}}, "unknown key(s) ['low']"),
])
def test_bad_space_is_a_param_error(tmp_path, space, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    with pytest.raises(ParamError) as info:
        tune.load_space(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_cli_errors_are_one_line(files, tmp_path, capsys, monkeypatch):
    argv = tune_argv(files, 1)
    argv[argv.index("--params") + 1] = FIXED + ",learning_rate=0.1"
    assert tune_cli.main(argv) == 2  # bad settings: a usage error
    err = capsys.readouterr().err
    assert err.strip() == "tf_gru4rec.tune: error: parameter(s) both fixed and searched: learning_rate"

    argv = tune_argv(files, 1)
    argv[argv.index("--space") + 1] = str(tmp_path / "no_space.json")
    assert tune_cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"tf_gru4rec.tune: error: {tmp_path / 'no_space.json'}: cannot read the search space "
        "(No such file or directory)")

    argv = tune_argv(files, 1)
    argv[1] = str(tmp_path / "no_valid.tsv")  # bad input: exit 1
    assert tune_cli.main(argv) == 1
    assert capsys.readouterr().err.strip() == (
        f"tf_gru4rec.tune: error: {tmp_path / 'no_valid.tsv'}: no such file")

    monkeypatch.setitem(sys.modules, "optuna", None)  # as if the extra were not installed
    assert tune_cli.main(tune_argv(files, 1)) == 1
    assert capsys.readouterr().err.strip() == (
        "tf_gru4rec.tune: error: Optuna is not installed: pip install 'tf_gru4rec[tune]'")
