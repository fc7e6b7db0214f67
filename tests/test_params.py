import json
from pathlib import Path

import pytest

from tf_gru4rec.losses import BPRMax, CrossEntropy
from tf_gru4rec.training import params as params_module
from tf_gru4rec.training.params import (
    PARAM_FILE_DIR,
    GRU4RecParams,
    ParamError,
    load_param_file,
    parse_params,
    shipped_param_files,
)

RSC15 = ("loss=cross-entropy,constrained_embedding=True,embedding=0,elu_param=0,layers=100,"
         "n_epochs=10,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,learning_rate=0.2,"
         "momentum=0.2,n_sample=2048,sample_alpha=0.5,bpreg=0.0,logq=1.0")


def test_published_string_parses():
    p = parse_params(RSC15)
    assert p.layers == [100] and p.batch_size == 32 and p.dropout_p_hidden == 0.4
    assert p.embedding_mode == "shared" and p.logq == 1.0 and p.n_epochs == 10
    loss = p.build_loss()
    assert isinstance(loss, CrossEntropy) and loss.logq == 1.0
    opt = p.build_optimizer()
    assert opt.momentum == 0.2 and float(opt.learning_rate) == pytest.approx(0.2)


def test_lists_dicts_seed_and_round_trip():
    p = parse_params({"layers": "100/200", "seed": 7, "loss": "bpr-max", "bpreg": "1.95", "elu_param": 0.5})
    assert p.layers == [100, 200] and p.seed == 7
    assert isinstance(p.build_loss(), BPRMax) and p.build_loss().bpreg == 1.95
    assert parse_params(p.to_string()) == p
    assert "id_dropout" not in p.to_string()  # a features knob: written only when set
    dropped = parse_params("id_dropout=0.4")
    assert "id_dropout=0.4" in dropped.to_string() and parse_params(dropped.to_string()) == dropped
    assert parse_params("embedding=64").embedding_mode == 64
    assert parse_params("constrained_embedding=False").embedding_mode == "none"


@pytest.mark.parametrize("spec, message", [
    ("los=bpr-max,hiddn=3", "unknown parameter\\(s\\): hiddn, los"),
    ("loss=xe", "invalid value for loss"),
    ("layers=100/abc", "invalid value for layers"),
    ("batch_size=0", "invalid value for batch_size"),
    ("dropout_p_hidden=1.5", "invalid value for dropout_p_hidden"),
    ("id_dropout=1.5", r"invalid value for id_dropout: 1.5 \(a drop probability in \[0, 1\]\)"),
    ("momentum=-0.1", "invalid value for momentum"),
    ("n_sample=2.5", "invalid value for n_sample"),
    ("constrained_embedding=maybe", "invalid value for constrained_embedding"),
    ("learning_rate=nan", "invalid value for learning_rate: nan .must be a finite number"),
    ("learning_rate=1e30", "invalid value for learning_rate: 1e.30 .must be in \\(0, 100\\]"),
    ("sample_alpha=nan", "invalid value for sample_alpha: nan"),
    ("logq=inf", "invalid value for logq: inf"),
    ("bpreg=-inf", "invalid value for bpreg: -inf"),
    ("learning_rate", "expected name=value"),
])
def test_bad_parameters_are_named(spec, message):
    with pytest.raises(ParamError, match=message):
        parse_params(spec)


def test_parameter_files(tmp_path):
    ref = tmp_path / "rsc15.py"
    ref.write_text(
        "from collections import OrderedDict\n"
        "gru4rec_params = OrderedDict([('loss', 'cross-entropy'), ('layers', [100]), ('batch_size', 32),"
        " ('dropout_p_hidden', 0.4), ('learning_rate', 0.2), ('momentum', 0.2), ('logq', 1.0)])\n"
    )
    js = tmp_path / "p.json"
    js.write_text(json.dumps({"loss": "cross-entropy", "layers": [100], "batch_size": 32,
                              "dropout_p_hidden": 0.4, "learning_rate": 0.2, "momentum": 0.2, "logq": 1.0}))
    assert load_param_file(ref) == load_param_file(js) == parse_params(
        "loss=cross-entropy,layers=100,batch_size=32,dropout_p_hidden=0.4,learning_rate=0.2,momentum=0.2,logq=1")
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(ParamError, match="defines no gru4rec_params"):
        load_param_file(bad)
    with pytest.raises(ParamError, match="missing.json: no such parameter file, nor a shipped one"):
        load_param_file(tmp_path / "missing.json")


def test_defaults_are_valid():
    assert GRU4RecParams().embedding_mode == "shared"


# ----- the shipped published parameter sets ---------------------------------------------------
# The spec's section 9 table (gru4rec-algorithm.md), row for row; "-" = not given.
SPEC_TABLE = """
| dataset | loss | layers | batch | drop emb | drop hid | lr | momentum | n_sample | alpha | bpreg | elu | logq |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| RSC15 | cross-entropy | 100 | 32 | 0.0 | 0.4 | 0.2 | 0.2 | 2048 | 0.5 | - | 0 | 1 |
| Yoochoose | cross-entropy | 480 | 48 | 0.0 | 0.2 | 0.07 | 0.0 | 2048 | 0.2 | - | 0 | 1 |
| Rees46 | cross-entropy | 512 | 240 | 0.45 | 0.0 | 0.065 | 0.0 | 2048 | 0.5 | - | 0 | 1 |
| Coveo | bpr-max | 512 | 144 | 0.35 | 0.0 | 0.05 | 0.4 | 2048 | 0.2 | 1.85 | 1 | 0 |
| RetailRocket | bpr-max | 224 | 80 | 0.5 | 0.05 | 0.05 | 0.4 | 2048 | 0.4 | 1.95 | 0.5 | 0 |
| Diginetica | bpr-max | 512 | 128 | 0.5 | 0.3 | 0.05 | 0.15 | 2048 | 0.3 | 0.9 | 1 | 0 |
"""
COLUMNS = {"loss": "loss", "layers": "layers", "batch": "batch_size", "drop emb": "dropout_p_embed",
           "drop hid": "dropout_p_hidden", "lr": "learning_rate", "momentum": "momentum",
           "n_sample": "n_sample", "alpha": "sample_alpha", "bpreg": "bpreg", "elu": "elu_param",
           "logq": "logq"}
SPEC_DOC = Path(__file__).resolve().parents[2] / "shared" / "docs" / "gru4rec-algorithm.md"


def spec_rows(table=SPEC_TABLE):
    """{dataset: {parameter name: text value}} of the table, without its "-" cells."""
    lines = [line.strip(" |").split(" | ") for line in table.strip().splitlines() if line.startswith("| ")]
    head, rows = lines[0], lines[1:]
    return {row[0]: {COLUMNS[h]: v for h, v in zip(head[1:], row[1:]) if v != "-"} for row in rows
            if not row[0].startswith("---")}


def shipped_name(dataset, loss):
    return f"{dataset.lower()}_{'xe' if loss == 'cross-entropy' else 'bprmax'}_shared_best"


def test_the_embedded_table_is_the_specs():
    if not SPEC_DOC.exists():
        pytest.skip(f"{SPEC_DOC} is absent")
    section = SPEC_DOC.read_text().split("## 9.")[1].split("\n## ")[0]
    assert spec_rows("\n".join(l for l in section.splitlines() if l.startswith("|"))) == spec_rows()


@pytest.mark.parametrize("dataset", list(spec_rows()))
def test_each_shipped_file_holds_exactly_its_spec_row(dataset):
    row = spec_rows()[dataset]
    name = shipped_name(dataset, row["loss"])
    path = PARAM_FILE_DIR / f"{name}.py"
    literal = params_module._literal_params(path.read_text(), path)
    # the row, plus what the table's title states for every row: 10 epochs, shared embedding
    want = {**row, "n_epochs": "10", "embedding": "0", "constrained_embedding": "True"}
    assert set(literal) == set(want)
    assert load_param_file(name) == parse_params(want) == load_param_file(f"{name}.py")


def test_shipped_names_unknown_names_and_paths(tmp_path, monkeypatch):
    assert shipped_param_files() == sorted(shipped_name(d, r["loss"]) for d, r in spec_rows().items())
    with pytest.raises(ParamError) as info:
        load_param_file("rsc15")
    assert str(info.value) == ("rsc15: no such parameter file, nor a shipped one "
                               f"({', '.join(shipped_param_files())})")
    # an existing file of the same name wins over the shipped one
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rsc15_xe_shared_best.py").write_text("gru4rec_params = {'layers': [7]}\n")
    assert load_param_file("rsc15_xe_shared_best.py").layers == [7]
    assert load_param_file("rsc15_xe_shared_best").layers == [100]



def test_plain_keras_defaults_are_the_params_defaults():
    """`params.build_*` and the classes' own defaults build the same model, losses,
    optimizer and batchers (they disagreed on batch_size, elu_param and n_sample)."""
    import numpy as np
    import pandas as pd

    from tf_gru4rec.data.batcher import SessionParallelBatcher
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.models.gru4rec import GRU4Rec
    from tf_gru4rec.optimizers import AdagradM
    from tf_gru4rec.training import distribute

    data = SessionData.from_frame(pd.DataFrame(
        {"SessionId": np.repeat(np.arange(10), 3), "ItemId": np.arange(30) % 7, "Time": np.arange(30)}))
    p = GRU4RecParams()
    assert GRU4Rec(item_ids=data.item_map.ids).get_config() == p.build_model(data.item_map).get_config()
    unnamed = lambda loss: {k: v for k, v in loss.get_config().items() if k != "name"}  # noqa: E731
    assert unnamed(CrossEntropy()) == unnamed(p.build_loss())
    assert unnamed(BPRMax()) == unnamed(parse_params(loss="bpr-max").build_loss())
    assert AdagradM().get_config() == p.build_optimizer().get_config()

    def settings(batcher):
        return {"batch_size": batcher.batch_size, "n_sample": batcher.n_sample,
                "sample_alpha": batcher._sample_alpha, "width": batcher.width,
                "cache_steps": batcher.sampler.steps_per_refill if batcher.sampler else None}

    expected = settings(p.build_batcher(data))
    assert settings(SessionParallelBatcher(data, p.batch_size)) == expected
    one = type("OneReplica", (), {"num_replicas_in_sync": 1})()
    assert settings(distribute.replica_batchers(data, one, p.batch_size)[0]) == expected
    assert SessionParallelBatcher(data, p.batch_size).block_steps == p.block_steps
