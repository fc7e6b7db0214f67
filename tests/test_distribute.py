"""Data-parallel training (tf_gru4rec.training.distribute): shards, equal step counts, one replica
trains like one device, two replicas' step is the reference's combined step, and mirrored
and multi-worker runs give the same model, which saves, loads, evaluates and exports.

Runs with several devices or workers start their own processes (logical devices must be
set before TensorFlow starts; workers are processes on 127.0.0.1), each bounded in time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from gru4rec_reference import reference_name
from gru4rec_reference import session_data as sessions

from tf_gru4rec.data.batcher import SessionParallelBatcher
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions
from tf_gru4rec.evaluation import evaluator as evaluation
from tf_gru4rec.losses import CrossEntropy
from tf_gru4rec.models.gru4rec import GRU4Rec
from tf_gru4rec.optimizers import AdagradM
from tf_gru4rec.serving import export as export_module
from tf_gru4rec.training import distribute, model_dir, trainer

HERE = Path(__file__).resolve().parent
TIMEOUT = 300  # seconds per process; a run takes well under a minute
PARAMS = ("loss=cross-entropy,logq=1.0,layers=16,batch_size=8,n_sample=32,dropout_p_hidden=0.2,"
          "dropout_p_embed=0.1,learning_rate=0.1,momentum=0.3,n_epochs=2,seed=3")


def test_shard_deals_sessions_in_turn_keeping_time_order():
    data = sessions([2, 3, 4, 2, 5])
    starts = data.offsets[:-1]
    for index, expected in [(0, [0, 2, 4]), (1, [1, 3])]:
        shard = data.shard(index, 2)
        assert shard.item_map is data.item_map
        got = [shard.items[a:b].tolist() for a, b in zip(shard.offsets[:-1], shard.offsets[1:])]
        assert got == [data.items[starts[s]:data.offsets[s + 1]].tolist() for s in expected]


def test_replica_batchers_pad_to_the_longest_shard_and_share_negatives():
    data = sessions([5, 2, 5, 2, 5, 2])  # shard 0 holds the long sessions
    batchers = [SessionParallelBatcher(data, 2, n_sample=3, block_steps=1, seed=4, shard=(r, 2))
                for r in range(2)]
    assert [b.n_steps for b in batchers] == [8, 2]
    fake = type("TwoReplicas", (), {"num_replicas_in_sync": 2})()
    padded = distribute.replica_batchers(data, fake, 2, n_sample=3, seed=4)
    assert [b.n_steps for b in padded] == [8, 8]
    blocks = [list(b.blocks()) for b in padded]
    assert all(b["inputs"].shape == (1, 2) and b["n_steps"] == 1 for bs in blocks for b in bs)
    # Replica 1's shard ends after 2 steps: then only inactive rows, all the way to step 8.
    assert [bool(b["valid"].any()) for b in blocks[1]] == [True] * 2 + [False] * 6
    assert [bool(b["valid"].all()) for b in blocks[0]] == [True] * 4 + [False] * 4
    for b0, b1 in zip(*blocks):  # the same extra negatives at every step
        np.testing.assert_array_equal(b0["negatives"], b1["negatives"])
    # The logQ correction uses all the data's popularity, not a shard's.
    support = np.log(data.support())
    b = blocks[1][0]
    np.testing.assert_allclose(b["column_log_q"][0, :2], support[b["targets"][0]])
    with pytest.raises(ValueError, match="6 training sessions cannot be shared by 8 replicas"):
        distribute.replica_batchers(data, type("Eight", (), {"num_replicas_in_sync": 8})(), 2)


def test_replica_batchers_build_the_sampling_table_once(monkeypatch):
    """One alias table for all replicas (it was rebuilt per replica: slow start-up at ~1M
    items); each replica keeps a sampler of its own, drawing the same negatives."""
    from tf_gru4rec.data import sampling

    built = []
    alias_table = sampling.alias_table
    monkeypatch.setattr(sampling, "alias_table", lambda p: built.append(len(p)) or alias_table(p))
    data = sessions([5, 2, 5, 2, 5, 2, 3, 3])
    four = type("FourReplicas", (), {"num_replicas_in_sync": 4})()
    batchers = distribute.replica_batchers(data, four, 2, n_sample=3, seed=4)
    assert built == [len(data.item_map)]
    assert len({id(b.sampler) for b in batchers}) == 4
    assert all(b.sampler.prob is batchers[0].sampler.prob for b in batchers)
    draws = [b.sampler.draw(5) for b in batchers]
    assert all(np.array_equal(d, draws[0]) for d in draws)


def test_local_cluster_configs():
    configs = [json.loads(c) for c in distribute.local_cluster(2)]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(2)]
    hosts = configs[0]["cluster"]["worker"]
    assert configs[1]["cluster"]["worker"] == hosts and len(set(hosts)) == 2
    assert all(h.startswith("127.0.0.1:") for h in hosts)


def test_strategy_settings_are_checked():
    with pytest.raises(ValueError, match="unknown strategy 'ring'"):
        distribute.make_strategy("ring")
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "environ", env)
        with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
            distribute.make_strategy("multi-worker")
    with pytest.raises(ValueError, match="for 'mirrored'"):
        distribute.make_strategy("multi-worker", replicas=2)
    assert distribute.is_chief(None)


@pytest.mark.parametrize("replica_block_steps", [1, 4])
def test_one_replica_trains_exactly_like_one_device(replica_block_steps):
    """A strategy of one replica (blocks of 1 or 4 steps run one step at a time, XLA for the
    step's compute only, the loss scaled by 1 / 1) leaves the parameters where blocks of 4
    steps on one device leave them."""
    data = sessions([4, 2, 6, 3, 3, 2, 5, 2], n_items=9)
    args = dict(item_ids=data.item_map.ids, layers=[6], batch_size=3, seed=2)

    def compiled():
        model = GRU4Rec(**args)
        model.compile(optimizer=AdagradM(0.2, momentum=0.3), loss=CrossEntropy(logq=1.0))
        return model

    single = compiled()
    single.fit(SessionParallelBatcher(data, 3, n_sample=4, block_steps=4, seed=9).dataset(),
               epochs=2, verbose=0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        replicated = compiled()
    assert not replicated.jit_compile
    history = replicated.fit(
        distribute.distributed_dataset(
            strategy, distribute.replica_batchers(data, strategy, 3, n_sample=4, seed=9,
                                                  block_steps=replica_block_steps)),
        epochs=2, verbose=0)
    assert history.history["events"] == [data.n_examples] * 2
    for a, b in zip(single.trainable_weights, replicated.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6, err_msg=a.path)


@pytest.fixture(scope="module")
def two_replica_runs(tmp_path_factory):
    """`distributed_step.py --both`: the reference-step run, the padding run and the
    reference run in blocks of 3 steps, in one process of 2 logical CPUs (one TensorFlow
    start-up for the tests below); their .npz files (step, padding, blocks). The tests only
    read them."""
    root = tmp_path_factory.mktemp("two-replicas")
    out = {"step": root / "step.npz", "padding": root / "padding.npz", "blocks": root / "blocks.npz"}
    # PYTHONPATH: the script must import this checkout's tf_gru4rec, as `-m` runs do.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(HERE / "distributed_step.py"), "--both", str(out["step"]),
                           str(out["padding"]), str(out["blocks"])], timeout=2 * TIMEOUT, capture_output=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return out


def test_two_replicas_step_equals_the_reference_of_the_combined_batch(two_replica_runs):
    """MirroredStrategy over 2 logical CPUs: every step's update is that of the mean of the
    two replicas' losses (each over its own slots, state, resets and in-batch negatives,
    both with the same extra negatives), applied once to the union of their rows; one
    replica's shard ends early and it trains inactive rows until the other ends."""
    from gru4rec_reference import ReferenceTrainer

    z = np.load(two_replica_runs["step"])
    valid = z["block/1/valid"][:, 0]
    assert valid.any(axis=1).tolist() == [True] * 3 + [False] * 4  # replica 1 ends first
    config = dict(layers=[5, 4], embedding="shared", batch_size=2, dropout_p_embed=0.25,
                  dropout_p_hidden=0.3, learning_rate=0.2, momentum=0.3, sample_alpha=0.5,
                  loss="cross-entropy", logq=1.0)
    initial = {reference_name(k.split("/", 1)[1]): z[k] for k in z if k.startswith("initial/")}
    reference = ReferenceTrainer(initial, config, z["support"], replicas=2)
    for t in range(len(valid)):
        reference.replica_step([
            {key: z[f"block/{r}/{key}"][t, 0] for key in ("inputs", "targets", "reset", "valid", "negatives")}
            | {"noise": z["noise"][r, t, 0]} for r in range(2)])
    expected = reference.weights()
    for key in z:
        if not key.startswith("final/"):
            continue
        name = reference_name(key.split("/", 1)[1])
        path = key.split("/", 1)[1]
        np.testing.assert_allclose(z[key], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(z[f"acc/{path}"], reference.acc[name], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(z[f"vel/{path}"], reference.vel[name], rtol=1e-4, atol=1e-5)
    for r in range(2):
        active = z[f"block/{r}/valid"][-1, 0]
        np.testing.assert_allclose(z[f"state/{r}"][active], reference.states[r][active], rtol=1e-4, atol=1e-5)
    assert float(z["loss"]) == pytest.approx(np.mean(reference.step_losses), rel=1e-4)
    # Real dropout uniforms [position, replica, ...]: replicas differ, epochs differ, and a
    # position gives the same numbers again (what makes a run reproducible and a mirrored
    # run equal a multi-worker one).
    masks = z["masks"]
    assert not np.allclose(masks[0, 0], masks[0, 1]) and not np.allclose(masks[0, 0], masks[1, 0])
    np.testing.assert_array_equal(masks[0], masks[2])
    valid_per_step = sum(z[f"block/{r}/valid"][:, 0].sum(axis=1) for r in range(2))
    assert float(z["events"]) == valid_per_step.sum()
    # Per-step logs (progress bar, callbacks): running totals over both replicas.
    np.testing.assert_array_equal(z["batch_events"], np.cumsum(valid_per_step))
    np.testing.assert_allclose(z["batch_loss"], np.cumsum(reference.step_losses) / np.arange(1, 8), rtol=1e-4)


def test_blocks_of_several_steps_train_exactly_as_one_step_calls(two_replica_runs):
    """The reference run fed in blocks of 3 steps (one call runs a block, step by step; the
    epoch's 7 steps end in a block of 1 real step and 2 padding steps that must not run)
    ends with the weights, slots and states of the run of one step per call."""
    one, blocks = np.load(two_replica_runs["step"]), np.load(two_replica_runs["blocks"])
    assert blocks["block/0/n_steps"].tolist() == [3, 3, 1]
    assert blocks["block/0/inputs"].shape[1] == 3 and one["block/0/inputs"].shape[1] == 1
    compared = [k for k in one if k.split("/")[0] in ("initial", "final", "acc", "vel", "state")]
    assert len(compared) > 10
    for key in compared:
        np.testing.assert_allclose(blocks[key], one[key], rtol=1e-6, atol=1e-7, err_msg=key)
    assert float(blocks["events"]) == float(one["events"])
    assert float(blocks["loss"]) == pytest.approx(float(one["loss"]), rel=1e-6)


def test_padding_steps_of_a_replica_touch_no_row(two_replica_runs):
    """A replica whose shard has ended runs steps of inactive rows: they leave every item
    row the other replica does not touch where it was, value, accumulator and velocity
    (they moved row 0 under momentum: its inputs and, without extra negatives, its rows
    were padded with item 0). 2 logical CPUs, momentum 0.5; shared, separate, one-hot."""
    z = np.load(two_replica_runs["padding"])
    for embedding, tables in [("shared", ["wy", "by"]), ("3", ["wy", "by", "e"]),
                              ("none", ["wy", "by", "gru_0/wx"])]:
        valid = [z[f"{embedding}/block/{r}/valid"] for r in range(2)]
        assert valid[0].any(axis=1).tolist() == [True] * 2 + [False] * 5  # replica 0 pads
        assert valid[1].all(axis=1).tolist() == [True] * 7
        for key in ("inputs", "targets"):  # replica 1 never touches items 0-2
            assert z[f"{embedding}/block/1/{key}"].min() >= 3
        for table in tables:
            assert np.abs(z[f"{embedding}/{table}/velocity"][1, 0]).max() > 0  # row 0 has momentum
            for kind in ("value", "accumulator", "velocity"):
                rows = z[f"{embedding}/{table}/{kind}"][:, :3]  # after each step
                for t in range(2, 7):
                    np.testing.assert_array_equal(rows[t], rows[1], err_msg=f"{embedding} {table} {kind} step {t}")


def _train(train_file, save, extra, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "tf_gru4rec.train", str(train_file), "--params", PARAMS, "--save",
         str(save), "-q", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def _finish(procs):
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, stderr[-2000:]
            outs.append((stdout, stderr))
    finally:
        for p in procs:
            p.kill()
    return outs


def test_mirrored_and_multi_worker_runs_give_one_model_that_saves_loads_evaluates_exports(tmp_path):
    train_df, test_df = split_by_time(synthetic_sessions(n_sessions=300, n_items=60, seed=5))
    train_file = tmp_path / "train.tsv"
    train_df.to_csv(train_file, sep="\t", index=False)
    (mirrored_out,) = _finish([_train(train_file, tmp_path / "mirrored",
                                      ["--distribute", "mirrored", "--replicas", "2"])])
    workers = _finish([_train(train_file, tmp_path / "workers", ["--distribute", "multi-worker"],
                              {"TF_CONFIG": config}) for config in distribute.local_cluster(2)])
    assert "not the chief worker" in workers[1][1] and "saved the model" in workers[0][1]
    assert "on 2 replica(s)" in mirrored_out[1] and "on 2 replica(s)" in workers[0][1]

    (m1, p1), (m2, p2) = (model_dir.load_model_dir(tmp_path / d) for d in ("mirrored", "workers"))
    assert p1.to_string() == p2.to_string() and m1.batch_size == 8
    for a, b in zip(m1.trainable_weights, m2.trainable_weights):
        # The same shards, negatives and dropout masks: only how the sums travel differs
        # (bit-identical when measured).
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6, err_msg=a.path)
    data = SessionData.from_frame(train_df)
    initial = GRU4Rec(item_ids=data.item_map.ids, layers=[16], batch_size=8, seed=3)
    assert not np.allclose(initial.item_table.wy.numpy(), m1.item_table.wy.numpy())  # it trained
    r1 = evaluation.evaluate(m1, test_df, cutoffs=(5, 20))
    r2 = evaluation.evaluate(m2, test_df, cutoffs=(5, 20))
    assert r1["recall@20"] == pytest.approx(r2["recall@20"], abs=1e-4)
    pop_recall = 20 / len(data.item_map)
    assert r1["recall@20"] > 2 * pop_recall  # a model that learned, not just one that loads

    loaded = tf.saved_model.load(export_module.export_model(m1, tmp_path / "export", k=5))
    items = test_df["ItemId"].to_numpy()[:4]
    items = items[m1.item_map.lookup(items) >= 0]
    out = loaded.signatures["step"](item_id=tf.constant(items, tf.int64),
                                    state=tf.zeros([len(items), m1.state_size]))
    _, h = m1.step(tf.constant(m1.item_map.lookup(items), tf.int32), tf.zeros([len(items), m1.state_size]))
    top = tf.math.top_k(m1.score_all(h), 5)
    np.testing.assert_array_equal(out["item_ids"].numpy(), m1.item_map.ids[top.indices.numpy()])
    np.testing.assert_allclose(out["scores"].numpy(), top.values.numpy(), rtol=1e-5)


# ----- issue 17, item 9: multi-worker start-up, bad TF_CONFIG, too many slots and devices ----------
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

REPO = HERE.parent


@pytest.mark.parametrize("config, message", [
    ("{not json", "TF_CONFIG is not JSON"),
    ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG needs a "cluster" object'),
    ('{"cluster": {"worker": "127.0.0.1:1234"}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG: cluster "worker" should be a list of "host:port" addresses, got "127.0.0.1:1234"'),
    ('{"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG: worker 0 address "127.0.0.1" should be "host:port" with a port number'),
    ('{"cluster": {"worker": ["a:1", "b:x"]}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG: worker 1 address "b:x" should be "host:port"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     'TF_CONFIG: "task" should name this process\'s job among [\'worker\']'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     'TF_CONFIG: task index 1 is not one of the 1 "worker" address(es)'),
])
def test_a_malformed_tf_config_is_one_line(config, message):
    with pytest.raises(distribute.ClusterError) as error:
        distribute.parse_tf_config(config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_malformed_tf_config_is_one_line_on_the_command_line(tmp_path, capsys, monkeypatch):
    from tf_gru4rec.cli.train import train_main

    train_file = tmp_path / "train.tsv"
    synthetic_sessions(n_sessions=50, n_items=20, seed=1).to_csv(train_file, sep="\t", index=False)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": "127.0.0.1:1234"}, "task": {"type": "worker"}}')
    assert train_main([str(train_file), "--distribute", "multi-worker", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ['tf_gru4rec.train: error: TF_CONFIG: cluster "worker" should be a list '
                                'of "host:port" addresses, got "127.0.0.1:1234"']


def test_the_wait_for_a_worker_that_never_starts_is_bounded_and_says_so():
    cluster, task = distribute.parse_tf_config(distribute.local_cluster(2)[0])
    lines = []
    start = time.monotonic()
    with pytest.raises(distribute.ClusterError, match=r"worker 1 \(127.0.0.1:\d+\) did not start within 1 s "
                                                      r"\(--worker-timeout\)"):
        distribute.wait_for_peers(cluster, task, timeout=1, log=lines.append, poll=0.1)
    assert time.monotonic() - start < 5
    assert len(lines) == 1 and lines[0].startswith("waiting for worker 1 (127.0.0.1:")


def test_the_wait_ends_when_the_peer_listens():
    cluster, task = distribute.parse_tf_config(distribute.local_cluster(2)[0])
    with socket.socket() as peer:  # the other worker, listening on its own port
        peer.bind(cluster["worker"][1])
        peer.listen(4)
        distribute.wait_for_peers(cluster, task, timeout=5, poll=0.1)


def _worker_without_peer(tmp_path, *extra):
    train_file = tmp_path / "train.tsv"
    synthetic_sessions(n_sessions=50, n_items=20, seed=1).to_csv(train_file, sep="\t", index=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CONFIG": distribute.local_cluster(2)[0]}
    return subprocess.Popen([sys.executable, "-m", "tf_gru4rec.train", str(train_file), "-q",
                             "--distribute", "multi-worker", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_worker_whose_peer_never_starts_exits_1_after_the_timeout(tmp_path):
    proc = _worker_without_peer(tmp_path, "--worker-timeout", "2")
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 1 and out == ""
    lines = err.splitlines()
    assert lines[-2].startswith("waiting for worker 1 (127.0.0.1:"), err
    assert lines[-1].startswith("tf_gru4rec.train: error: worker 1 (127.0.0.1:")
    assert lines[-1].endswith("did not start within 2 s (--worker-timeout); start the same command "
                              "there with its TF_CONFIG")


def test_a_waiting_worker_stops_on_sigterm(tmp_path):
    import selectors

    proc = _worker_without_peer(tmp_path, "--worker-timeout", "600")
    try:
        with selectors.DefaultSelector() as selector:  # the waiting line, within 120 s
            selector.register(proc.stderr, selectors.EVENT_READ)
            assert selector.select(timeout=120), "no line within 120 s"
        line = proc.stderr.readline()
        assert line.startswith("waiting for worker 1"), line
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM


def test_more_session_slots_than_sessions_are_refused():
    trainer.check_session_slots(3000, 32, 64)  # 2,048 slots fit
    with pytest.raises(trainer.ParamError, match="batch_size=64 x 64 replica\\(s\\) = 4,096 session slots for "
                                                  "3,000 training sessions: lower batch_size or the replicas"):
        trainer.check_session_slots(3000, 64, 64)


def test_more_session_slots_than_sessions_are_refused_by_train():
    data = sessions([3, 2, 4, 2])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with pytest.raises(trainer.ParamError, match="= 8 session slots for 4 training sessions"):
        trainer.train(data, "layers=8,batch_size=8,n_sample=0,n_epochs=1", distribute=strategy, verbose=0)


def test_more_logical_devices_than_cores_is_a_warning(monkeypatch):
    fake = type("Strategy", (), {})()
    fake.extended = type("Extended", (), {"worker_devices": [f"/job:localhost/replica:0/task:0/device:CPU:{i}"
                                                             for i in range(4)]})()
    monkeypatch.setattr(distribute, "usable_cores", lambda: 2)
    assert distribute.oversubscription_warning(fake) == (
        "warning: 4 logical CPU devices on 2 core(s): the replicas take turns, so this is slower "
        "than one device (a functional check, not a speed-up)")
    monkeypatch.setattr(distribute, "usable_cores", lambda: 4)
    assert distribute.oversubscription_warning(fake) is None


def test_a_worker_lost_mid_training_is_one_line():
    # The survivor's error when worker 1 was killed with -9 in epoch 2 (measured, abridged).
    text = ("Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at (most recent call "
            "last):\n  File \"tf_gru4rec/training.py\", line 242, in train\n\nCollective ops is aborted by: "
            "Error reported from /job:worker/task:1: The following tasks are unhealthy (stopped sending "
            "heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.\n\t [[{{node "
            "CollectiveReduceV2}}]] [Op:__inference_multi_step_on_iterator_1710]")
    error = tf.errors.UnavailableError(None, None, text)
    assert distribute.worker_failure(error) == (
        "worker 1 stopped during training (UnavailableError); restart every worker (with "
        "--checkpoint-dir they continue from the last completed epoch)")
    assert distribute.worker_failure(ValueError(text)) is None
    assert distribute.worker_failure(tf.errors.InvalidArgumentError(None, None, text)) is None
