"""``tools/fetch_real_ct.py``: put the two real chest CTs where mmlesion looks for them.

    tools/fetch_real_ct.py                    # download (pyradiomics' public test data)
    tools/fetch_real_ct.py --from DIR         # copy a local folder of the four files
    tools/fetch_real_ct.py --if-available     # make demo: copy a known local folder, never download

The four files (``lung1_image.nrrd``, ``lung1_label.nrrd``, ``lung2_image.nrrd``,
``lung2_label.nrrd``: the pyradiomics 3.0.1 test cases, BSD-3-Clause, 30 MB in all) go to
``<cache>/real_ct``, one of the folders :func:`mmlesion.utils.locations.find_real_ct_dir` searches
(``<cache>``: ``--cache``, else :func:`mmlesion.utils.locations.cache_dir`).  Every file is checked
against the SHA-256 pinned in :data:`REAL_CT_SHA256` while it is written to a temporary file beside
its final name, and renamed onto that name only when the hash matches: a wrong or truncated file,
or an interrupted copy or download, leaves neither the file nor a temporary file behind.  Files
already there with the pinned hash are kept.  ``lung1_image.nrrd``, the file the search tests
for, is written last, so an interrupted run never leaves a folder that looks complete.

Downloads use :mod:`urllib` (any URL it opens, ``file://`` included) from ``--url-base``: the
files are ``<url-base>/<name>``; the default is where pyradiomics' own ``getTestCase`` gets them.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import BinaryIO, Dict, List, Optional

from mmlesion.utils.fileio import atomic_open, file_sha256
from mmlesion.utils.locations import (
    REAL_CT_FILES,
    SHARED_DATA_BESIDE_CWD,
    cache_dir,
    find_real_ct_dir,
)

TOOL = 'tools/fetch_real_ct.py'
# pyradiomics' getTestCase downloads its test cases from this release (radiomics/__init__.py)
DEFAULT_URL_BASE = 'https://github.com/AIM-Harvard/pyradiomics/releases/download/v1.0'
# a local folder holding the four files, for --if-available (make demo)
ENV_REAL_CT_SOURCE = 'MMLESION_REAL_CT_SOURCE'
# SHA-256 of each file, computed from the copies in shared/data/real_ct
REAL_CT_SHA256: Dict[str, str] = {
    'lung1_image.nrrd': '379fa48bf34cfa961e6f5ec19c0c38757a30b9aa884212ef28dc29b5061c64ed',
    'lung1_label.nrrd': 'e9d9a88054d7bc1d3034193ff907ce6b8c6ba28a7bc3a16f23728982d1b6b50a',
    'lung2_image.nrrd': 'aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651',
    'lung2_label.nrrd': 'cef52738dc51aab69a48fe30639da956d2b911b1c2920439c091fab84727657a',
}
# the file find_real_ct_dir tests for comes last (module docstring)
FETCH_ORDER = tuple(n for n in REAL_CT_FILES if n != REAL_CT_FILES[0]) + (REAL_CT_FILES[0],)
CHUNK = 1 << 20
HOW_TO_FETCH = (f'{TOOL} (downloads the pyradiomics test data, 30 MB) or '
                f'{TOOL} --from DIR (copies a local folder of lung{{1,2}}_{{image,label}}.nrrd)')


class FetchError(Exception):
    """A file could not be fetched (missing, wrong hash, interrupted); nothing was left behind."""


def sha256_of(path: str) -> str:
    return file_sha256(path, CHUNK)


def default_dest(cache: Optional[str] = None) -> str:
    """``<cache>/real_ct``: ``cache`` or :func:`mmlesion.utils.locations.cache_dir`."""
    return osp.join(osp.abspath(osp.expanduser(cache)) if cache else cache_dir(), 'real_ct')


def _open_source(src: str) -> BinaryIO:
    """A readable binary stream of ``src``: a local path, or a URL urllib opens."""
    if '://' in src:
        return urllib.request.urlopen(src, timeout=60)
    return open(src, 'rb')


def fetch_file(name: str, src: str, dest_dir: str) -> int:
    """Copy ``src`` (path or URL) to ``dest_dir/name`` if its SHA-256 is the pinned one.

    Returns:
        the number of bytes written.

    Raises:
        FetchError: ``src`` cannot be read, is cut short, or has another hash; neither
            ``dest_dir/name`` nor a temporary file is left (an existing ``dest_dir/name`` is
            left as it was).
    """
    expected = REAL_CT_SHA256[name]
    dest = osp.join(dest_dir, name)
    h = hashlib.sha256()
    size = 0
    try:
        with atomic_open(dest, 'wb') as out:
            with _open_source(src) as stream:
                for chunk in iter(lambda: stream.read(CHUNK), b''):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            actual = h.hexdigest()
            if actual != expected:
                raise FetchError(
                    f'{name}: wrong SHA-256 (expected {expected}, got {actual} for the '
                    f'{size} bytes read from {src}); refused, nothing written to {dest}')
    except (OSError, HTTPException, urllib.error.URLError) as err:
        got = f'got {h.hexdigest()} for the {size} bytes read' if size else 'nothing read'
        raise FetchError(
            f'{name}: copying {src} failed after {size} bytes ({type(err).__name__}: {err}); '
            f'expected SHA-256 {expected}, {got}; nothing written to {dest}') from err
    return size


def fetch_real_ct(dest_dir: str, source: Optional[str] = None,
                  url_base: str = DEFAULT_URL_BASE, verbose: bool = True) -> dict:
    """Put the four real CT files into ``dest_dir``, each checked against :data:`REAL_CT_SHA256`.

    Args:
        dest_dir: the folder to fill (created if needed), normally :func:`default_dest`.
        source: a local folder holding the four files; None downloads from ``url_base``.
        url_base: ``<url_base>/<name>`` is each file's URL (``file://`` works too).
        verbose: print a line per file.

    Returns:
        ``dict(dest=dest_dir, fetched=[names], kept=[names], bytes=n)``.

    Raises:
        FetchError: a source file is missing (checked before anything is written), or has the
            wrong hash, or the copy or download failed; files already fetched stay.
    """
    def say(text):
        if verbose:
            print(f'[fetch_real_ct] {text}', flush=True)

    kept, todo = [], []
    for name in FETCH_ORDER:
        path = osp.join(dest_dir, name)
        if osp.isfile(path) and sha256_of(path) == REAL_CT_SHA256[name]:
            kept.append(name)
        else:
            if osp.lexists(path):
                say(f'{path} has another SHA-256 than the pinned one; replacing it')
            todo.append(name)
    if source is not None:
        missing = [n for n in todo if not osp.isfile(osp.join(source, n))]
        if missing:
            raise FetchError(f'{source} does not hold ' + ', '.join(missing)
                             + ' (expected ' + ', '.join(REAL_CT_FILES) + ')')
    if kept:
        say(f'already in {dest_dir} with the pinned SHA-256: ' + ', '.join(kept))
    total = 0
    for name in todo:
        src = osp.join(source, name) if source is not None \
            else url_base.rstrip('/') + '/' + name
        say(f'{name} <- {src}')
        total += fetch_file(name, src, dest_dir)
    if todo:
        say(f'wrote {len(todo)} file(s), {total / 1e6:.1f} MB, to {dest_dir} (SHA-256 checked; '
            'pyradiomics test data, BSD-3-Clause: cite pyradiomics)')
    return dict(dest=dest_dir, fetched=todo, kept=kept, bytes=total)


def local_source(given: Optional[str] = None) -> Optional[str]:
    """The local folder ``--if-available`` copies from: ``given``, else
    ``$MMLESION_REAL_CT_SOURCE``, else ``../shared/data/real_ct`` (relative to the working
    directory); None when that folder does not hold all four files."""
    if given is not None:
        cand = given
    elif os.environ.get(ENV_REAL_CT_SOURCE):
        cand = osp.expanduser(os.environ[ENV_REAL_CT_SOURCE])
    else:
        cand = osp.join(SHARED_DATA_BESIDE_CWD, 'real_ct')
    if all(osp.isfile(osp.join(cand, n)) for n in REAL_CT_FILES):
        return cand
    return None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Put the two real chest CTs (lung1, lung2: image + label NRRD, the '
        'pyradiomics test data) into <cache>/real_ct, where the demo and --anatomy real look '
        'for them; every file is checked against a pinned SHA-256.')
    where = parser.add_mutually_exclusive_group()
    where.add_argument('--from', dest='source', default=None, metavar='DIR',
                       help='copy from this local folder instead of downloading')
    where.add_argument('--url-base', default=DEFAULT_URL_BASE, metavar='URL',
                       help='download <URL>/<file name> (any URL urllib opens, file:// too; '
                       f'default {DEFAULT_URL_BASE})')
    parser.add_argument('--cache', default=None, metavar='DIR',
                        help='write to DIR/real_ct (default: mmlesion\'s cache, '
                        '$MMLESION_CACHE_DIR, else $XDG_CACHE_HOME/mmlesion, else '
                        '~/.cache/mmlesion)')
    parser.add_argument('--if-available', action='store_true',
                        help='offline and optional (make demo): do nothing when the real CT is '
                        'already found; else copy from --from DIR, else '
                        f'${ENV_REAL_CT_SOURCE}, else ../shared/data/real_ct, when that folder '
                        'holds the files; else say how to fetch them and exit 0; never downloads')
    parser.add_argument('--quiet', action='store_true', help='print nothing but errors')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Optional[dict]:
    """Run the CLI; returns :func:`fetch_real_ct`'s summary, or None when nothing was fetched
    (``--if-available``).  Exits with status 1 on a :class:`FetchError`."""
    args = parse_args(argv)
    dest = default_dest(args.cache)
    source = args.source
    if args.if_available:
        try:  # with --cache: that folder only; else wherever mmlesion looks
            found = find_real_ct_dir(dest if args.cache else None)
        except FileNotFoundError:
            found = None
        if found is not None:
            if not args.quiet:
                print(f'[fetch_real_ct] real CT found in {found}; nothing to fetch')
            return None
        source = local_source(args.source)
        if source is None:
            if not args.quiet:
                print('[fetch_real_ct] no local copy of the real CT (looked at '
                      + (args.source or f'${ENV_REAL_CT_SOURCE} and '
                         + osp.join(SHARED_DATA_BESIDE_CWD, 'real_ct'))
                      + f'); nothing fetched. To fetch them: {HOW_TO_FETCH}')
            return None
    try:
        summary = fetch_real_ct(dest, source, args.url_base, verbose=not args.quiet)
    except FetchError as err:
        print(f'error: {err}', file=sys.stderr)
        if source is None:
            print(f'  from a local copy: {TOOL} --from DIR; from another mirror: '
                  f'{TOOL} --url-base URL', file=sys.stderr)
        raise SystemExit(1) from None
    if not args.quiet and args.cache is not None and dest != default_dest():
        print(f'[fetch_real_ct] set MMLESION_CACHE_DIR={osp.dirname(dest)} (or '
              f'MMLESION_REAL_CT_DIR={dest}) so that mmlesion finds them there')
    return summary


if __name__ == '__main__':
    main()
