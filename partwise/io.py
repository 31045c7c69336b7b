"""Atomic file and directory writes: an interrupted write never leaves a half-written result.

Directory swap (:func:`atomic_dir`): the new content is built in a temporary directory ``.NAME.XXXX.tmp`` beside
``NAME``, then swapped in.

* Where the system has it (Linux ``renameat2(RENAME_EXCHANGE)``, on local file systems), the two directories are
  exchanged in one atomic step: at every instant ``NAME`` is either the complete old or the complete new directory.
  The old one is then renamed to ``.NAME.old.PID`` and deleted.
* Elsewhere it takes two renames (``NAME`` -> ``.NAME.old.PID``, then the temporary directory -> ``NAME``). A kill
  between them leaves no ``NAME``, only the backup; :func:`recover_dir` (called by :func:`atomic_dir` and by the
  readers of such directories, e.g. the person store) renames the backup back, so the next command finds the old
  directory.

Backups ``.NAME.old.*`` beside an existing ``NAME`` are leftovers of a swap killed while deleting the old copy; the
next :func:`atomic_dir` on ``NAME`` deletes them. A kill while the new content is being built (or right after an
exchange) leaves a ``.NAME.XXXX.tmp`` directory: nothing reads it, and it is not deleted automatically (it could be
another writer's work in progress). One writer per directory at a time.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

from partwise.errors import PartwiseError


class OutputExistsError(PartwiseError, FileExistsError):
    """The output folder exists and is not empty; pass ``overwrite`` (``--overwrite``) to replace it."""


class InterruptedSwapError(PartwiseError, FileNotFoundError):
    """A directory is missing and several backups of interrupted swaps lie beside it: which one to keep is unclear."""


def safe_name(value: str, option: str, *, folders: bool = False) -> str:
    """A user-given name that becomes a path inside an output folder (``--split``, ``--template``): a relative path
    that stays inside the folder -- no absolute path, no ``..`` component, no NUL. :class:`ConfigError` naming the
    option otherwise. ``folders``: sub-folders (``a/b``) allowed, else one plain name. The one path-safety check for
    such names."""
    from partwise.errors import ConfigError

    parts = value.replace("\\", "/").split("/")
    if (not value or "\0" in value or value.startswith("/") or os.path.isabs(value) or ".." in parts
            or any(p in ("", ".") for p in parts) or (len(parts) > 1 and not folders)):
        raise ConfigError(f"{option} {value!r}: must be a plain relative name inside the output folder "
                          "(no '..', no absolute path{'' if folders else ', no /'})")
    return value


def present_file(path: str | os.PathLike) -> bool:
    """Whether the input file ``path`` is there: False when nothing is at that name, True for a readable regular
    file (or a link to one); :class:`partwise.errors.InputError` naming it when something else is there -- a
    folder, a dangling link, a link loop -- so that a broken file is reported, never silently skipped."""
    from partwise.errors import InputError

    if not os.path.lexists(path):
        return False
    try:
        os.stat(path)
    except OSError as exc:
        reason = "a dangling symbolic link" if exc.errno == errno.ENOENT else (exc.strerror or str(exc))
        raise InputError(path, None, f"cannot read: {reason}") from None
    if not os.path.isfile(path):
        raise InputError(path, None, "cannot read: not a regular file (a folder?)")
    return True


def check_output(path: str | os.PathLike, kind: str = "dir") -> Path:
    """The one output-path check: ``path`` can be written as a ``kind`` (``"dir"`` or ``"file"``).

    Refuses (:class:`ConfigError` naming the path) a symlink (dangling, a loop, or anywhere), a file where a folder
    is written or a folder where a file is written, and a parent that is not a folder."""
    from partwise.errors import ConfigError

    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"{path}: the output path is a symbolic link; give a plain path")
    if kind == "dir" and os.path.lexists(path) and not path.is_dir():
        raise ConfigError(f"{path}: the output path exists and is not a folder")
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{path}: the output path is a folder, expected a file")
    for parent in path.absolute().parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise ConfigError(f"{path}: {parent} is not a folder")
            break
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else newline) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _backups(path: Path) -> list[Path]:
    """The ``.NAME.old.*`` backups of swaps of ``path``, sorted by name."""
    prefix = f".{path.name}.old."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return sorted(path.parent / name for name in names if name.startswith(prefix))


def recover_dir(path: str | os.PathLike) -> bool:
    """Undo a directory swap of :func:`atomic_dir` killed between its two renames; True if it did.

    When ``path`` does not exist and exactly one backup ``.NAME.old.PID`` (a directory) lies beside it, the backup
    is renamed back to ``path``. With several backups and no ``path`` it raises :class:`InterruptedSwapError`
    naming them (which one is newest cannot be told reliably). Otherwise it does nothing.
    """
    path = Path(path)
    if os.path.lexists(path):
        return False
    backups = [b for b in _backups(path) if b.is_dir() and not b.is_symlink()]
    if not backups:
        return False
    if len(backups) > 1:
        names = ", ".join(b.name for b in backups)
        raise InterruptedSwapError(f"{path}: missing, and interrupted swaps left {len(backups)} copies beside it "
                                   f"({names}); rename the one to keep to {path.name}")
    try:
        os.rename(backups[0], path)
    except FileNotFoundError:  # another process recovered it first
        return os.path.isdir(path)
    except OSError:
        if not os.path.isdir(path):
            raise
        return False
    return True


def _remove(path: Path) -> None:
    """Delete a file, a symbolic link or a directory tree; errors ignored (it is garbage)."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


#: ``renameat2`` from the C library, or None where there is none (set on first use)
_RENAMEAT2: list = []
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange the names ``a`` and ``b`` (both must exist); False where the system cannot."""
    if not _RENAMEAT2:
        function = None
        try:
            function = ctypes.CDLL(None, use_errno=True).renameat2
            function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            function.restype = ctypes.c_int
        except (AttributeError, OSError, TypeError):
            function = None
        _RENAMEAT2.append(function)
    function = _RENAMEAT2[0]
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False  # this kernel or file system has no exchange
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _swap_in(tmp: Path, path: Path) -> None:
    """Put the directory ``tmp`` in place of the existing ``path`` and delete the old one (see the module docstring)."""
    old = path.with_name(f".{path.name}.old.{os.getpid()}")
    if old.exists() or old.is_symlink():
        _remove(old)
    if _exchange(tmp, path):
        # the new directory is in place; ``tmp`` holds the old one: named as a backup, a kill while deleting it
        # leaves something the next atomic_dir deletes
        garbage = tmp
        with contextlib.suppress(OSError):
            os.replace(tmp, old)
            garbage = old
    else:
        os.replace(path, old)
        try:
            os.replace(tmp, path)  # a kill before this line is undone by recover_dir
        except BaseException:
            with contextlib.suppress(OSError):
                os.replace(old, path)
            raise
        garbage = old
    _remove(garbage)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``.

    With ``overwrite=False`` an existing non-empty ``path`` is an error (:class:`OutputExistsError`, a
    ``FileExistsError`` the CLI reports as one line).
    On any exception the temporary directory is removed and ``path`` is left as it was. A kill at any point leaves
    ``path`` complete, old or new, or (on systems without an atomic exchange, between the two renames) a backup
    that :func:`recover_dir` -- called here on entry -- puts back; see the module docstring.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    if path.exists():
        for backup in _backups(path):  # leftovers of swaps killed after the new directory was in place
            _remove(backup)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(f"{path}: exists and is not empty (use --overwrite to replace it)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists() or path.is_symlink():
            _swap_in(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
