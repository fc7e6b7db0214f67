"""Atomic writes: a reader (TF Serving polling a folder, a later command) never sees half
of a file or folder, and a failed or killed write leaves nothing that the next write does
not clean up."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import shutil
import tempfile

_RENAME_EXCHANGE = 2  # renameat2 flag (Linux >= 3.15)
_AT_FDCWD = -100


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


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.tmp-"


def remove_leftovers(path) -> list[str]:
    """Removes the temporary folders that killed writes of `path` left beside it.

    Temporary folders are named `.NAME.tmp-PID-*`; those of a process that is no longer
    running are removed. Returns their paths (for the caller to report).
    """
    path = os.path.abspath(os.fspath(path))
    removed = []
    for tmp in glob.glob(os.path.join(glob.escape(os.path.dirname(path)), _temp_prefix(path) + "*")):
        pid = os.path.basename(tmp)[len(_temp_prefix(path)):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_directory(path, replace=False):
    """Yields a temporary folder beside `path`, moved to `path` when the block succeeds.

    The temporary name starts with a dot (tools that scan the parent, TF Serving among them,
    skip it): `.NAME.tmp-PID-`, whose leftovers `remove_leftovers` finds. On
    failure it is removed. With `replace`, an existing `path` is replaced atomically where
    the OS can swap two folders (Linux): at every moment `path` holds the old or the new
    content, complete; elsewhere the old one is moved aside first. Without `replace` an
    existing non-empty `path` makes the move fail. The folder gets the usual umask
    permissions (mkdtemp's are private; a server may run as another user).
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"{_temp_prefix(path)}{os.getpid()}-", dir=parent)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if replace and os.path.isdir(path) and os.listdir(path):
            if not _exchange(tmp, path):
                os.rename(path, tmp + "-old")
                os.rename(tmp, path)
                tmp += "-old"
            shutil.rmtree(tmp)  # now the old content
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
