"""Synthetic CT data in the NIH DeepLesion on-disk format, with complete ground truth (SPEC §6).

``generate_dataset(out_dir, num_volumes, seed=0, image_size=512, ...)`` writes 16-bit PNG
slices, ``DL_info.csv`` and the Lesion Harvester pickles; ``main(argv)`` is the CLI behind
``tools/make_synthetic.py``.
"""
from .generator import (DL_INFO_HEADER, generate_dataset, hu_to_png_bytes, lesion_mask_from_truth,
                        main, parse_args)

__all__ = ['DL_INFO_HEADER', 'generate_dataset', 'hu_to_png_bytes', 'lesion_mask_from_truth',
           'main', 'parse_args']
