import json
import os

import pytest

from mmlesion.utils import atomic_dump_json, atomic_open, atomic_write_text


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / 'sub' / 'a.json'
    atomic_dump_json({'a': 1}, path)
    assert json.loads(path.read_text()) == {'a': 1}
    atomic_dump_json({'b': 2}, path)
    assert json.loads(path.read_text()) == {'b': 2}
    assert os.listdir(path.parent) == ['a.json']  # no temporary left behind


def test_failed_write_keeps_previous_content(tmp_path):
    path = tmp_path / 'out.txt'
    atomic_write_text(path, 'complete')
    with pytest.raises(RuntimeError):
        with atomic_open(path, 'w') as f:
            f.write('half-writ')
            raise RuntimeError('interrupted')
    assert path.read_text() == 'complete'
    assert os.listdir(tmp_path) == ['out.txt']


def test_rejects_append_mode(tmp_path):
    with pytest.raises(ValueError, match='modes'):
        with atomic_open(tmp_path / 'x', 'a'):
            pass
