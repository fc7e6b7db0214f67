"""Tests of tf_gru4rec.serving.new_items and the `add_items` signature of an export with spare
rows: a never-clicked item added after export is recommended by the stateful and stateless
signatures at once (TF's loader, `saved_model_cli` and the local gRPC server), scored by its
features alone; the token encoding equals `FeatureEncoder.encode`; bounds and bad requests.

The model: trained on `hot_clicks` (conftest) with a `kind` feature and a numeric `price`.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_gru4rec.data.item_features import FeatureEncoder
from tf_gru4rec.serving import GRU4RecClient, start_local_server
from tf_gru4rec.serving import export as export_module
from tf_gru4rec.serving.new_items import FeatureTokens, with_spare_rows
from tf_gru4rec.training.trainer import train

K = 4
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
TABLE = pd.DataFrame({"ItemId": [0, 1, 2, 3, 4, 5], "kind": ["start", "hot", "hot", "hot", "start", "other"],
                      "price": [1.0, 5.0, 6.0, 7.0, 2.0, 3.0]})


@pytest.fixture(scope="module")
def model(hot_clicks):
    cells = {c: list(TABLE[c]) for c in ("kind", "price")}
    features = FeatureEncoder.fit(cells, {"kind": "categorical", "price": "numeric:2"}, "t").encode(TABLE)
    return train(hot_clicks, "layers=16,batch_size=8,n_sample=4,n_epochs=3,learning_rate=0.2,seed=1,id_dropout=0.3",
                 verbose=0, item_features=features).model


@pytest.fixture(scope="module")
def base(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("export") / "gru4rec"
    export_module.export_model(model, base, k=K, capacity=100, spare_items=3)
    return base


@pytest.fixture()
def loaded(base):
    """A fresh load: the export's catalogue, no added item."""
    return tf.saved_model.load(os.path.join(base, "1"))


def feature_part(model, h, values):
    """h [b, d] . mean V[values] + mean b[values]: a score by features alone."""
    v, b = model.item_table.features.v.numpy(), model.item_table.features.b.numpy()
    return h @ v[values].mean(0) + b[values].mean()


def add(loaded, ids, tokens):
    return loaded.signatures["add_items"](item_ids=tf.constant(ids, tf.int64),
                                          feature_values=tf.constant(tokens, tf.string))


def step(loaded, items):
    out = loaded.signatures["step"](item_id=tf.constant(items, tf.int64),
                                    state=tf.zeros([len(items), 16]))
    return {k: v.numpy() for k, v in out.items()}


def limits(loaded):
    return {k: int(v) for k, v in loaded.signatures["limits"]().items()}


def test_spare_rows_keep_every_score_and_start_empty(model):
    grown = with_spare_rows(model, 3)
    assert grown.n_items == model.n_items + 3
    _, h = model.step(tf.constant([0, 4]), model.initial_state(2))
    np.testing.assert_allclose(grown.score_all(h).numpy()[:, :model.n_items], model.score_all(h).numpy(), atol=1e-6)
    assert not grown.score_all(h).numpy()[:, model.n_items:].any()  # zero id part, no values
    assert (grown.item_table.features.item_values.numpy()[model.n_items:] == -1).all()


@pytest.mark.parametrize("embedding", ["none", 4])
def test_spare_rows_of_other_embeddings_keep_every_score(model, embedding):
    """One-hot input (layer 0's input rows grow) and a separate embedding (E and its features)."""
    from tf_gru4rec.models.gru4rec import GRU4Rec

    other = GRU4Rec(item_ids=model.item_map.ids, item_features=dict(model.item_features), embedding=embedding,
                    layers=[16], seed=2)
    rng = np.random.default_rng(0)
    for v in other.trainable_weights:
        v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))
    for layer in (other.item_table, other.item_embedding):
        if layer is not None and layer.features is not None:
            layer.features.item_values.assign(model.item_table.features.item_values.numpy())
    grown = with_spare_rows(other, 2)
    before, after = (m.score_all(m.step(tf.constant([0, 3]), m.initial_state(2))[1]).numpy() for m in (other, grown))
    np.testing.assert_allclose(after[:, :other.n_items], before, rtol=1e-5, atol=1e-6)
    assert not after[:, other.n_items:].any()


def test_tokens_encode_as_the_encoder_does(model):
    encoder = model.feature_encoder
    frame = pd.DataFrame({"ItemId": [7, 8, 9, 10], "kind": ["hot", "nope", None, "other"],
                          "price": [0.5, 6.5, 4.0, None]})
    expected = encoder.encode(frame)
    tokens = [["kind=hot", "price=0.5"], ["kind=nope", "price=6.5"], ["", "price=4"], ["kind=other", "price=abc"]]
    got = FeatureTokens(encoder)(tf.constant(tokens)).numpy()
    for i in range(4):
        assert sorted(v for v in got[i].tolist() if v >= 0) == expected.item_values(i).tolist(), i
    assert got[3, 1] == -1 and got[1, 0] == -1  # not a number; not in the vocabulary


def test_an_added_item_is_recommended_by_every_signature(model, loaded, base, tmp_path):
    n = model.n_items
    assert (limits(loaded)["n_items"], limits(loaded)["spare_items"]) == (n, 3)
    before = step(loaded, [0])
    assert 97 not in before["item_ids"][0]
    out = add(loaded, [97, 1, 96], [["kind=hot", "price=6"], ["kind=hot", ""], ["kind=nope", ""]])
    np.testing.assert_array_equal(out["added"].numpy(), [True, False, True])  # 1 is known: unchanged
    np.testing.assert_array_equal(out["unknown_values"].numpy(), [0, 0, 1])
    assert (limits(loaded)["n_items"], limits(loaded)["spare_items"]) == (n + 2, 1)
    # Stateless: after 0, 97 ranks among the hot items, scored by its features alone.
    after = step(loaded, [0])
    assert set(after["item_ids"][0]) == {1, 2, 3, 97}, after["item_ids"]
    _, h = model.step(tf.constant(model.item_map.lookup([0]), tf.int32), model.initial_state(1))
    values = model.feature_encoder.encode(pd.DataFrame({"ItemId": [97], "kind": ["hot"], "price": [6.0]})).values
    assert len(values) == 2
    score = dict(zip(after["item_ids"][0].tolist(), after["scores"][0].tolist()))
    np.testing.assert_allclose(score[97], feature_part(model, h.numpy(), values)[0], rtol=1e-5)
    # Stateful, score_items and a click on the new item.
    stateful = loaded.signatures["stateful"](session_id=tf.constant(["s"]), item_id=tf.constant([0], tf.int64))
    np.testing.assert_array_equal(stateful["item_ids"].numpy(), after["item_ids"])
    scored = loaded.signatures["score_items"](state=tf.constant(after["state"]),
                                              candidate_ids=tf.constant([[97, 96, 12345]], tf.int64))
    np.testing.assert_array_equal(scored["known"].numpy(), [[True, True, False]])
    np.testing.assert_allclose(scored["scores"].numpy()[0, 0], score[97], rtol=1e-5)
    clicked = step(loaded, [97])
    assert not clicked["unknown_item"][0] and np.abs(clicked["state"]).sum() > 0
    # The blocklist covers added items; unused spare rows never become recommendable.
    loaded.signatures["set_blocklist"](item_ids=tf.constant([97], tf.int64))
    assert 97 not in step(loaded, [0])["item_ids"][0]
    everything_but_2 = [0, 1, 3, 4, 5, 97, 96]
    loaded.signatures["set_blocklist"](item_ids=tf.constant(everything_but_2, tf.int64))
    only = step(loaded, [0])
    assert only["item_ids"][0].tolist() == [2, -1, -1, -1] and np.isneginf(only["scores"][0, 1:]).all()
    # A fresh load starts from the export's catalogue again.
    assert limits(tf.saved_model.load(os.path.join(base, "1")))["n_items"] == n


@pytest.mark.parametrize("ids, tokens, message", [
    ([97, 98], [["kind=hot"], ["kind=hot"], ["kind=hot"]], "feature_values must have one row per item_id"),
    ([97, 97], [["kind=hot"], ["kind=hot"]], "item_ids holds an id more than once"),
    ([91, 92, 93, 94], [["kind=hot"]] * 4, "this export has room for 3 added items in all"),
    ([97], [["kind=hot", "kind=start", "price=1"]], "an item has at most 2 feature values in this model"),
])
def test_bad_add_items_requests_fail_with_a_clear_invalid_argument(loaded, ids, tokens, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        add(loaded, ids, tokens)
    assert limits(loaded)["n_items"] == 6  # nothing added


def test_spare_items_need_item_features(tmp_path):
    from tf_gru4rec.data.synthetic import synthetic_sessions

    plain = train(synthetic_sessions(n_sessions=50, n_items=10, seed=0), "layers=8,batch_size=4,n_sample=4,n_epochs=1",
                  verbose=0).model
    for spare, message in [(2, "^spare_items needs a model with item features: an added item is scored by its "
                               r"features \(train with --item-features\)$"),
                           (-1, r"^`spare_items` should be an int >= 0\. Received: `spare_items` = -1\.$")]:
        with pytest.raises(export_module.ExportError, match=message):
            export_module.export_model(plain, tmp_path / "out", spare_items=spare)
    assert not (tmp_path / "out").exists()  # refused before any folder is made


def test_saved_model_cli_lists_add_items(base):
    out = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", os.path.join(base, "1"), "--signature_def", "add_items",
                          "--tag_set", "serve"], capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
    assert "inputs['feature_values'] tensor_info:" in out and "dtype: DT_STRING" in out
    assert "outputs['added'] tensor_info:" in out and "outputs['unknown_values'] tensor_info:" in out


def test_add_items_through_the_grpc_client(base):
    server, port = start_local_server(base, port=0)
    try:
        with GRU4RecClient(f"127.0.0.1:{port}", model_name="gru4rec") as client:
            assert 97 not in client.next_items("g", 0)[0]
            added, unknown = client.add_items([97], ["kind=hot;price=6"])
            assert added.tolist() == [True] and unknown.tolist() == [0]
            ids, _ = client.next_items("g2", 0)
            assert set(ids.tolist()) == {1, 2, 3, 97}
            step_ids, _, _ = client.step([0])
            assert set(step_ids[0].tolist()) == {1, 2, 3, 97}
    finally:
        server.stop(grace=None)


def test_export_command_declares_spare_items(model, tmp_path, capsys):
    from tf_gru4rec.cli.export import export_main
    from tf_gru4rec.training.model_dir import save_model_dir

    save_model_dir(model, tmp_path / "m")
    assert export_main([str(tmp_path / "m"), "--out", str(tmp_path / "out"), "--spare-items", "5"]) == 0
    out = capsys.readouterr().out
    assert f"{model.n_items} items, 5 spare rows for add_items" in out and "add_items" in out.split("request limits")[1]
    assert export_main([str(tmp_path / "m"), "--out", str(tmp_path / "out"), "--spare-items", "-2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("python -m tf_gru4rec.export: error: `spare_items` should be an int >= 0. Received: "
                   "`spare_items` = -2. (see --help)")
