"""Writing outputs so that a crash never leaves a half-written file in place."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import WriteError

__all__ = ["atomic_path", "check_writable"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success, move it over ``target``.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic: readers
    see the old file or the new one, never a mix. On any error the old file stays as it was and
    the temporary file is removed. A process killed outright (SIGKILL, power loss) leaves its
    temporary file, ``.NAME.XXXXXXXX.PID.tmp``, behind; the next successful write of the same
    target removes those whose process is gone (on POSIX).

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
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}.tmp", dir=folder)
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
    _remove_orphans(folder, target.name)


def check_writable(folder: str | os.PathLike, what: str = "folder") -> Path:
    """Create ``folder`` if needed and prove a file can be made in it; raise WriteError if not.

    For work that writes its outputs only at the end (or after the first epoch): fail before it.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise WriteError(f"cannot write to the {what} {folder}: {e.strerror or e}; choose a writable one") from e
    return folder


def _remove_orphans(folder: Path, name: str) -> None:
    """Remove the temporary files of ``name`` left by processes that no longer run."""
    if os.name != "posix":  # os.kill(pid, 0) only asks on POSIX; elsewhere it would terminate
        return
    pattern = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.([0-9]+)\.tmp")
    with contextlib.suppress(OSError):
        for path in folder.glob(f".{glob.escape(name)}.*.tmp"):
            match = pattern.fullmatch(path.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    path.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process (or not a pid): leave it
        return True
    return True
