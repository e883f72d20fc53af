import os
import pickle

import numpy as np
import pytest

from mmlesion.utils.safe_pickle import UnsafePickleError, load_pickle


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_loads_numpy_payload_protocol_2_and_5(tmp_path):
    obj = {'001344_01_01_012-024': {6: [[np.float64(1.5), 2.0, 3.0, 4.0, 6.0, 6.0]]},
           'arr': np.arange(6, dtype=np.float64).reshape(2, 3)}
    for protocol in (2, 5):
        path = tmp_path / f'p{protocol}.pkl'
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        loaded = load_pickle(path)
        assert loaded['001344_01_01_012-024'][6][0][0] == 1.5
        np.testing.assert_array_equal(loaded['arr'], obj['arr'])


def test_numpy1_module_name_is_mapped():
    data = pickle.dumps(np.float64(2.5), protocol=2)
    data = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'numpy.core.multiarray' in data
    assert load_pickle(data) == 2.5


def test_refuses_other_globals(tmp_path):
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'x': _Evil()}))
    with pytest.raises(UnsafePickleError, match='posix.system|os.system'):
        load_pickle(path)


def test_real_release_loads(shared_data_dir):
    data = load_pickle(shared_data_dir / 'lesion_harvester' / 'Revised-Train100.pkl')
    assert len(data) == 100
