"""Synthetic CT data in the NIH DeepLesion on-disk format, with complete ground truth (SPEC §6).

``generate_dataset(out_dir, num_volumes, seed=0, image_size=512, ..., anatomy='phantom')`` writes
16-bit PNG slices, ``DL_info.csv`` and the Lesion Harvester pickles; ``anatomy='real'`` inserts the
synthetic lesions and look-alikes into augmented windows of the two real chest CTs
(:mod:`.real_anatomy`).  ``main(argv)`` is the CLI behind ``tools/make_synthetic.py``.
"""
from .generator import (ANATOMIES, DL_INFO_HEADER, generate_dataset, hu_to_png_bytes,
                        lesion_mask_from_truth, main, parse_args)


def real_lesion_masks(volume, real_ct_dir=None):
    """Masks of the real lesions of a real-anatomy ``truth.json`` volume (see
    :func:`.real_anatomy.real_lesion_masks`; imported lazily: it needs scipy and the NRRDs)."""
    from .real_anatomy import real_lesion_masks as _masks
    return _masks(volume, real_ct_dir)


__all__ = ['ANATOMIES', 'DL_INFO_HEADER', 'generate_dataset', 'hu_to_png_bytes',
           'lesion_mask_from_truth', 'main', 'parse_args', 'real_lesion_masks']
