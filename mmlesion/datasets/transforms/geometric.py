"""Resize CT slices to a common pixel spacing."""
import math
from typing import Optional

from mmdet.datasets.transforms import Resize
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type


@TRANSFORMS.register_module()
class RescaleToSpacing(Resize):
    """Resize so that a pixel is ``target_spacing_mm`` wide, then cap the long side.

    Per sample, ``scale = spacing_x_mm / target_spacing_mm`` (3DCE/MULAN: 0.8 mm/px, so a
    0.6 mm/px image shrinks by 0.75 and a 0.98 mm/px image grows by 1.225); if the long side would
    exceed ``max_size`` px the scale is reduced so that it equals ``max_size``.  The output size is
    ``round(W * scale) x round(H * scale)`` and image, boxes, masks and segmentation maps are
    resized with mmdet's ``Resize`` machinery (cv2, works for any channel count up to 512,
    e.g. 9-slice inputs); ``scale_factor`` is the realised ``(new_w / w, new_h / h)``.

    Required keys: ``img``, ``spacing`` (``[x, y(, z)]`` mm/px of the image as loaded).
    Added/modified keys: ``img``, ``img_shape``, ``scale``, ``scale_factor`` (w, h),
    ``gt_bboxes`` (if present), ``spacing_mm`` — ``(x, y)`` mm/px after resizing
    (= spacing / scale_factor).  ``spacing`` itself is left as loaded.

    Args:
        target_spacing_mm: pixel spacing after resizing (mm/px).
        max_size: cap on the long side in px; ``None`` for no cap.
        keep_ratio: True scales both axes by ``spacing_x / target`` (as CADLab; DeepLesion pixels
            are square).  False scales x by ``spacing_x / target`` and y by ``spacing_y / target``
            (makes anisotropic pixels square).
        clip_object_border, backend, interpolation: as in mmdet's ``Resize``.
    """

    def __init__(self,
                 target_spacing_mm: float = 0.8,
                 max_size: Optional[int] = 512,
                 keep_ratio: bool = True,
                 clip_object_border: bool = True,
                 backend: str = 'cv2',
                 interpolation: str = 'bilinear') -> None:
        # The parent computes results['scale'] from a fixed scale; ours is per sample, so the
        # parent is set up to resize to exactly results['scale'] (keep_ratio=False there).
        super().__init__(
            scale_factor=1.0,
            keep_ratio=False,
            clip_object_border=clip_object_border,
            backend=backend,
            interpolation=interpolation)
        if not (float(target_spacing_mm) > 0 and math.isfinite(float(target_spacing_mm))):
            raise ValueError(f'target_spacing_mm must be positive, got {target_spacing_mm!r}')
        if max_size is not None and int(max_size) < 1:
            raise ValueError(f'max_size must be a positive number of px or None, got {max_size!r}')
        self.target_spacing_mm = float(target_spacing_mm)
        self.max_size = None if max_size is None else int(max_size)
        self.keep_spacing_ratio = keep_ratio

    def _spacing_xy(self, results: dict):
        spacing = results.get('spacing')
        name = results.get('img_path', results.get('img_id'))
        try:
            spacing_x, spacing_y = float(spacing[0]), float(spacing[1])
        except (TypeError, IndexError, ValueError):
            raise ValueError(f'RescaleToSpacing needs spacing [x, y, ...] mm/px for {name!r}, '
                             f'got {spacing!r}') from None
        for value in (spacing_x, spacing_y):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(
                    f'pixel spacing must be positive mm/px for {name!r}, got {spacing!r}')
        return spacing_x, spacing_y

    def compute_scale(self, width: int, height: int, spacing_x: float, spacing_y: float):
        """``(scale_x, scale_y)`` for an image of ``width x height`` px at the given spacing."""
        scale_x = spacing_x / self.target_spacing_mm
        scale_y = scale_x if self.keep_spacing_ratio else spacing_y / self.target_spacing_mm
        if self.max_size is not None:
            long_side = max(width * scale_x, height * scale_y)
            if long_side > self.max_size:
                shrink = self.max_size / long_side
                scale_x, scale_y = scale_x * shrink, scale_y * shrink
        return scale_x, scale_y

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        spacing_x, spacing_y = self._spacing_xy(results)
        height, width = results['img'].shape[:2]
        scale_x, scale_y = self.compute_scale(width, height, spacing_x, spacing_y)
        results['scale'] = (max(1, int(width * scale_x + 0.5)), max(1, int(height * scale_y + 0.5)))
        self._resize_img(results)
        self._resize_bboxes(results)
        self._resize_masks(results)
        self._resize_seg(results)
        self._record_homography_matrix(results)
        w_scale, h_scale = results['scale_factor']
        results['spacing_mm'] = (spacing_x / w_scale, spacing_y / h_scale)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(target_spacing_mm={self.target_spacing_mm}, '
                f'max_size={self.max_size}, keep_ratio={self.keep_spacing_ratio}, '
                f'clip_object_border={self.clip_object_border}, backend={self.backend}, '
                f'interpolation={self.interpolation})')
