"""Random training crops that keep a lesion in view and the hard-negative flags aligned."""
from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type, get_box_tensor

# Keys that hold one entry per box and must be filtered together with ``gt_bboxes``.
_PER_BOX_KEYS = ('gt_bboxes_labels', 'gt_ignore_flags', 'gt_hard_negative_flags')


@TRANSFORMS.register_module()
class RandomLesionCrop(BaseTransform):
    """Crop a fixed-size window from a multi-slice training image, around a random lesion.

    With probability ``lesion_prob`` (and when the image has a lesion: a box that is neither a
    hard negative nor ignored) one lesion is drawn uniformly and the window's top-left corner is
    drawn uniformly among the positions that keep that whole box inside the window (when the box
    is larger than the window: among those that keep the box's centre inside); otherwise the
    corner is drawn uniformly over the image.  An image no larger than the window along an axis
    is not cropped along it (the batch collate pads it).

    Boxes are shifted into the window; a box whose centre falls outside is dropped, the others
    are clipped to the window (CenterNet's rule: the centre decides who keeps a heatmap peak).
    ``gt_bboxes_labels``, ``gt_ignore_flags`` and ``gt_hard_negative_flags`` are filtered with
    the boxes, so hard negatives survive crops with their flags.

    Training-time only: the window is in the pixels of the image as it arrives (put it after
    :class:`RescaleToSpacing`, so the crop covers a fixed physical extent).  Inference runs on
    whole images: the detector is fully convolutional.

    Required keys: ``img`` (``H x W x C``). Modified keys: ``img``, ``img_shape``, ``gt_bboxes``
    and the per-box keys above (if present), ``homography_matrix`` (if present).
    Added key: ``crop_offset`` ``(x0, y0)`` px.

    Args:
        crop_size: ``(width, height)`` px, or one int for a square window.
        lesion_prob: probability of a lesion-centred window (the rest are uniform over the
            image, so background far from lesions is seen too).
    """

    def __init__(self, crop_size: Union[int, Sequence[int]], lesion_prob: float = 0.9) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        crop_size = tuple(int(v) for v in crop_size)
        if len(crop_size) != 2 or min(crop_size) < 1:
            raise ValueError(f'crop_size must be (width, height) positive px, got {crop_size!r}')
        if not 0.0 <= float(lesion_prob) <= 1.0:
            raise ValueError(f'lesion_prob must be in [0, 1], got {lesion_prob!r}')
        self.crop_size = crop_size
        self.lesion_prob = float(lesion_prob)

    @staticmethod
    def _lesion_indices(results: dict, num_boxes: int) -> np.ndarray:
        keep = np.ones(num_boxes, dtype=bool)
        for key in ('gt_hard_negative_flags', 'gt_ignore_flags'):
            if results.get(key) is not None:
                keep &= ~np.asarray(results[key], dtype=bool)
        return np.flatnonzero(keep)

    @staticmethod
    def _corner_range(lo: float, hi: float, size: int, window: int) -> Tuple[int, int]:
        """Integer corners ``c`` with ``[lo, hi]`` inside ``[c, c + window]``, within the image;
        for a box longer than the window, those with its centre in ``[c, c + window)``."""
        if hi - lo > window:
            centre = 0.5 * (lo + hi)
            first, last = int(np.floor(centre - window)) + 1, int(np.floor(centre))
        else:
            first, last = int(np.ceil(hi - window)), int(np.floor(lo))
        first, last = max(first, 0), min(last, size - window)
        if first > last:  # only when the box leaves the image: clamp into it
            first = last = min(max(first, 0), size - window)
        return first, last

    def _choose_corner(self, results: dict, width: int, height: int,
                       window_w: int, window_h: int) -> Tuple[int, int]:
        boxes = results.get('gt_bboxes')
        lesions = np.zeros(0, dtype=np.int64)
        if boxes is not None and len(boxes):
            lesions = self._lesion_indices(results, len(boxes))
        if len(lesions) and np.random.rand() < self.lesion_prob:
            x1, y1, x2, y2 = (float(v) for v in
                              _box_array(boxes)[lesions[np.random.randint(len(lesions))]])
            x_lo, x_hi = self._corner_range(x1, x2, width, window_w)
            y_lo, y_hi = self._corner_range(y1, y2, height, window_h)
            return np.random.randint(x_lo, x_hi + 1), np.random.randint(y_lo, y_hi + 1)
        return (np.random.randint(0, width - window_w + 1),
                np.random.randint(0, height - window_h + 1))

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        window_w, window_h = min(self.crop_size[0], width), min(self.crop_size[1], height)
        boxes = results.get('gt_bboxes')
        if boxes is not None:
            for key in _PER_BOX_KEYS:
                if results.get(key) is not None and len(results[key]) != len(boxes):
                    raise ValueError(f'{results.get("img_path")!r}: {key} has '
                                     f'{len(results[key])} entries for {len(boxes)} boxes')
        x0, y0 = self._choose_corner(results, width, height, window_w, window_h)
        results['img'] = img[y0:y0 + window_h, x0:x0 + window_w]
        results['img_shape'] = (window_h, window_w)
        results['crop_offset'] = (int(x0), int(y0))
        if results.get('homography_matrix') is not None:
            shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float32)
            results['homography_matrix'] = shift @ results['homography_matrix']
        if boxes is not None:
            self._crop_boxes(results, boxes, x0, y0, window_w, window_h)
        return results

    @staticmethod
    def _crop_boxes(results: dict, boxes, x0: int, y0: int, window_w: int,
                    window_h: int) -> None:
        shifted = _box_array(boxes) - np.array([x0, y0, x0, y0], dtype=np.float32)
        centres = 0.5 * (shifted[:, :2] + shifted[:, 2:])
        keep = ((centres[:, 0] >= 0) & (centres[:, 0] < window_w)
                & (centres[:, 1] >= 0) & (centres[:, 1] < window_h))
        cropped = shifted[keep]
        cropped[:, 0::2] = cropped[:, 0::2].clip(0, window_w)
        cropped[:, 1::2] = cropped[:, 1::2].clip(0, window_h)
        # the box type the pipeline uses (mmdet's HorizontalBoxes, or a plain array)
        boxes = type(boxes)(cropped) if hasattr(boxes, 'tensor') else cropped
        results['gt_bboxes'] = boxes
        for key in _PER_BOX_KEYS:
            if results.get(key) is not None:
                results[key] = np.asarray(results[key])[keep]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'lesion_prob={self.lesion_prob})')


def _box_array(boxes) -> np.ndarray:
    """``N x 4`` float32 array of mmdet boxes, a tensor or an array."""
    return np.asarray(get_box_tensor(boxes), dtype=np.float32).reshape(-1, 4)
