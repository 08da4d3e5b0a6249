"""Writing outputs so that a crash never leaves a half-written file in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import WriteError

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success, move it over ``target``.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic: readers
    see the old file or the new one, never a mix. On any error (or SIGKILL) the old file stays
    as it was; the temporary file is removed when Python still runs.

    >>> with atomic_path("/tmp/out.txt") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("done")
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise WriteError(f"{target} is a folder; give a file name")
    if not overwrite and target.exists():
        raise WriteError(f"{target} already exists; pass --force to replace it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
    except OSError as e:
        raise WriteError(f"cannot write to {folder}: {e.strerror or e}; choose a writable folder") from e
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp, target)
    except OSError as e:
        raise WriteError(
            f"could not write {target}: {e.strerror or e}; the previous file (if any) is untouched"
        ) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
