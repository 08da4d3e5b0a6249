"""Writing outputs: never half-written, never over what is not a regular file, one writer at a time."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import WriteError

try:
    import fcntl
except ImportError:  # not POSIX: outputs are still atomic, but two writers are not kept apart
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_path", "check_replaceable", "check_writable", "exclusive_lock"]

log = logging.getLogger(__name__)
# What a temporary name adds after its prefix: mkstemp's 8 characters, ".PID" (10 digits covers
# every pid) and ".tmp". A prefix is shortened so that prefix + this fits the folder's limit.
_TEMP_TAIL = 8 + 1 + 10 + 4
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success, move it over ``target``.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic: readers
    see the old file or the new one, never a mix. On any error the old file stays as it was and
    the temporary file is removed. A process killed outright (SIGKILL, power loss) leaves its
    temporary file, ``.NAME.XXXXXXXX.PID.tmp``, behind; the next successful write of the same
    target removes those whose process is gone (on POSIX). A name too long for that pattern
    (the folder's name limit, 255 bytes on most file systems) gets ``.SHORTENED~HASH.`` as its
    prefix instead.

    Only a regular file (or nothing) is replaced: a folder, a device, a FIFO or a socket at
    ``target`` (or a link to one) raises WriteError and is left alone. The temporary file is
    also the lock of its target: it is held (``flock``) while the block runs, and a second
    writer of the same target, in this process or another, raises WriteError naming the pid of
    the first.

    >>> with atomic_path("/tmp/out.txt") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("done")
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    check_replaceable(target, overwrite=overwrite)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"cannot write to {folder}: {e.strerror or e}; choose a writable folder") from e
    prefix = _temp_prefix(folder, target.name)
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=f".{os.getpid()}.tmp", dir=folder)
    except OSError as e:
        raise WriteError(f"cannot write to {folder}: {e.strerror or e}; choose a writable folder") from e
    tmp = Path(name)
    if fcntl is None:  # no locks, and Windows cannot rename a file that is open
        os.close(fd)
        fd = None
    try:
        _lock(fd, blocking=True)  # a scanning writer may hold it shared for an instant
        other = _live_writer(folder, prefix, tmp.name)
        if other is not None:
            raise WriteError(f"{target} is being written by another process (pid {other}); "
                             "wait for it to finish or choose another path")
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        check_replaceable(target)  # again: the target may have been swapped while the work ran
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp, target)
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(
            f"could not write {target}: {e.strerror or e}; the previous file (if any) is untouched"
        ) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if fd is not None:
            os.close(fd)
    _remove_orphans(folder, prefix)


def check_replaceable(target: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Raise WriteError unless ``target`` is absent or a regular file (or a link to one) that may be replaced.

    A name longer than the folder allows is refused here too, with the limit, rather than as
    the operating system's "File name too long" halfway through the work.
    """
    target = Path(target)
    try:
        mode = os.stat(target).st_mode
    except OSError:  # absent, or a folder on the way is not one or cannot be entered: the write says so
        mode = None
    if mode is None:
        _check_name_length(target)
        return
    if stat.S_ISDIR(mode):
        raise WriteError(f"{target} is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise WriteError(f"{target} is {_kind(mode)}, not a regular file; rnnkit replaces only regular files: "
                         "give another path")
    if not overwrite:
        raise WriteError(f"{target} already exists; pass --force to replace it")


def check_writable(folder: str | os.PathLike, what: str = "folder") -> Path:
    """Create ``folder`` if needed and prove a file can be made in it; raise WriteError if not.

    For work that writes its outputs only at the end (or after the first epoch): fail before it.
    """
    folder = Path(folder)
    try:
        mode = os.stat(folder).st_mode
    except OSError:  # absent (made below), or a way to it that mkdir will report
        mode = stat.S_IFDIR
    if not stat.S_ISDIR(mode):
        raise WriteError(f"cannot write to the {what} {_shown(folder)}: it is {_kind(mode)}, not a folder; "
                         "choose another one")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise WriteError(f"cannot write to the {what} {_shown(folder)}: {e.strerror or e}; "
                         "choose a writable one") from e
    return folder


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, busy: str | Callable[[str], str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file ``path`` while the block runs.

    If another process (or another call in this one) holds it, raise ``WriteError`` with the
    message ``busy``: a function of the holder's pid (as text), or a text whose ``{pid}`` becomes
    it (nothing else in it is read: a path in the text may hold any braces). The operating system
    releases the lock when its process dies, however it dies, so a killed run never leaves its
    folder locked; the file itself is removed when the block ends (a killed holder leaves it, and
    the next lock reuses it).

    >>> with exclusive_lock("runs/a/.rnnkit.lock", "runs/a is in use (pid {pid})"):  # doctest: +SKIP
    ...     ...
    """
    path = Path(path)
    if fcntl is None:
        yield
        return
    while True:
        fd = _open_lock_file(path)
        try:
            _lock(fd, blocking=False)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = str(pid) if pid is not None else "unknown"
            raise WriteError(busy(holder) if callable(busy) else busy.replace("{pid}", holder)) from None
        except OSError as e:  # a file system without locks (some network mounts): go on without
            log.warning("cannot lock %s (%s): another writer would not be kept out", path, e.strerror or e)
            break
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        os.close(fd)  # the holder we waited for removed the file: lock the one there now
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass  # the pid is a courtesy for the message of a second writer
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                path.unlink()
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise WriteError(f"{path} is a symbolic link; a lock file must be a plain file: remove it") from e
        raise WriteError(f"cannot create the lock file {path}: {e.strerror or e}; choose a writable folder") from e
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:  # never truncate what is also another file
        os.close(fd)
        what = _kind(info.st_mode) if not stat.S_ISREG(info.st_mode) else "a file with other names (hard links)"
        raise WriteError(f"the lock file {path} is {what}, not rnnkit's: remove it")
    return fd


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip())
    return None


def _lock(fd: int | None, *, blocking: bool) -> None:
    if fcntl is not None and fd is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))


def _live_writer(folder: Path, prefix: str, mine: str) -> int | None:
    """The pid of another writer of the same target whose temporary file is locked, or None.

    Each writer locks its own temporary file before it looks at the others', so of two that
    overlap, the second to look always finds the first (both may refuse; neither mixes files).
    """
    pattern = _temp_pattern(prefix)
    with contextlib.suppress(OSError):
        for path in folder.glob(f"{glob.escape(prefix)}*.tmp"):
            match = pattern.fullmatch(path.name)
            if match and path.name != mine and _held(path):
                return int(match.group(1))
    return None


def _held(path: Path) -> bool:
    """True when another open file holds a lock on ``path`` (a writer at work)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False  # gone already, or not ours to open
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _temp_prefix(folder: Path, name: str) -> str:
    """``.NAME.``, or ``.SHORTENED~HASH.`` when ``.NAME.XXXXXXXX.PID.tmp`` would exceed the folder's name limit."""
    limit = _name_max(folder)
    prefix = f".{name}."
    if len(os.fsencode(prefix)) + _TEMP_TAIL <= limit:
        return prefix
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    budget = limit - _TEMP_TAIL - len(f"..~{digest}")
    cut = name
    while len(os.fsencode(cut)) > budget:
        cut = cut[:-1]
    return f".{cut}~{digest}."


def _temp_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)}[a-z0-9_]{{8}}\.([0-9]+)\.tmp")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not POSIX, or the folder cannot say
        return 255


def _check_name_length(target: Path) -> None:
    folder = target.parent if str(target.parent) else Path(".")
    limit = _name_max(folder) if os.path.isdir(folder) else 255
    size = len(os.fsencode(target.name))
    if size > limit:
        raise WriteError(f"the file name {_shown(Path(target.name))} is {size} bytes long, more than the "
                         f"{limit} this file system allows; choose a shorter name")


def _shown(path: Path, keep: int = 160) -> str:
    """``path`` as text, its middle elided when it is very long (so a message stays one short line)."""
    text = str(path)
    return text if len(text) <= keep else f"{text[: keep // 2]}…{text[-keep // 2 :]}"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _remove_orphans(folder: Path, prefix: str) -> None:
    """Remove the temporary files of ``prefix`` left by processes that no longer run."""
    if os.name != "posix":  # os.kill(pid, 0) only asks on POSIX; elsewhere it would terminate
        return
    pattern = _temp_pattern(prefix)
    with contextlib.suppress(OSError):
        for path in folder.glob(f"{glob.escape(prefix)}*.tmp"):
            match = pattern.fullmatch(path.name)
            if match and not _alive(int(match.group(1))) and not _held(path):
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
