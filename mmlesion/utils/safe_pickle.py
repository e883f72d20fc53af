"""A restricted unpickler for the public DeepLesion annotation releases.

The Lesion Harvester and LENS pickles hold only dicts, lists, floats and numpy arrays.  Plain
``pickle.load`` on a user-supplied file runs whatever callable the file names (``os.system``...),
so every pickle mmlesion reads goes through :func:`load_pickle`, which resolves exactly the
globals these files need and refuses anything else.  numpy 2 renamed ``numpy.core`` to
``numpy._core``; files pickled by numpy 1 name the old module, files pickled by numpy 2 the new.
"""
import io
import os
import pickle
from typing import Any, Union

# (module, name) pairs that the releases reference; both numpy 1 and numpy 2 spellings.
_ALLOWED = {
    ('numpy', 'dtype'),
    ('numpy', 'ndarray'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('_codecs', 'encode'),
    # protocol >= 5 pickles of arrays (numpy >= 1.16) rebuild them from a raw buffer
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'),
    # protocol-2 pickles of lists/dicts of floats written by Python 2 name these builtins
    ('__builtin__', 'set'),
    ('builtins', 'set'),
    ('__builtin__', 'frozenset'),
    ('builtins', 'frozenset'),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):

    def __init__(self, file, source: str = '<pickle>'):
        super().__init__(file, encoding='latin1')
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f'{self.source}: refusing to load global {module}.{name}; annotation pickles may '
                'only reference numpy arrays/dtypes/scalars (allowed: '
                + ', '.join(sorted(f'{m}.{n}' for m, n in _ALLOWED)) + ')')
        if module.startswith('numpy.core.'):
            module = 'numpy._core.' + module[len('numpy.core.'):]
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            if module.startswith('numpy._core.'):  # numpy 1 installed
                return super().find_class('numpy.core.' + module[len('numpy._core.'):], name)
            raise


def load_pickle(path_or_bytes: Union[str, os.PathLike, bytes]) -> Any:
    """Load an annotation/detection pickle with the restricted unpickler.

    Args:
        path_or_bytes: a file path, or the pickle's bytes.

    Raises:
        UnsafePickleError: the pickle references a global outside the allow-list.
    """
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return RestrictedUnpickler(io.BytesIO(path_or_bytes), '<bytes>').load()
    path = os.fspath(path_or_bytes)
    with open(path, 'rb') as f:
        return RestrictedUnpickler(f, path).load()
