"""``tools/fetch_real_ct.py``: the real CT into ``<cache>/real_ct`` from a folder or a URL base,
SHA-256 checked, atomically.  Small fake files stand in for the 30 MB of NRRD (the pinned hashes
are patched to theirs); URLs are ``file://``, nothing touches the network."""
import hashlib
import os

import pytest

from mmlesion.cli import fetch_real_ct as fr
from mmlesion.utils.locations import REAL_CT_FILES, find_real_ct_dir, real_ct_candidates

ENV = ('MMLESION_REAL_CT_DIR', 'MMLESION_SHARED_DATA', 'MMLESION_CACHE_DIR', 'XDG_CACHE_HOME',
       'MMLESION_REAL_CT_SOURCE')


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Fake sources with their hashes pinned; cache, HOME and working directory in tmp_path."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('MMLESION_CACHE_DIR', str(tmp_path / 'cache'))
    work = tmp_path / 'work' / 'repo'
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    src = tmp_path / 'src'
    src.mkdir()
    pins = {}
    for i, name in enumerate(REAL_CT_FILES):
        data = f'NRRD0004 fake {name}\n'.encode() + bytes(range(256)) * (i + 1)
        (src / name).write_bytes(data)
        pins[name] = hashlib.sha256(data).hexdigest()
    monkeypatch.setattr(fr, 'REAL_CT_SHA256', pins)
    monkeypatch.setattr(fr, 'CHUNK', 64)  # several chunks per file
    return dict(src=src, dest=tmp_path / 'cache' / 'real_ct', pins=pins, tmp=tmp_path)


def _listing(folder):
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def _same_bytes(a, b):
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in REAL_CT_FILES)


def test_the_pins_are_sha256_of_the_four_files():
    assert set(fr.REAL_CT_SHA256) == set(REAL_CT_FILES) == set(fr.FETCH_ORDER)
    assert all(len(h) == 64 and set(h) <= set('0123456789abcdef')
               for h in fr.REAL_CT_SHA256.values())
    assert fr.FETCH_ORDER[-1] == REAL_CT_FILES[0]  # the file the search tests for comes last


def test_fetch_from_a_folder_is_found_then_kept(env, capsys):
    summary = fr.main(['--from', str(env['src'])])
    assert summary['fetched'] == list(fr.FETCH_ORDER) and summary['kept'] == []
    assert _listing(env['dest']) == sorted(REAL_CT_FILES)  # no temporary file left
    assert _same_bytes(env['src'], env['dest'])
    # the cache is where the demo looks
    assert str(env['dest']) in real_ct_candidates()
    assert find_real_ct_dir() == str(env['dest'])
    capsys.readouterr()
    summary = fr.main(['--from', str(env['src'])])
    assert summary['fetched'] == [] and summary['kept'] == list(fr.FETCH_ORDER)
    assert 'already in' in capsys.readouterr().out


def test_fetch_from_a_file_url_base(env):
    base = env['src'].as_uri()
    cache = env['tmp'] / 'other_cache'
    summary = fr.main(['--url-base', base + '/', '--cache', str(cache), '--quiet'])
    assert summary['dest'] == str(cache / 'real_ct')
    assert _listing(cache / 'real_ct') == sorted(REAL_CT_FILES)
    assert _same_bytes(env['src'], cache / 'real_ct')


def test_a_file_with_another_hash_is_refused_and_nothing_is_left(env, capsys):
    bad = bytearray((env['src'] / 'lung2_image.nrrd').read_bytes())
    bad[-1] ^= 1
    (env['src'] / 'lung2_image.nrrd').write_bytes(bytes(bad))
    with pytest.raises(SystemExit) as exc:
        fr.main(['--from', str(env['src'])])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert 'lung2_image.nrrd' in err and env['pins']['lung2_image.nrrd'] in err
    assert hashlib.sha256(bytes(bad)).hexdigest() in err
    # the files before it in FETCH_ORDER are there (checked), it and the marker file are not
    assert _listing(env['dest']) == ['lung1_label.nrrd']
    with pytest.raises(FileNotFoundError):
        find_real_ct_dir()


def test_a_truncated_download_is_refused(env, capsys):
    data = (env['src'] / 'lung1_label.nrrd').read_bytes()
    (env['src'] / 'lung1_label.nrrd').write_bytes(data[:-100])
    with pytest.raises(fr.FetchError, match='lung1_label.nrrd: wrong SHA-256') as err:
        fr.fetch_real_ct(str(env['dest']), url_base=env['src'].as_uri(), verbose=False)
    assert env['pins']['lung1_label.nrrd'] in str(err.value)
    assert _listing(env['dest']) == []


@pytest.mark.parametrize('error', [OSError('connection reset'), KeyboardInterrupt()])
def test_an_interrupted_copy_leaves_nothing(env, monkeypatch, error):
    real_open = fr._open_source

    class Breaks:
        """The source stream: the first chunk, then the error."""

        def __init__(self, src):
            self.f = real_open(src)
            self.reads = 0

        def read(self, n):
            self.reads += 1
            if self.reads > 1:
                raise error
            return self.f.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(fr, '_open_source', Breaks)
    dest = env['dest']
    dest.mkdir(parents=True)
    (dest / 'lung1_label.nrrd').write_bytes(b'an old, wrong copy')
    if isinstance(error, OSError):
        with pytest.raises(fr.FetchError) as err:
            fr.fetch_real_ct(str(dest), str(env['src']), verbose=False)
        text = str(err.value)
        assert text.startswith('lung1_label.nrrd: copying') and 'after 64 bytes' in text
        assert 'connection reset' in text and env['pins']['lung1_label.nrrd'] in text
    else:
        with pytest.raises(KeyboardInterrupt):
            fr.fetch_real_ct(str(dest), str(env['src']), verbose=False)
    # no temporary file; the file already there is left as it was
    assert _listing(dest) == ['lung1_label.nrrd']
    assert (dest / 'lung1_label.nrrd').read_bytes() == b'an old, wrong copy'


def test_a_missing_source_file_is_named_before_anything_is_written(env, capsys):
    (env['src'] / 'lung2_label.nrrd').unlink()
    with pytest.raises(SystemExit):
        fr.main(['--from', str(env['src'])])
    assert 'does not hold lung2_label.nrrd' in capsys.readouterr().err
    assert _listing(env['dest']) == []
    with pytest.raises(SystemExit):
        fr.main(['--url-base', (env['tmp'] / 'nowhere').as_uri()])
    err = capsys.readouterr().err
    assert 'lung1_label.nrrd: copying file://' in err and 'nothing read' in err
    assert 'tools/fetch_real_ct.py --from DIR' in err  # the way without a network
    assert _listing(env['dest']) == []


def test_if_available_copies_a_known_local_copy_and_never_downloads(env, monkeypatch, capsys):
    fetch_file = fr.fetch_file

    def no_network(name, src, dest_dir):
        raise AssertionError(f'--if-available opened {src}')

    # no local copy: nothing happens, the message says how to fetch them, exit status 0
    monkeypatch.setattr(fr, 'fetch_file', no_network)
    assert fr.main(['--if-available']) is None
    out = capsys.readouterr().out
    assert 'no local copy' in out and 'tools/fetch_real_ct.py --from DIR' in out
    assert fr.main(['--if-available', '--from', str(env['tmp'] / 'absent')]) is None
    assert not env['dest'].exists()
    monkeypatch.setattr(fr, 'fetch_file', fetch_file)
    # $MMLESION_REAL_CT_SOURCE is a local copy: copied into the cache
    monkeypatch.setenv('MMLESION_REAL_CT_SOURCE', str(env['src']))
    summary = fr.main(['--if-available', '--quiet'])
    assert summary['fetched'] == list(fr.FETCH_ORDER)
    assert find_real_ct_dir() == str(env['dest'])
    # found now: nothing to do
    assert fr.main(['--if-available']) is None
    assert 'nothing to fetch' in capsys.readouterr().out


def test_if_available_uses_the_shared_folder_beside_the_working_directory(env, monkeypatch):
    beside = env['tmp'] / 'work' / 'shared' / 'data' / 'real_ct'
    beside.mkdir(parents=True)
    for name in REAL_CT_FILES:
        (beside / name).write_bytes((env['src'] / name).read_bytes())
    assert fr.local_source() == os.path.join('..', 'shared', 'data', 'real_ct')
    # ... which the search finds as it is, so there is nothing to copy
    assert fr.main(['--if-available']) is None
    assert not env['dest'].exists()
    # into another cache folder it is copied
    summary = fr.main(['--if-available', '--cache', str(env['tmp'] / 'c2'), '--quiet'])
    assert len(summary['fetched']) == 4
