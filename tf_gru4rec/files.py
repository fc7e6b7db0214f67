"""Atomic writes: a reader (TF Serving polling a folder, a later command) never sees half
of a file or folder, and a failed write leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(path, prefix=".tmp-", replace=False):
    """Yields a temporary folder beside `path`, renamed to `path` when the block succeeds.

    The temporary name starts with `prefix` (a dot: tools that scan the parent, TF Serving
    among them, skip it). On failure it is removed. With `replace`, an existing `path` is
    replaced; otherwise the rename fails if `path` exists. The folder gets the usual
    umask permissions (mkdtemp's are private; a server may run as another user).
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if replace and os.path.exists(path):
            shutil.rmtree(path)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
