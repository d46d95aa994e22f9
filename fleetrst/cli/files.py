"""The files commands write: written here, in the command layer, never by a renderer."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_textfile(path: Path, text: str) -> None:
    """Write atomically for node_exporter's textfile collector: a temporary file in the same directory,
    flushed to disk, then renamed over ``path``; readable by the exporter's user (0644)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
