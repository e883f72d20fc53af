"""Transforms of lesion-proposal patches (LPC training and testing), registered in
``mmdet.registry.TRANSFORMS``.

Input ``results`` (from :class:`~mmlesion.datasets.ProposalPatchDataset`): ``img`` the patches,
``(V, H, W)`` views or ``(D, H, W)`` cube, windowed; ``patch_axes`` the axis names of each view
(``(('y', 'x'), ('z', 'x'), ('z', 'y'))`` for axial, coronal, sagittal) or of the cube
(``('z', 'y', 'x')``); ``gt_label``; ``proposal`` metadata.
"""
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmdet.registry import TRANSFORMS

__all__ = ['RandomFlipLPC', 'RandomTransposeLPC', 'PackLPCInputs']

_META_KEYS = ('key', 'index', 's_g', 'label', 'best_z', 'mode', 'views')


@TRANSFORMS.register_module()
class RandomFlipLPC(BaseTransform):
    """Mirror the patches along x, y and/or z, each with probability ``prob``.

    A flip along an axis is applied to every view that shows that axis (an x flip mirrors the
    axial and coronal columns, a z flip the coronal and sagittal rows), so the views stay
    consistent views of one mirrored volume.

    Args:
        prob: probability of each flip.
        axes: which axes may flip (default x and y: left-right and front-back; z reverses the
            cranio-caudal order, which CT anatomy is not symmetric under, so it is left out).
    """

    def __init__(self, prob: float = 0.5, axes: Sequence[str] = ('x', 'y')) -> None:
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        bad = set(axes) - {'x', 'y', 'z'}
        if bad:
            raise ValueError(f'axes must be among x, y, z, got {sorted(bad)}')
        self.prob = float(prob)
        self.axes = tuple(axes)

    def transform(self, results: dict) -> dict:
        img = results['img']
        axes = results['patch_axes']
        flips = [a for a in self.axes if np.random.rand() < self.prob]
        if not flips:
            results['flip_axes'] = []
            return results
        if isinstance(axes[0], str):  # one cube (z, y, x)
            dims = [axes.index(a) for a in flips if a in axes]
            img = np.flip(img, axis=dims) if dims else img
        else:  # views: axes per view (row, col), img (V, H, W)
            img = img.copy()
            for v, (row, col) in enumerate(axes):
                dims = [d for d, a in ((0, row), (1, col)) if a in flips]
                if dims:
                    img[v] = np.flip(img[v], axis=dims)
        results['img'] = np.ascontiguousarray(img)
        results['flip_axes'] = flips
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, axes={self.axes})'


@TRANSFORMS.register_module()
class RandomTransposeLPC(BaseTransform):
    """Swap the x and y axes of the patched volume with probability ``prob`` *(ours)*.

    With the x and y flips of :class:`RandomFlipLPC` this gives all eight in-plane rotations and
    mirrors of the axial plane (a lesion has no preferred in-plane orientation), which multiplies
    the few positives an LPC learns from.  Views stay consistent views of one volume: the axial
    view ``(y, x)`` is transposed, the coronal ``(z, x)`` and sagittal ``(z, y)`` views trade
    places; a cube ``(z, y, x)`` swaps its last two axes.

    Args:
        prob: probability of the swap.

    Raises (at call):
        ValueError: the views that trade places have different shapes, or a view shows x or y
            without its partner view being among the patches.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = float(prob)

    @staticmethod
    def _swap(axis: str) -> str:
        return {'x': 'y', 'y': 'x'}.get(axis, axis)

    def transform(self, results: dict) -> dict:
        results['transposed'] = False
        if np.random.rand() >= self.prob:
            return results
        img, axes = results['img'], results['patch_axes']
        if isinstance(axes[0], str):  # one cube (z, y, x)
            order = [axes.index(self._swap(a)) for a in axes]
            results['img'] = np.ascontiguousarray(np.transpose(img, order))
        else:
            where = {tuple(a): v for v, a in enumerate(axes)}
            out = np.empty_like(img)
            for v, (row, col) in enumerate(axes):
                want = (self._swap(row), self._swap(col))
                if want in where:  # another view shows this plane after the swap
                    src, transpose = where[want], False
                elif want[::-1] in where:
                    src, transpose = where[want[::-1]], True
                else:
                    raise ValueError(f'RandomTransposeLPC: view {v} {(row, col)} has no partner '
                                     f'view among {list(axes)} to trade places with')
                patch = img[src].T if transpose else img[src]
                if patch.shape != out[v].shape:
                    raise ValueError(f'RandomTransposeLPC needs square views of one size, got '
                                     f'{tuple(img.shape[1:])}')
                out[v] = patch
            results['img'] = out
        results['transposed'] = True
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class PackLPCInputs(BaseTransform):
    """Pack patches into ``inputs`` and a data sample.

    ``inputs``: float32 tensor ``V x 1 x H x W`` (views) or ``1 x D x H x W`` (cube).
    ``data_samples``: a :class:`~mmengine.structures.BaseDataElement` with ``gt_label`` (float
    tensor, the proposal label 1/0/-1) and metainfo ``key``, ``index``, ``s_g``, ``label``,
    ``best_z``, ``mode``, ``views`` and ``meta_keys`` found in ``results``.

    Args:
        meta_keys: extra ``results`` keys copied into the metainfo.
    """

    def __init__(self, meta_keys: Optional[Sequence[str]] = ()) -> None:
        self.meta_keys = tuple(meta_keys or ())

    def transform(self, results: dict) -> dict:
        img = np.array(results['img'], dtype=np.float32, order='C')  # a copy: caches stay
        inputs = torch.from_numpy(img).unsqueeze(1 if results.get('mode') == 'views' else 0)
        sample = BaseDataElement(metainfo={k: results[k] for k in _META_KEYS + self.meta_keys
                                           if k in results})
        sample.gt_label = torch.tensor(float(results.get('label', -1)))
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
