import json

import pytest

from tf_gru4rec.losses import BPRMax, CrossEntropy
from tf_gru4rec.params import GRU4RecParams, ParamError, load_param_file, parse_params

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
    assert parse_params("embedding=64").embedding_mode == 64
    assert parse_params("constrained_embedding=False").embedding_mode == "none"


@pytest.mark.parametrize("spec, message", [
    ("los=bpr-max,hiddn=3", "unknown parameter\\(s\\): hiddn, los"),
    ("loss=xe", "invalid value for loss"),
    ("layers=100/abc", "invalid value for layers"),
    ("batch_size=0", "invalid value for batch_size"),
    ("dropout_p_hidden=1.5", "invalid value for dropout_p_hidden"),
    ("momentum=-0.1", "invalid value for momentum"),
    ("n_sample=2.5", "invalid value for n_sample"),
    ("constrained_embedding=maybe", "invalid value for constrained_embedding"),
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
    with pytest.raises(ParamError, match="cannot read"):
        load_param_file(tmp_path / "missing.json")


def test_defaults_are_valid():
    assert GRU4RecParams().embedding_mode == "shared"
