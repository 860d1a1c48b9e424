"""Safe file writing shared by every writer: atomic, never overwriting by surprise.

Every file xdl4 writes goes through :func:`atomic_write` (one file) or :func:`write_all`
(a set of files that belong together: OGIP PHA/ARF/RMF/BKG, a datasets index and its
files). The content is written to a temporary file beside the target, named
``.{name}.xdl4-tmp-{random}`` (``name`` shortened so that the whole name fits in 255
bytes), flushed to disk, given its final mode and then committed:

* without ``overwrite``: an atomic create that fails if the target exists
  (``renameat2(RENAME_NOREPLACE)`` where the kernel and file system offer it, else a hard
  link ``os.link(tmp, path)``, else an exclusive placeholder replaced in one rename), so
  two processes writing the same path never both succeed;
* with ``overwrite``: ``os.replace``, keeping the mode of the replaced file.

New files get the mode ``0o666 & ~umask`` like any ``open(path, "w")``. A failed or
interrupted write (any exception, ^C included) removes its temporary; a killed process
(SIGKILL, power loss) can leave one behind: :func:`remove_stale_temporaries` removes them
and every write removes the stale temporaries (older than a day) of its own target.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = atomic_write(os.path.join(folder, "a.txt"), lambda tmp: tmp.write_text("hi"))
>>> path.read_text(), oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
('hi', True)
>>> atomic_write(path, lambda tmp: tmp.write_text("again"))
Traceback (most recent call last):
...
xdl4.errors.DL4FileExistsError: ... exists; pass overwrite=True to replace it
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from xdl4.errors import DL4FileExistsError, DL4FileNotFoundError, FormatError

TMP_TAG = ".xdl4-tmp-"
BAK_TAG = ".xdl4-bak-"
#: a temporary older than this (seconds) belongs to a killed write
STALE_AFTER = 86400.0
NAME_MAX = 255
#: flush every written file to disk before committing it (a power loss never leaves an
#: empty file behind a "successful" write); False trades that for speed on slow storage
FSYNC = True

Writer = Callable[[Path], object]


# --------------------------------------------------------------------------------------
# checks

def check_readable(path: str | os.PathLike) -> Path:
    """``path`` as a Path; raises :class:`~xdl4.DL4FileNotFoundError` if it does not exist
    and :class:`~xdl4.FormatError` if it is not a file (a folder, say)."""
    path = Path(path)
    if not path.is_file():
        if not path.exists():
            raise DL4FileNotFoundError(f"{path}: file not found")
        raise FormatError(f"{path.name}: not a file")
    return path


def check_overwrite(path: str | os.PathLike, overwrite: bool) -> Path:
    """``path`` as a Path; raises if it exists (without ``overwrite``) or if its folder
    does not exist. A cheap early check: the commit itself is atomic."""
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise _exists(path)
    if not path.parent.is_dir():
        raise DL4FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    return path


def _exists(path: Path) -> DL4FileExistsError:
    return DL4FileExistsError(f"{path} exists; pass overwrite=True to replace it")


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # not thread-safe, but only where /proc is missing
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------
# temporaries


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def temporary_name(path: Path, tag: str = TMP_TAG) -> Path:
    """A fresh name ``.{name}{tag}{random}`` beside ``path``, the name cut (at a character
    boundary) so that the result fits the folder's file-name limit."""
    suffix = f"{tag}{secrets.token_hex(4)}"
    limit = min(_name_max(path.parent), NAME_MAX) - 1 - len(suffix.encode())
    name = path.name.encode()[:limit].decode(errors="ignore")
    return path.with_name(f".{name}{suffix}")


def _create_temporary(path: Path, tag: str = TMP_TAG) -> Path:
    for _ in range(100):
        tmp = temporary_name(path, tag)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def _is_temporary_of(entry: str, path: Path) -> bool:
    if TMP_TAG not in entry and BAK_TAG not in entry:
        return False
    stem = entry.rsplit(TMP_TAG if TMP_TAG in entry else BAK_TAG, 1)[0]
    return stem.startswith(".") and path.name.startswith(stem[1:]) and len(stem) > 1


def remove_stale_temporaries(folder: str | os.PathLike, older_than: float = STALE_AFTER,
                             target: str | os.PathLike | None = None) -> list[Path]:
    """Remove the temporaries (``*.xdl4-tmp-*``, ``*.xdl4-bak-*``) that killed writes left
    in ``folder`` (only those of ``target`` if given) and that are older than
    ``older_than`` seconds; returns the removed paths.

    >>> import tempfile
    >>> remove_stale_temporaries(tempfile.mkdtemp())
    []
    """
    folder = Path(folder)
    now = time.time()
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if target is not None:
            if not _is_temporary_of(name, Path(target)):
                continue
        elif not (name.startswith(".") and (TMP_TAG in name or BAK_TAG in name)):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# --------------------------------------------------------------------------------------
# commits


def _load_renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                     ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_RENAMEAT2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM,
                errno.EXDEV, errno.EMLINK}


def _rename_noreplace(tmp: Path, path: Path) -> bool:
    """renameat2(RENAME_NOREPLACE); False when unavailable here (then use a link)."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(path),
                  _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise _exists(path)
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), os.fspath(path))


def _link_noreplace(tmp: Path, path: Path) -> None:
    """Create ``path`` from ``tmp`` atomically, failing if it exists: a hard link (then
    the temporary is removed), or where links are not supported an exclusive placeholder
    that the temporary replaces."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as err:
        if err.errno not in _UNSUPPORTED:
            raise
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            raise _exists(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def commit(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished temporary onto ``path`` (atomically; never replacing an existing
    file unless ``overwrite``)."""
    if overwrite:
        os.replace(tmp, path)
    elif not _rename_noreplace(tmp, path):
        _link_noreplace(tmp, path)


def _final_mode(path: Path, overwrite: bool) -> int:
    if overwrite:
        with contextlib.suppress(FileNotFoundError):
            return os.stat(path).st_mode & 0o7777
    return 0o666 & ~_umask()


def _prepare(path: Path, tmp: Path, overwrite: bool) -> None:
    """Flush the finished temporary to disk and give it the mode the target will have."""
    if FSYNC:
        _fsync(tmp)
    os.chmod(tmp, _final_mode(path, overwrite))


# --------------------------------------------------------------------------------------
# one file


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, commit it onto
    ``path``. Nothing is left behind on failure."""
    path = check_overwrite(path, overwrite)
    remove_stale_temporaries(path.parent, target=path)
    tmp = _create_temporary(path)
    try:
        yield tmp
        _prepare(path, tmp, overwrite)
        commit(tmp, path, overwrite)
    finally:
        _unlink(tmp)


def atomic_write(path: str | os.PathLike, write: Writer, overwrite: bool = False) -> Path:
    """Call ``write(tmp_path)`` and commit the result onto ``path`` atomically."""
    with atomic_path(path, overwrite) as tmp:
        write(tmp)
    return Path(path)


# --------------------------------------------------------------------------------------
# several files, all or nothing


def write_all(items: Sequence[tuple[str | os.PathLike, Writer]],
              overwrite: bool = False) -> list[Path]:
    """Write a set of files that belong together, all or nothing.

    Every target is checked first, every file is written to its temporary, then all are
    committed; if any step fails, the files already committed are removed (or, when
    overwriting, the previous files put back) and every temporary is deleted.

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> open(os.path.join(d, "b.txt"), "w").close()
    >>> write_all([(os.path.join(d, n), lambda t: t.write_text(n)) for n in ("a.txt", "b.txt")])
    Traceback (most recent call last):
    ...
    xdl4.errors.DL4FileExistsError: ... exists; pass overwrite=True to replace it
    >>> sorted(os.listdir(d))
    ['b.txt']
    """
    paths = [check_overwrite(p, overwrite) for p, _ in items]
    if len({os.path.abspath(p) for p in paths}) != len(paths):
        raise FormatError(f"write_all: a path is given twice: {[str(p) for p in paths]}")
    tmps: list[Path] = []
    committed: list[tuple[Path, Path | None]] = []  # (target, backup of the old file)
    try:
        for path, (_, write) in zip(paths, items, strict=True):
            remove_stale_temporaries(path.parent, target=path)
            tmps.append(_create_temporary(path))
            write(tmps[-1])
            _prepare(path, tmps[-1], overwrite)
        for path, tmp in zip(paths, tmps, strict=True):
            backup = _backup(path) if overwrite else None
            try:
                commit(tmp, path, overwrite)
            except BaseException:
                _unlink(backup)
                raise
            committed.append((path, backup))
    except BaseException:
        for path, backup in reversed(committed):
            if backup is not None:
                os.replace(backup, path)
            else:
                _unlink(path)
        for tmp in tmps:
            _unlink(tmp)
        raise
    for _, backup in committed:
        _unlink(backup)
    return paths


def _backup(path: Path) -> Path | None:
    """A hard link to the file about to be replaced (None if there is none), so that a
    failed set of writes can put it back."""
    if not os.path.lexists(path):
        return None
    backup = temporary_name(path, BAK_TAG)
    try:
        os.link(path, backup)
    except OSError as err:
        if err.errno not in _UNSUPPORTED:
            raise
        import shutil

        shutil.copy2(path, backup)
    return backup
