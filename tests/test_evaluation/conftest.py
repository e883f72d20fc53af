"""Fixtures: the hand-made annotation set of ``annotation_case.py`` written as files."""
import json

import pytest
from annotation_case import make_coco, make_lh2d

from mmlesion.utils.fileio import atomic_dump_pickle


@pytest.fixture
def coco_file(tmp_path):
    path = tmp_path / 'set.json'
    path.write_text(json.dumps(make_coco()))
    return str(path)


@pytest.fixture
def lh2d_file(tmp_path):
    path = tmp_path / 'Revised-Set.pkl'
    atomic_dump_pickle(make_lh2d(), path, protocol=2)
    return str(path)
