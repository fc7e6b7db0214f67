"""Tests of tf_gru4rec.system.files: atomic folder replacement under kill -9, leftover cleanup."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tf_gru4rec.system import files
from tf_gru4rec.system.files import _exchange, atomic_directory, remove_leftovers

# Rewrites a folder of 3 files again and again, all files carrying the generation number.
WRITER = textwrap.dedent("""
    import os, sys
    from tf_gru4rec.system.files import atomic_directory
    path, generation = sys.argv[1], 0
    while True:
        generation += 1
        with atomic_directory(path, replace=True) as tmp:
            for name in ("a", "b", "c"):
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(f"{generation} " * 20000)
        print(generation, flush=True)
""")


def complete_generation(path):
    """The generation of the folder at `path`, read through one handle on the folder (a
    reader that opened it keeps reading the same folder even if it is swapped meanwhile).
    None if the folder it opened was removed before all files were read."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = sorted(os.listdir(fd))
        contents = set()
        for name in names:
            with open(name, opener=lambda n, flags: os.open(n, flags, dir_fd=fd)) as f:
                contents.add(f.read())
        if names != ["a", "b", "c"] and os.fstat(fd).st_nlink == 0:
            return None  # opened just before a swap: the old folder, being removed
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)
    assert names == ["a", "b", "c"] and len(contents) == 1, (names, len(contents))
    return int(contents.pop().split()[0])


def released(folders, timeout=5.0):
    """Waits until no process holds a lock on `folders`: the kernel drops a killed process's
    locks asynchronously, a few milliseconds after it is reaped (meanwhile its leftovers are
    kept, as a running writer's)."""
    deadline = time.monotonic() + timeout
    while any(map(files._locked, map(str, folders))) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_replacement_is_atomic_under_kill_9(tmp_path):
    """A reader polling the folder, and a kill -9 at random moments, only ever see a
    complete old or new folder; the next write removes what the killed one left."""
    path = tmp_path / "model"
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                                text=True, env=env)
        try:
            proc.stdout.readline()  # one complete write first
            deadline = time.monotonic() + rng.uniform(0.05, 0.4)
            while time.monotonic() < deadline:
                complete_generation(path)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert complete_generation(path) is not None  # the folder itself is always complete
    released(tmp_path.glob(".model.tmp-*"))
    with atomic_directory(path, replace=True) as tmp:
        open(os.path.join(tmp, "a"), "w").close()
    remove_leftovers(path)
    assert sorted(os.listdir(tmp_path)) == ["model"]


def dead_pid():
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()


def folder(path, content):
    path.mkdir()
    (path / "a").write_text(content)
    return path


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    path = tmp_path / "m"
    dead = dead_pid()
    (tmp_path / f".m.tmp-{dead}-x1").mkdir()
    (tmp_path / f".m.tmp-{os.getpid()}-x2").mkdir()  # a live write in progress
    (tmp_path / f".other.tmp-{dead}-x3").mkdir()  # another target's
    assert remove_leftovers(path) == [f"removed {tmp_path / f'.m.tmp-{dead}-x1'}"]
    assert sorted(os.listdir(tmp_path)) == sorted([f".m.tmp-{os.getpid()}-x2", f".other.tmp-{dead}-x3"])


def test_failed_write_leaves_the_old_folder_and_nothing_else(tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    (path / "a").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(path, replace=True) as tmp:
            open(os.path.join(tmp, "a"), "w").write("new")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == ["m"] and (path / "a").read_text() == "old"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_exchange_swaps_two_folders(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "1").touch()
    assert _exchange(str(tmp_path / "x"), str(tmp_path / "y"))
    assert os.listdir(tmp_path / "y") == ["1"] and os.listdir(tmp_path / "x") == []


# The states a kill leaves when the OS cannot swap two folders (the old content is renamed to
# TMP-old, then TMP to the path): (folders left, the content `remove_leftovers` leaves at the path).
KILLED_REPLACEMENTS = {
    "between the two renames": ({"x1": "new", "x1-old": "old"}, "new"),  # TMP complete: moved
    "between the renames, new copy gone": ({"x1-old": "old"}, "old"),
    "while writing a first version": ({"x1": "half"}, None),  # maybe incomplete: never restored
}


@pytest.mark.parametrize("left, restored", KILLED_REPLACEMENTS.values(), ids=KILLED_REPLACEMENTS.keys())
def test_a_kill_that_left_no_folder_is_recovered_from_the_leftovers(tmp_path, left, restored):
    path, dead = tmp_path / "m", dead_pid()
    for suffix, content in left.items():
        folder(tmp_path / f".m.tmp-{dead}-{suffix}", content)
    done = remove_leftovers(path)
    assert os.listdir(tmp_path) == (["m"] if restored else [])
    if restored:
        assert (path / "a").read_text() == restored
        assert done[0] == f"restored {path} from {tmp_path}/.m.tmp-{dead}-{'x1' if restored == 'new' else 'x1-old'}"
    assert len(done) == len(left)


def test_a_kill_after_the_second_rename_keeps_the_new_folder(tmp_path):
    path, dead = folder(tmp_path / "m", "new"), dead_pid()
    folder(tmp_path / f".m.tmp-{dead}-x1-old", "old")
    assert remove_leftovers(path) == [f"removed {tmp_path}/.m.tmp-{dead}-x1-old"]
    assert os.listdir(tmp_path) == ["m"] and (path / "a").read_text() == "new"


def test_a_writer_that_holds_its_lock_is_running_whatever_its_pid(tmp_path):
    """A writer in another pid namespace (a container sharing the volume) has a pid that looks
    dead here: its lock alone says it runs. Killed, the kernel drops the lock."""
    path, dead = tmp_path / "m", dead_pid()
    new, old = folder(tmp_path / f".m.tmp-{dead}-x1", "new"), folder(tmp_path / f".m.tmp-{dead}-x1-old", "old")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys\n"  # a writer's lock: shared flock on each folder
         "fds = [os.open(p, os.O_RDONLY) for p in sys.argv[1:]]\n"
         "[fcntl.flock(fd, fcntl.LOCK_SH) for fd in fds]\nprint(flush=True); sys.stdin.read()",
         str(new), str(old)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()
        assert remove_leftovers(path) == []  # mid-replacement: no folder at the path, and none restored
        assert sorted(os.listdir(tmp_path)) == [new.name, old.name]
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    released([new, old])
    assert remove_leftovers(path)[0] == f"restored {path} from {new}"
    assert os.listdir(tmp_path) == ["m"] and (path / "a").read_text() == "new"


def test_replacement_without_an_atomic_swap_locks_both_folders(tmp_path, monkeypatch):
    locked = []  # at the moment of the swap: is the new folder locked, and the old one?
    monkeypatch.setattr(files, "_exchange", lambda a, b: locked.extend(map(files._locked, (a, b))))
    path = folder(tmp_path / "m", "old")
    with atomic_directory(path, replace=True) as tmp:
        open(os.path.join(tmp, "a"), "w").write("new")
    assert locked == [True, True]
    assert os.listdir(tmp_path) == ["m"] and (path / "a").read_text() == "new"
