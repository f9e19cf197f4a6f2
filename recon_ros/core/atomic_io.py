"""Atomic writes, the one home for them: readers (and a crash) see the old file or folder or the
complete new one, never a partial one. Results get the usual permissions (0666 / 0777 minus the
umask, so 0644 / 0755 by default), not the 0600 / 0700 of temporary files."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

#: Marker in the names of temporary folders of ``atomic_directory``.
TEMPORARY_DIRECTORY_TAG = ".recon-tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a temporary file in ``path``'s folder, flush it to disk, then
    ``os.replace`` it onto ``path`` (atomic on POSIX within one file system). The temporary file is
    removed if ``write`` fails. A symlink at ``path`` is replaced, never followed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (``atomic_write``)."""
    return atomic_write(path, lambda file: file.write(data))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (PIL, numpy);
    on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o666 & ~_umask())
        os.replace(temporary_path, path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; when the block succeeds it becomes
    ``path`` in one rename (an existing folder there is replaced: moved aside, then removed), so
    the files written together appear together or not at all. On error the temporary folder is
    removed; after a kill it stays behind, named with ``TEMPORARY_DIRECTORY_TAG``, for
    ``remove_stale_temporaries``.

    Raises:
        ValueError: ``path`` is a symlink or an existing file (never followed or overwritten).
    """
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link: refusing to write through it")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(
        tempfile.mkdtemp(prefix=f".{path.name}{TEMPORARY_DIRECTORY_TAG}", dir=path.parent)
    )
    try:
        yield temporary
        os.chmod(temporary, 0o777 & ~_umask())
        aside = None
        if path.exists():
            aside = Path(
                tempfile.mkdtemp(
                    prefix=f".{path.name}{TEMPORARY_DIRECTORY_TAG}old-", dir=path.parent
                )
            )
            os.replace(path, aside / path.name)
        os.replace(temporary, path)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def remove_stale_temporaries(folder: str | os.PathLike, older_than_s: float = 600.0) -> int:
    """Remove what interrupted ``atomic_directory`` and ``atomic_write`` calls left in ``folder``
    (temporary folders and ``.tmp`` files older than ``older_than_s``); returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - older_than_s
    for entry in folder.iterdir():
        name = entry.name
        ours = name.startswith(".") and (TEMPORARY_DIRECTORY_TAG in name or name.endswith(".tmp"))
        if not ours or entry.is_symlink():
            continue
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError:
            continue
    return removed
