"""Atomic writes: a reader (TF Serving polling a folder, a later command) never sees half
of a file or folder, and a failed or killed write leaves nothing that the next write does
not clean up (or, where a kill left no folder at all, restore)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import shutil
import tempfile
import zipfile

try:
    import fcntl
except ImportError:  # Windows: no flock; the writer's pid alone tells a live write
    fcntl = None

_RENAME_EXCHANGE = 2  # renameat2 flag (Linux >= 3.15)
_AT_FDCWD = -100
#: Suffix of the old content moved aside where two folders cannot be swapped atomically.
OLD_SUFFIX = "-old"


def _exchange(a: str, b: str) -> bool:
    """Swaps two paths in one atomic step (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def _writer_lock(folder: str):
    """Holds a shared lock on `folder` for the block. The lock is on the folder itself, so
    it follows it through renames, and the kernel drops it when the writer dies (kill -9
    included; a few milliseconds after the process is reaped, until when its folders are
    kept). Unlike the pid in a temporary name, it is seen from other pid namespaces
    (containers sharing the volume). Where the file system has no flock, nothing is held."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _locked(folder: str) -> bool:
    """Whether a running writer holds its lock on `folder` (see `_writer_lock`)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no flock on this file system: the pid decides
        return False
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.tmp-"


def _abandoned(tmp: str, prefix: str) -> bool:
    """Whether temporary folder `tmp` (`PREFIX PID-...`) was left by a writer that is no
    longer running: its pid is gone and nobody holds its lock."""
    pid = os.path.basename(tmp)[len(prefix):].split("-")[0]
    return pid.isdigit() and not _alive(int(pid)) and not _locked(tmp)


def _restorable(leftovers: list[str]) -> str | None:
    """Of abandoned temporary folders, the one to put back where a kill between the two
    renames of a replacement left no folder: the new content if it is complete, else the
    old. The new one is complete when its old counterpart exists, since the old is moved
    aside only once the new one is written. The newest such, if several."""
    new = [t for t in leftovers if t + OLD_SUFFIX in leftovers]
    old = [t for t in leftovers if t.endswith(OLD_SUFFIX)]
    candidates = new or old
    return max(candidates, key=lambda t: (os.stat(t).st_mtime, t)) if candidates else None


def remove_leftovers(path) -> list[str]:
    """Cleans up what killed writes of `path` left beside it; returns what it did, one line
    each (for the caller to report).

    Temporary folders are named `.NAME.tmp-PID-*` (`-old` appended for the old content of
    a replacement); those of a writer that is no longer running are removed. Where `path`
    itself is missing (a kill between the two renames of a replacement without atomic
    swap), one of them is first moved back to `path`: the new content if complete, else
    the old. A running writer's folders are never touched.
    """
    path = os.path.abspath(os.fspath(path))
    prefix = _temp_prefix(path)
    leftovers = sorted(t for t in glob.glob(os.path.join(glob.escape(os.path.dirname(path)), prefix + "*"))
                       if _abandoned(t, prefix))
    done = []
    restore = None if os.path.lexists(path) else _restorable(leftovers)
    if restore is not None:
        os.rename(restore, path)
        leftovers.remove(restore)
        done.append(f"restored {path} from {restore}")
    for tmp in leftovers:
        shutil.rmtree(tmp, ignore_errors=True)
        done.append(f"removed {tmp}")
    return done


def _replace(new: str, path: str) -> None:
    """Puts folder `new` at `path` in place of the non-empty folder there, and removes the
    old content. Where two folders cannot be swapped atomically, the old one is renamed to
    `new + OLD_SUFFIX` first: a kill between the two renames leaves no `path`, which
    `remove_leftovers` restores."""
    with _writer_lock(path):  # the old content, under whichever name it ends up
        if _exchange(new, path):
            old = new
        else:
            old = new + OLD_SUFFIX
            os.rename(path, old)
            try:
                os.rename(new, path)
            except BaseException:
                if not os.path.lexists(path):  # put the old content back
                    os.rename(old, path)
                raise
        shutil.rmtree(old)


@contextlib.contextmanager
def atomic_directory(path, replace=False):
    """Yields a temporary folder beside `path`, moved to `path` when the block succeeds.

    The temporary name starts with a dot (tools that scan the parent, TF Serving among them,
    skip it): `.NAME.tmp-PID-`, whose leftovers `remove_leftovers` finds; the writer holds
    a lock on it until done (see `_writer_lock`). On failure it is removed. With `replace`,
    an existing `path` is replaced atomically where the OS can swap two folders (Linux):
    at every moment `path` holds the old or the new content, complete; elsewhere the old
    one is moved aside first (see `_replace`). Without `replace` an existing non-empty
    `path` makes the move fail. The folder gets the usual umask permissions (mkdtemp's are
    private; a server may run as another user).
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"{_temp_prefix(path)}{os.getpid()}-", dir=parent)
    try:
        with _writer_lock(tmp):
            yield tmp
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            if replace and os.path.isdir(path) and os.listdir(path):
                _replace(tmp, path)
            else:
                os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: The model file of a model directory (`training.save_model_dir`).
MODEL_FILE = "model.keras"


def model_dir_problem(path) -> str | None:
    """Why `path` is no readable model directory (no model.keras, or a damaged one), or
    None. Here, with no TensorFlow, so that the commands check it before TensorFlow loads."""
    model_file = os.path.join(os.fspath(path), MODEL_FILE)
    if not os.path.isfile(model_file):
        return f"{os.fspath(path)}: not a model directory (no {MODEL_FILE})"
    # Keras reports a file that is not a zip archive (a truncated copy) as "File not found".
    if not zipfile.is_zipfile(model_file):
        return (f"{model_file}: damaged, not a complete .keras archive "
                f"({os.path.getsize(model_file):,} bytes); save or copy the model again")
    return None
