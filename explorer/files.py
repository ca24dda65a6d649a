"""Files the app writes while serving (no torch here: app.py imports this before the models load)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_once(path: Path, data: bytes) -> Path:
    """Write `data` to `path` unless a file of that size is already there; atomically, so that a reader
    (a response streaming it) never sees a partial file. For content-addressed paths: same name, same bytes.
    No fsync: these are caches, rebuilt from scratch after a crash."""
    try:
        if path.stat().st_size == len(data):
            os.utime(path)  # gradio's delete_cache ages files by ctime: this file is in use again
            return path
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)  # atomic: readers see no file, or the whole file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
