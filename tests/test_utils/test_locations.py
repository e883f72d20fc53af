"""Where data and configs are found: environment variables, the working directory, the package."""
import os

import pytest

from mmlesion.utils import locations
from mmlesion.utils.locations import (
    cache_dir,
    find_real_ct_dir,
    packaged_configs_dir,
    real_ct_candidates,
    resolve_config,
)

ENV = ('MMLESION_REAL_CT_DIR', 'MMLESION_SHARED_DATA', 'MMLESION_CACHE_DIR', 'XDG_CACHE_HOME')


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No mmlesion variable set, HOME and the working directory in an empty temporary folder."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    work = tmp_path / 'work' / 'repo'
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


def _real_ct(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'lung1_image.nrrd').write_bytes(b'')
    return str(folder)


def test_cache_dir_order(clean_env, monkeypatch):
    assert cache_dir() == str(clean_env / 'home' / '.cache' / 'mmlesion')
    monkeypatch.setenv('XDG_CACHE_HOME', str(clean_env / 'xdg'))
    assert cache_dir() == str(clean_env / 'xdg' / 'mmlesion')
    monkeypatch.setenv('MMLESION_CACHE_DIR', str(clean_env / 'mine'))
    assert cache_dir() == str(clean_env / 'mine')


def test_find_real_ct_dir_order(clean_env, monkeypatch):
    tmp = clean_env
    with pytest.raises(FileNotFoundError, match='MMLESION_REAL_CT_DIR') as err:
        find_real_ct_dir()
    # every place is named, the last one relative to the working directory (not to the package)
    assert str(tmp / 'work' / 'shared' / 'data' / 'real_ct') in str(err.value)
    beside = _real_ct(tmp / 'work' / 'shared' / 'data' / 'real_ct')
    assert find_real_ct_dir() == beside
    cached = _real_ct(tmp / 'home' / '.cache' / 'mmlesion' / 'real_ct')
    assert find_real_ct_dir() == cached
    shared = _real_ct(tmp / 'shared' / 'real_ct')
    monkeypatch.setenv('MMLESION_SHARED_DATA', str(tmp / 'shared'))
    assert find_real_ct_dir() == shared
    direct = _real_ct(tmp / 'direct')
    monkeypatch.setenv('MMLESION_REAL_CT_DIR', direct)
    assert find_real_ct_dir() == direct
    assert real_ct_candidates()[:3] == [direct, shared, cached]
    explicit = _real_ct(tmp / 'explicit')
    assert find_real_ct_dir(explicit) == explicit
    with pytest.raises(FileNotFoundError, match='lung1_image.nrrd'):
        find_real_ct_dir(str(tmp / 'empty'))


def test_real_ct_search_order_is_pinned(clean_env, monkeypatch):
    """$MMLESION_REAL_CT_DIR, $MMLESION_SHARED_DATA/real_ct, <cache>/real_ct (where
    tools/fetch_real_ct.py writes), ../shared/data/real_ct beside the working directory."""
    tmp = clean_env
    cache = str(tmp / 'home' / '.cache' / 'mmlesion' / 'real_ct')
    beside = str(tmp / 'work' / 'shared' / 'data' / 'real_ct')
    assert real_ct_candidates() == [cache, beside]
    monkeypatch.setenv('MMLESION_CACHE_DIR', str(tmp / 'c'))
    monkeypatch.setenv('MMLESION_SHARED_DATA', str(tmp / 'shared'))
    monkeypatch.setenv('MMLESION_REAL_CT_DIR', str(tmp / 'direct'))
    assert real_ct_candidates() == [str(tmp / 'direct'), str(tmp / 'shared' / 'real_ct'),
                                    str(tmp / 'c' / 'real_ct'), beside]
    from mmlesion.cli.fetch_real_ct import default_dest
    assert default_dest() == str(tmp / 'c' / 'real_ct')
    with pytest.raises(FileNotFoundError, match='tools/fetch_real_ct.py'):
        find_real_ct_dir()


def test_resolve_config_prefers_the_path_then_the_packaged_copy(clean_env, monkeypatch):
    tmp = clean_env
    packaged = tmp / 'pkg' / '.mim' / 'configs'
    (packaged / 'synthetic').mkdir(parents=True)
    (packaged / 'synthetic' / 'a.py').write_text('x = 1\n')
    monkeypatch.setattr(locations, 'packaged_configs_dir', lambda: str(packaged))
    want = str(packaged / 'synthetic' / 'a.py')
    assert resolve_config('configs/synthetic/a.py') == want
    assert resolve_config('synthetic/a.py') == want
    local = tmp / 'work' / 'repo' / 'configs' / 'synthetic'
    local.mkdir(parents=True)
    (local / 'a.py').write_text('x = 2\n')
    assert resolve_config('configs/synthetic/a.py') == 'configs/synthetic/a.py'
    with pytest.raises(FileNotFoundError, match='b.py'):
        resolve_config('configs/synthetic/b.py')
    with pytest.raises(FileNotFoundError):
        resolve_config('../configs/synthetic/a.py')


def test_packaged_configs_dir_is_inside_the_package():
    import mmlesion
    assert packaged_configs_dir() == os.path.join(os.path.dirname(mmlesion.__file__), '.mim',
                                                  'configs')
