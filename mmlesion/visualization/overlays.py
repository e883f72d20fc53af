"""Slice overlays of detections and ground truth, written as PNG (``tools/test.py --show-dir``).

* :func:`render_volume_overlay` -- one image per sub-volume: a tile for the best slice of each of
  the top tracklets (its box, its score, its slice extent) and a tile for every ground-truth slice
  (the ground truth and every tracklet box on that slice), all with the ground truth drawn.
* :class:`KeySliceOverlayHook` -- for the per-key-slice test loop: the key slice with its ground
  truth and the detections above a score threshold.

Slices are HU arrays (``H x W``, 0-based pixels; boxes in the same frame) shown in a display
window (default the soft-tissue window [-175, 275] HU).  Colours (BGR): ground truth green,
tracklets / detections red, other tracklets on a ground-truth slice orange.
"""
import os
import os.path as osp
from typing import Callable, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from mmlesion.structures.tracklet import as_tracklets
from mmlesion.utils import atomic_write_bytes

__all__ = ['hu_to_display', 'draw_boxes', 'render_volume_overlay', 'save_volume_overlay',
           'KeySliceOverlayHook', 'GT_BGR', 'DET_BGR', 'OTHER_BGR']

GT_BGR = (60, 200, 60)
DET_BGR = (40, 40, 230)
OTHER_BGR = (0, 150, 255)
DEFAULT_DISPLAY_WINDOW_HU = (-175.0, 275.0)


def hu_to_display(hu: np.ndarray,
                  window_hu: Tuple[float, float] = DEFAULT_DISPLAY_WINDOW_HU) -> np.ndarray:
    """``H x W`` HU -> ``H x W x 3`` uint8 BGR grey image in the display window."""
    lo, hi = float(window_hu[0]), float(window_hu[1])
    gray = np.clip((np.asarray(hu, dtype=np.float32) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    gray = (gray * 255.0).round().astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def draw_boxes(image: np.ndarray, boxes, color, scale: float = 1.0,
               labels: Optional[Sequence[str]] = None, thickness: int = 1) -> np.ndarray:
    """Draw ``(n, >=4)`` boxes ``[x1, y1, x2, y2]`` (pixels of the unscaled slice) in place."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return image
    boxes = boxes.reshape(-1, boxes.shape[-1])
    for i, b in enumerate(boxes):
        p1 = (int(round(b[0] * scale)), int(round(b[1] * scale)))
        p2 = (int(round(b[2] * scale)), int(round(b[3] * scale)))
        cv2.rectangle(image, p1, p2, color, thickness)
        if labels is not None and i < len(labels) and labels[i]:
            cv2.putText(image, labels[i], (p1[0], max(p1[1] - 3, 9)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35, color, 1, cv2.LINE_AA)
    return image


def _tile(hu: np.ndarray, tile_px: int, window_hu) -> Tuple[np.ndarray, float]:
    h, w = hu.shape[:2]
    scale = tile_px / max(h, w)
    img = cv2.resize(hu_to_display(hu, window_hu), (max(1, round(w * scale)),
                                                    max(1, round(h * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.zeros((tile_px + 14, tile_px, 3), np.uint8)
    tile[14:14 + img.shape[0], :img.shape[1]] = img
    return tile, scale


def _caption(tile: np.ndarray, text: str) -> None:
    cv2.putText(tile, text, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1,
                cv2.LINE_AA)


def render_volume_overlay(get_slice: Callable[[int], np.ndarray], tracklets: Sequence,
                          gt_boxes_2d: Optional[np.ndarray] = None, title: str = '',
                          max_tracklets: int = 5, tile_px: int = 256, columns: int = 4,
                          window_hu: Tuple[float, float] = DEFAULT_DISPLAY_WINDOW_HU
                          ) -> np.ndarray:
    """Overlay image of one sub-volume's tracklets and ground truth.

    Args:
        get_slice: absolute slice index -> ``H x W`` HU array.
        tracklets: the volume's tracklets, highest score first, mmlesion frame (any layout of
            :mod:`mmlesion.structures.tracklet`).
        gt_boxes_2d: ``(g, 5)`` ``[z, x1, y1, x2, y2]`` ground truth (absolute z, 0-based).
        title: written above the tiles.
        max_tracklets: tracklets shown on their own tile (by rank).
        tile_px: tile size; the slice's long side is scaled to it.
        columns: tiles per row.

    Returns:
        ``uint8`` BGR image.
    """
    gt = np.zeros((0, 5)) if gt_boxes_2d is None else np.asarray(gt_boxes_2d, dtype=np.float64)
    gt = gt.reshape(-1, 5)
    parts = [(t.z, t.boxes) for t in as_tracklets(tracklets)]
    tiles = []
    for rank, (z, boxes) in enumerate(parts[:max_tracklets]):
        best = int(np.argmax(boxes[:, 4]))
        zb = int(z[best])
        tile, scale = _tile(get_slice(zb), tile_px, window_hu)
        draw_boxes(tile[14:], gt[gt[:, 0] == zb, 1:], GT_BGR, scale)
        draw_boxes(tile[14:], boxes[best:best + 1, :4], DET_BGR, scale,
                   [f'#{rank} {boxes[best, 4]:.2f}'])
        _caption(tile, f'trk #{rank} z={zb} [{int(z.min())}-{int(z.max())}] '
                 f's={boxes[:, 4].max():.2f}')
        tiles.append(tile)
    for zg in sorted({int(v) for v in gt[:, 0]}):
        tile, scale = _tile(get_slice(zg), tile_px, window_hu)
        others, labels = [], []
        for rank, (z, boxes) in enumerate(parts):
            on = np.flatnonzero(z == zg)
            if on.size:
                others.append(boxes[on[0], :4])
                labels.append(f'#{rank} {boxes[on[0], 4]:.2f}')
        if others:
            draw_boxes(tile[14:], np.stack(others), OTHER_BGR, scale, labels)
        draw_boxes(tile[14:], gt[gt[:, 0] == zg, 1:], GT_BGR, scale)
        _caption(tile, f'GT z={zg}: {int((gt[:, 0] == zg).sum())} lesion(s), '
                 f'{len(others)} tracklet(s)')
        tiles.append(tile)
    if not tiles:
        tile = np.zeros((tile_px + 14, tile_px, 3), np.uint8)
        _caption(tile, 'no tracklets, no ground truth')
        tiles.append(tile)
    columns = max(1, min(columns, len(tiles)))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    grid = np.concatenate(rows, axis=0)
    head = np.zeros((16, grid.shape[1], 3), np.uint8)
    cv2.putText(head, title, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate([head, grid], axis=0)


def _write_png(path: str, image: np.ndarray) -> None:
    ok, buf = cv2.imencode('.png', image)
    if not ok:
        raise RuntimeError(f'could not encode {path}')
    atomic_write_bytes(path, buf.tobytes())


def save_volume_overlay(path: str, get_slice: Callable[[int], np.ndarray], tracklets: Sequence,
                        gt_boxes_2d: Optional[np.ndarray] = None, **kwargs) -> None:
    """:func:`render_volume_overlay` written to ``path`` (PNG, atomic)."""
    _write_png(path, render_volume_overlay(get_slice, tracklets, gt_boxes_2d, **kwargs))


@HOOKS.register_module()
class KeySliceOverlayHook(Hook):
    """Write each test key slice with its ground truth and detections as a PNG.

    Files: ``<out_dir>/<volume_id>_<slice>.png`` (or ``<img_id>.png`` without volume metadata).
    The slice is read from its 16-bit PNG (``img_path``); boxes are in the original image frame
    (``pred_instances`` after ``rescale=True``, ``gt_instances`` loaded after the resize).

    Args:
        out_dir: output folder.
        score_thr: draw detections scoring at least this.
        max_images: stop after this many images per process (None: all).
        window_hu: display window.
        min_size: small slices are enlarged so that their long side has this many px.
    """

    def __init__(self, out_dir: str, score_thr: float = 0.3, max_images: Optional[int] = None,
                 window_hu: Tuple[float, float] = DEFAULT_DISPLAY_WINDOW_HU,
                 min_size: int = 384) -> None:
        self.out_dir = out_dir
        self.score_thr = float(score_thr)
        self.max_images = max_images
        self.window_hu = tuple(window_hu)
        self.min_size = int(min_size)
        self._written = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        from mmlesion.datasets.png_codec import raw_to_hu, read_uint16_png
        for sample in outputs or []:
            if self.max_images is not None and self._written >= self.max_images:
                return
            meta = sample.metainfo
            hu = raw_to_hu(read_uint16_png(meta['img_path']))
            h, w = hu.shape
            scale = max(1.0, self.min_size / max(h, w))
            image = hu_to_display(hu, self.window_hu)
            if scale > 1:
                image = cv2.resize(image, (round(w * scale), round(h * scale)),
                                   interpolation=cv2.INTER_LINEAR)
            if 'gt_instances' in sample:
                gt = sample.gt_instances.bboxes
                draw_boxes(image, np.asarray(getattr(gt, 'tensor', gt).cpu()), GT_BGR, scale)
            pred = sample.pred_instances
            keep = (pred.scores >= self.score_thr).cpu().numpy()
            boxes = pred.bboxes.cpu().numpy()[keep]
            scores = pred.scores.cpu().numpy()[keep]
            draw_boxes(image, boxes, DET_BGR, scale, labels=[f'{s:.2f}' for s in scores])
            if meta.get('volume_id') is not None and meta.get('slice_index') is not None:
                name = f'{meta["volume_id"]}_{int(meta["slice_index"]):03d}.png'
            else:
                name = f'{meta.get("img_id", batch_idx)}.png'
            os.makedirs(self.out_dir, exist_ok=True)
            _write_png(osp.join(self.out_dir, name), image)
            self._written += 1
