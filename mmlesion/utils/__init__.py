from .fileio import (
    atomic_dump_json,
    atomic_dump_pickle,
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    file_sha256,
)

__all__ = [
    'atomic_open', 'atomic_write_bytes', 'atomic_write_text', 'atomic_dump_json',
    'atomic_dump_pickle', 'file_sha256'
]
