"""CT data in the NIH DeepLesion on-disk format, with complete ground truth
(docs/method.md#synthetic).

``generate_dataset(out_dir, num_volumes, seed=0, image_size=512, ..., anatomy='phantom')`` writes
16-bit PNG slices, ``DL_info.csv`` and the Lesion Harvester pickles; ``anatomy='real'`` inserts the
synthetic lesions and look-alikes into augmented windows of the two real chest CTs.
``write_realct_fixture(out_dir)`` writes those real CTs themselves with their mask truth.  The
command lines are :mod:`mmlesion.cli.make_synthetic` and :mod:`mmlesion.cli.make_realct_fixture`.

Modules, each importing only those listed before it:

- :mod:`.shapes`, :mod:`.phantom`, :mod:`.lesions`, :mod:`.layout`: analytic shapes, phantom
  anatomy, lesion and look-alike models, who is in a dataset (patients, splits, roles).
- :mod:`.writer`: the DeepLesion-format files (output folder, DL_info.csv, ground-truth pickles).
- :mod:`.nrrd_volume`: reading the real CT NRRDs; :mod:`.lesion_masks`: real lesions described
  from their masks.
- :mod:`.series`: what the phantom and real-anatomy modes share (truth records, DL_info rows,
  series in worker processes).
- :mod:`.real_anatomy`, :mod:`.generator` (phantom mode and :func:`generate_dataset`),
  :mod:`.realct` (the real-CT fixture); :mod:`.truth` reads ``truth.json`` back.

Nothing here registers into mmdet's registries: ``import mmlesion`` does not import this package.
"""
from .generator import ANATOMIES, generate_dataset, lesion_mask_from_truth
from .realct import write_realct_fixture


def real_lesion_masks(volume, real_ct_dir=None, sources=None):
    """Masks of the real lesions of a real-anatomy ``truth.json`` volume (see
    :func:`.real_anatomy.real_lesion_masks`; imported lazily: it needs scipy and the NRRDs)."""
    from .real_anatomy import real_lesion_masks as _masks
    return _masks(volume, real_ct_dir, sources)


__all__ = ['ANATOMIES', 'generate_dataset', 'lesion_mask_from_truth', 'real_lesion_masks',
           'write_realct_fixture']
