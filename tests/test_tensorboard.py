"""TensorBoard logging of a training run: the scalars, read back from the event files, and
the item embeddings for the projector."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import (
    TENSORS,
    EventAccumulator,
)

from tf_gru4rec import (
    EvaluationCallback,
    EventsPerSecond,
    ItemMap,
    SessionData,
    parse_params,
)
from tf_gru4rec.training.callbacks import ItemEmbeddingProjector, write_item_embeddings

PARAMS = "layers=16,batch_size=16,n_sample=16,n_epochs=3,learning_rate=0.1,seed=1,block_steps=50"
TABLE = "item_embeddings/.ATTRIBUTES/VARIABLE_VALUE"


def read_scalars(run_dir):
    """{tag: [(step, value), ...]} of the scalar summaries in a run folder."""
    events = EventAccumulator(str(run_dir), size_guidance={TENSORS: 0})
    events.Reload()
    return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
            for tag in events.Tags()["tensors"]}


def values(scalars, tag):
    return [v for _, v in scalars[tag]]


def read_metadata(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f]


@pytest.fixture(scope="module")
def logged_run(synthetic_split, tmp_path_factory):
    """A short fit with the TensorBoard, evaluation and projector callbacks."""
    train_df, test_df = synthetic_split
    log_dir = tmp_path_factory.mktemp("tb")
    params = parse_params(PARAMS)
    keras.utils.set_random_seed(params.seed)
    data = SessionData.from_frame(train_df)
    batcher = params.build_batcher(data)
    model = params.build_model(data.item_map)
    model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
    model.fit(batcher.dataset(), epochs=params.n_epochs, shuffle=False, verbose=0, callbacks=[
        EventsPerSecond(),
        EvaluationCallback(test_df, cutoffs=(5, 20)),
        keras.callbacks.TensorBoard(str(log_dir), update_freq=1, write_graph=False),
        ItemEmbeddingProjector(str(log_dir), support=data.support()),
    ])
    return log_dir, model, data, batcher


def test_training_scalars_per_step_and_per_epoch(logged_run):
    log_dir, _, _, batcher = logged_run
    train = read_scalars(log_dir / "train")
    epochs = parse_params(PARAMS).n_epochs
    for tag in ("epoch_loss", "epoch_events_per_second", "epoch_learning_rate", "epoch_events"):
        assert [step for step, _ in train[tag]] == list(range(epochs)), tag
    # One Keras step = one block of `block_steps` GRU4Rec steps: n_blocks points per epoch.
    assert [step for step, _ in train["batch_loss"]] == list(range(1, batcher.n_blocks * epochs + 1))
    assert all(v > 0 for v in values(train, "epoch_events_per_second"))
    assert values(train, "epoch_learning_rate") == pytest.approx([0.1] * epochs)
    assert values(train, "epoch_events") == [batcher.n_examples] * epochs
    loss = values(train, "epoch_loss")
    assert loss[-1] < loss[0], loss
    # Keras' batch logs are the mean over the epoch so far: the last one is the epoch's.
    batch_loss = values(train, "batch_loss")
    assert batch_loss[batcher.n_blocks - 1::batcher.n_blocks] == pytest.approx(loss, rel=1e-5)


def test_validation_scalars_per_epoch(logged_run):
    log_dir = logged_run[0]
    validation = read_scalars(log_dir / "validation")
    epochs = parse_params(PARAMS).n_epochs
    for k in (5, 20):
        recall, mrr = values(validation, f"epoch_recall@{k}"), values(validation, f"epoch_mrr@{k}")
        assert len(recall) == len(mrr) == epochs
        assert all(0 < m <= r <= 1 for r, m in zip(recall, mrr))
    recall = values(validation, "epoch_recall@20")
    assert recall[-1] > recall[0], recall
    assert not any(tag.startswith("batch_") for tag in validation)


def test_projector_files(logged_run):
    log_dir, model, data, _ = logged_run
    run = log_dir / "train"
    rows = read_metadata(run / "metadata.tsv")
    assert rows[0] == ["ItemId", "Support"]
    assert [int(r[0]) for r in rows[1:]] == model.item_map.ids.tolist()
    assert [float(r[1]) for r in rows[1:]] == data.support().tolist()
    # What the projector does: parse the config, find the folder's latest checkpoint, read the
    # tensor it names.
    from google.protobuf import text_format
    from tensorboard.plugins import projector

    config = text_format.Parse((run / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    assert [(e.tensor_name, e.metadata_path) for e in config.embeddings] == [(TABLE, "metadata.tsv")]
    checkpoint = tf.train.latest_checkpoint(str(run))
    assert checkpoint is not None
    np.testing.assert_array_equal(tf.train.load_checkpoint(checkpoint).get_tensor(TABLE), model.item_table.wy.numpy())


def test_write_item_embeddings_without_support_and_with_separate_embedding(tmp_path):
    model = parse_params("layers=4,embedding=3,batch_size=2").build_model(ItemMap([30, 10, 20]))
    write_item_embeddings(model, tmp_path)
    assert read_metadata(tmp_path / "metadata.tsv") == [["30"], ["10"], ["20"]]  # no header row
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path)))
    assert reader.get_tensor(TABLE).shape == (3, 4)
    assert reader.get_tensor("input_item_embeddings/.ATTRIBUTES/VARIABLE_VALUE").shape == (3, 3)
    with pytest.raises(ValueError, match="one value per item"):
        write_item_embeddings(model, tmp_path, support=[1.0, 2.0])
