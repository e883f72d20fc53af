import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_data():
    """The real annotation releases: $MMLESION_SHARED_DATA, else ../shared/data beside the repo."""
    env = os.environ.get('MMLESION_SHARED_DATA')
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / 'shared' / 'data')
    for c in candidates:
        if (c / 'lesion_harvester').is_dir():
            return c
    return None


@pytest.fixture(scope='session')
def shared_data_dir():
    path = find_shared_data()
    if path is None:
        pytest.skip('real DeepLesion annotation releases not found: set MMLESION_SHARED_DATA or place '
                    'them at ../shared/data beside the repository')
    return path
