"""Decode, before training, every slice PNG that training will read, and report the bad ones.

A DeepLesion training run reads each key slice and the neighbours its multi-slice window uses
(docs/method.md#data-input); one truncated or 8-bit PNG among 928K slices would otherwise end
the run hours in (training loads with ``strict`` reading on purpose).  :func:`check_images`
lists those files from the converted JSON images, decodes each once in worker processes and
returns the unreadable ones with the reason, so ``tools/convert_deeplesion.py --check-images``
can name them before any training starts.
"""
import multiprocessing
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from mmengine.utils import ProgressBar

from . import slice_sampling as ss
from .png_codec import read_uint16_png

__all__ = ['window_slice_files', 'check_images']


def window_slice_files(images: Iterable[dict], image_dir: str, num_slices: int = 9,
                       slice_interval_mm: float = ss.TARGET_INTERVAL_MM) -> List[str]:
    """The PNG files the ``num_slices``-slice windows of ``images`` read (sorted, unique).

    Args:
        images: our JSON ``images`` entries (``file_name``, ``slice_index``, ``slice_range``,
            ``slice_interval``, optional ``missing_slices``).
        image_dir: the ``Images_png`` folder the file names are relative to.
        num_slices, slice_interval_mm: the window of the training pipeline (9 at 2 mm).
    """
    files: Set[str] = set()
    for im in images:
        series_dir = osp.dirname(osp.join(image_dir, im['file_name']))
        first, last = (int(v) for v in im['slice_range'])
        missing = {int(z) for z in im.get('missing_slices') or ()}
        available = set(range(first, last + 1)) - missing
        offsets = ss.sample_positions(im.get('slice_interval'), num_slices, slice_interval_mm)
        plan = ss.interpolation_plan(int(im['slice_index']), (first, last), available, offsets)
        files.update(osp.join(series_dir, f'{z:03d}.png') for z in plan.needed_slices())
    return sorted(files)


def _decode(path: str) -> Optional[Tuple[str, str]]:
    try:
        read_uint16_png(path)
    except (ValueError, FileNotFoundError, OSError) as e:
        return path, str(e)
    return None


def check_images(images: Sequence[dict], image_dir: str, num_slices: int = 9,
                 slice_interval_mm: float = ss.TARGET_INTERVAL_MM, workers: int = 2,
                 progress: bool = True) -> Dict[str, object]:
    """Decode every slice the windows of ``images`` use; report the unreadable ones.

    Returns:
        ``dict(checked=N, unreadable=[(path, reason), ...])``, paths sorted.
    """
    files = window_slice_files(images, image_dir, num_slices, slice_interval_mm)
    bar = ProgressBar(len(files)) if progress and files else None
    bad: List[Tuple[str, str]] = []
    if workers > 1 and len(files) > 1:
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            for result in pool.imap(_decode, files, chunksize=64):
                if result is not None:
                    bad.append(result)
                if bar is not None:
                    bar.update()
    else:
        for path in files:
            result = _decode(path)
            if result is not None:
                bad.append(result)
            if bar is not None:
                bar.update()
    if bar is not None:
        print(flush=True)
    return dict(checked=len(files), unreadable=sorted(bad))
