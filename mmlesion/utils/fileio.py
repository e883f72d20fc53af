"""Atomic file writing: nothing already written is lost when a run is interrupted.

Every output of mmlesion (converted JSON, generated PNGs, pickles, figures) is written to a
temporary file in the destination folder and then renamed over the final name, so a reader
sees either the old complete file or the new complete file, never a truncated one.
"""
import hashlib
import json
import os
import pickle
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator, Union

PathLike = Union[str, os.PathLike]


@contextmanager
def atomic_open(path: PathLike, mode: str = 'wb') -> Iterator[Any]:
    """Open a temporary file next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open supports modes "w" and "wb", got {mode!r}')
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, mode, **({} if 'b' in mode else {'encoding': 'utf-8'})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_open(path, 'wb') as f:
        f.write(data)


def atomic_write_text(path: PathLike, text: str) -> None:
    with atomic_open(path, 'w') as f:
        f.write(text)


def atomic_dump_json(obj: Any, path: PathLike, indent: Union[int, None] = None) -> None:
    # json.dumps uses the C encoder; json.dump to a file falls back to the pure-Python one
    # (~4x slower)
    atomic_write_text(path, json.dumps(obj, indent=indent))


def atomic_dump_pickle(obj: Any, path: PathLike, protocol: int = 4) -> None:
    with atomic_open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=protocol)


def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex), read ``chunk`` bytes at a time."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()
