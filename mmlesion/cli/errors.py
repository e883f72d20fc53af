"""Errors of the command-line tools lead with the fix.

An error a user can fix (an untrusted checkpoint, a volume without pixel spacing, a missing
image folder or file) prints a few lines on stderr: what is wrong, then what to run; the tool
exits with status 1.  The traceback is printed only with ``--debug`` (then the exception
propagates as it is).  Any other exception is a bug or something unforeseen: its traceback is
printed as usual.

    with short_errors(args.debug, tool='tools/test.py', checkpoint=args.checkpoint):
        ...
"""
import contextlib
import os.path as osp
import re
import sys
from typing import Iterator, Optional

__all__ = ['CLIError', 'DEBUG_HELP', 'add_debug_argument', 'explain', 'short_errors',
           'check_image_folder']

DEBUG_HELP = ('on an error, print the full traceback (default: a short message saying what is '
              'wrong and what to run)')
# mmengine's registry re-raises a constructor's error with this prefix
_BUILD_PREFIX = re.compile(r'^(class `\w+` in [\w./\\-]+: )+')


class CLIError(Exception):
    """An error the user can fix: ``message`` says what is wrong, ``fix`` what to run."""

    def __init__(self, message: str, fix: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.fix = fix


def add_debug_argument(parser) -> None:
    parser.add_argument('--debug', action='store_true', help=DEBUG_HELP)


def _format(message: str, fix: Optional[str]) -> str:
    lines = [f'error: {message.strip()}']
    if fix:
        lines += ['  ' + ln for ln in fix.strip().splitlines()]
    lines.append('  (add --debug for the full traceback)')
    return '\n'.join(lines)


def explain(err: BaseException, tool: str = 'the tool',
            checkpoint: Optional[str] = None) -> Optional[str]:
    """The short message for an error a user can fix, or None for any other error."""
    from mmlesion.engine.checkpoint import UntrustedCheckpointError

    if isinstance(err, CLIError):
        return _format(err.message, err.fix)
    text = _BUILD_PREFIX.sub('', str(err))
    if isinstance(err, UntrustedCheckpointError):
        path = checkpoint or text.split(': weights-only', 1)[0]
        return _format(
            f'{path} is a training checkpoint (pickled objects besides weights) from outside '
            'the work dir, so it is not unpickled unless you say you trust it.',
            f'if you trust it (you trained it): {tool} ... --trust-checkpoint\n'
            f'or strip it to weights once:      tools/publish_checkpoint.py {path} weights.pth')
    if isinstance(err, ValueError) and 'no pixel spacing' in text:
        what = text.split('; looked in', 1)[0].replace('VolumeScanTestLoop: ', '')
        return _format(
            f'{what}: the annotation file does not give their pixel spacing.',
            f'give DeepLesion\'s DL_info.csv (or a converted JSON) for their series:\n'
            f'{tool} ... --cfg-options test_cfg.series_info=DeepLesion/DL_info.csv')
    if isinstance(err, FileNotFoundError):
        return _format(text, None)
    return None


@contextlib.contextmanager
def short_errors(debug: bool, tool: str = 'the tool',
                 checkpoint: Optional[str] = None) -> Iterator[None]:
    """Turn errors a user can fix into a short message and exit status 1 (see module doc)."""
    try:
        yield
    except Exception as err:  # classified below; the rest is re-raised
        if debug:
            raise
        message = explain(err, tool, checkpoint)
        if message is None:
            raise
        print(message, file=sys.stderr)
        raise SystemExit(1) from None


def check_image_folder(dataset_cfg, tool: str, key: str) -> None:
    """Raise :class:`CLIError` when the dataset's image folder (``data_root`` +
    ``data_prefix.img``) is not there; ``key`` is the config path of the dataset for the fix."""
    data_root = dataset_cfg.get('data_root') or ''
    prefix = dataset_cfg.get('data_prefix') or {}
    img = prefix.get('img', prefix.get('img_path', '')) or ''
    folder = osp.join(data_root, img) if data_root else img
    if not folder or '://' in folder or dataset_cfg.get('backend_args'):
        return
    if not osp.isdir(folder):
        raise CLIError(
            f'the image folder {folder!r} does not exist (data_root {data_root!r} + '
            f'data_prefix.img {img!r}).',
            f'point data_root at the folder that holds Images_png/ and the annotations:\n'
            f'{tool} ... --cfg-options {key}.data_root=/path/to/DeepLesion/')
