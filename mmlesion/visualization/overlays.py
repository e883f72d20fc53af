"""Slice overlays of detections and ground truth, written as PNG (``tools/test.py --show-dir``).

* :func:`render_volume_overlay` -- one image per sub-volume: a tile for the best slice of each of
  the top tracklets (its box, its score, its slice extent) and a tile for every ground-truth slice
  (the ground truth and every tracklet box on that slice), all with the ground truth drawn.
* :class:`KeySliceOverlayHook` -- for the per-key-slice test loop: the key slice with its ground
  truth and the detections above a score threshold.

Slices are HU arrays (``H x W``, 0-based pixels; boxes in the same frame) shown in a display
window (default the soft-tissue window [-175, 275] HU).  Colours say the outcome under the P3D
rule (a tracklet hits a lesion when its box on the lesion's slice has IoU >= 0.5): ground truth
found green, missed magenta; tracklets that hit a lesion cyan, false positives red (the key-slice
hook: detections that hit a ground-truth box cyan, the others red).  A legend heads each image,
and box labels are placed where they overlap neither each other nor the image border.
"""
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from mmlesion.structures.boxes import box_iou_2d
from mmlesion.structures.tracklet import as_tracklets
from mmlesion.utils import atomic_write_bytes

__all__ = ['hu_to_display', 'draw_boxes', 'draw_legend', 'render_volume_overlay',
           'save_volume_overlay', 'KeySliceOverlayHook', 'GT_BGR', 'MISS_BGR', 'HIT_BGR',
           'DET_BGR', 'OTHER_BGR', 'LEGEND']

GT_BGR = (60, 200, 60)  # ground truth found by some tracklet / detection
MISS_BGR = (230, 40, 230)  # ground truth missed
HIT_BGR = (230, 200, 0)  # tracklet / detection that hits a ground truth
DET_BGR = (40, 40, 230)  # false positive
OTHER_BGR = DET_BGR  # earlier name of the colour of other tracklets on a ground-truth slice
LEGEND = (('GT found', GT_BGR), ('GT missed', MISS_BGR), ('hit', HIT_BGR),
          ('false positive', DET_BGR))
DEFAULT_DISPLAY_WINDOW_HU = (-175.0, 275.0)
HEAD_PX = 30  # title line and legend line above the tiles
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LABEL_SCALE = 0.35


def hu_to_display(hu: np.ndarray,
                  window_hu: Tuple[float, float] = DEFAULT_DISPLAY_WINDOW_HU) -> np.ndarray:
    """``H x W`` HU -> ``H x W x 3`` uint8 BGR grey image in the display window."""
    lo, hi = float(window_hu[0]), float(window_hu[1])
    gray = np.clip((np.asarray(hu, dtype=np.float32) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    gray = (gray * 255.0).round().astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _overlaps(rect, placed) -> bool:
    x1, y1, x2, y2 = rect
    return any(x1 < b[2] and b[0] < x2 and y1 < b[3] and b[1] < y2 for b in placed)


def place_label(text: str, box_px, image_shape, placed: List[Tuple[int, int, int, int]]
                ) -> Tuple[int, int]:
    """Where to write ``text`` for a box (drawn pixels ``x1, y1, x2, y2``): the first of above-
    left, below-left, above-right, below-right, inside top-left, then further up or down, whose
    rectangle stays in the image and overlaps no rectangle in ``placed``.  Appends the chosen
    rectangle to ``placed`` and returns the text origin (cv2's bottom-left)."""
    (tw, th), base = cv2.getTextSize(text, _FONT, _LABEL_SCALE, 1)
    h_img, w_img = image_shape[:2]
    x1, y1, x2, y2 = box_px
    step = th + base + 1
    above, below = y1 - 3 - base, y2 + 3 + th
    candidates = [(x1, above), (x1, below), (x2 - tw, above), (x2 - tw, below),
                  (x1 + 2, y1 + 2 + th)]
    candidates += [(x1, above - k * step) for k in range(1, 6)]
    candidates += [(x1, below + k * step) for k in range(1, 6)]

    def rect(org):
        x = int(min(max(org[0], 0), max(w_img - tw, 0)))
        y = int(min(max(org[1], th), max(h_img - base, th)))
        return (x, y), (x, y - th, x + tw, y + base)

    for org in candidates:
        if th <= org[1] <= h_img - base and 0 <= org[0] <= w_img - tw:
            (x, y), r = rect(org)
            if not _overlaps(r, placed):
                placed.append(r)
                return x, y
    (x, y), r = rect(candidates[0])  # crowded: the default place, in the image
    placed.append(r)
    return x, y


def draw_boxes(image: np.ndarray, boxes, color, scale: float = 1.0,
               labels: Optional[Sequence[str]] = None, thickness: int = 1,
               placed: Optional[List[Tuple[int, int, int, int]]] = None) -> np.ndarray:
    """Draw ``(n, >=4)`` boxes ``[x1, y1, x2, y2]`` (pixels of the unscaled slice) in place.

    ``color``: one BGR colour or one per box.  Labels go where they overlap no other label
    (:func:`place_label`); pass the same ``placed`` list to calls that share an image.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return image
    boxes = boxes.reshape(-1, boxes.shape[-1])
    colors = list(color) if color and isinstance(color[0], (tuple, list)) else \
        [color] * len(boxes)
    placed = [] if placed is None else placed
    drawn = []
    for i, b in enumerate(boxes):
        p1 = (int(round(b[0] * scale)), int(round(b[1] * scale)))
        p2 = (int(round(b[2] * scale)), int(round(b[3] * scale)))
        cv2.rectangle(image, p1, p2, colors[i], thickness)
        drawn.append((p1, p2))
    for i, (p1, p2) in enumerate(drawn):
        if labels is not None and i < len(labels) and labels[i]:
            org = place_label(labels[i], (*p1, *p2), image.shape, placed)
            cv2.putText(image, labels[i], org, _FONT, _LABEL_SCALE, colors[i], 1, cv2.LINE_AA)
    return image


def draw_legend(image: np.ndarray, x: int, y: int, entries=LEGEND) -> int:
    """Colour swatches with their meaning, left to right from ``(x, y)`` (top-left); returns
    the x after the last entry."""
    for text, colour in entries:
        cv2.rectangle(image, (x, y + 2), (x + 9, y + 10), colour, -1)
        cv2.putText(image, text, (x + 12, y + 10), _FONT, 0.33, (255, 255, 255), 1,
                    cv2.LINE_AA)
        x += 12 + cv2.getTextSize(text, _FONT, 0.33, 1)[0][0] + 10
    return x


def _p3d_hits(parts, gt: np.ndarray, iou_thr: float) -> Tuple[np.ndarray, np.ndarray]:
    """``(tracklet hits a lesion, lesion hit by a tracklet)`` under the P3D rule."""
    trk_hit = np.zeros(len(parts), dtype=bool)
    gt_hit = np.zeros(len(gt), dtype=bool)
    for t, (z, boxes) in enumerate(parts):
        for g, row in enumerate(gt):
            on = np.flatnonzero(z == int(row[0]))
            if on.size and box_iou_2d(boxes[on, :4], row[None, 1:5]).max() >= iou_thr:
                trk_hit[t] = gt_hit[g] = True
    return trk_hit, gt_hit


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
                          window_hu: Tuple[float, float] = DEFAULT_DISPLAY_WINDOW_HU,
                          iou_thr: float = 0.5) -> np.ndarray:
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
        window_hu: display window.
        iou_thr: the P3D hit rule's IoU on the lesion's slice, for the colours.

    Returns:
        ``uint8`` BGR image: a title and legend bar, then the tiles.  Ground truth is green when
        some tracklet hits it, magenta when missed; tracklets cyan when they hit, red when not.
    """
    gt = np.zeros((0, 5)) if gt_boxes_2d is None else np.asarray(gt_boxes_2d, dtype=np.float64)
    gt = gt.reshape(-1, 5)
    parts = [(t.z, t.boxes) for t in as_tracklets(tracklets)]
    trk_hit, gt_hit = _p3d_hits(parts, gt, iou_thr)
    trk_colour = [HIT_BGR if h else DET_BGR for h in trk_hit]

    def draw_gt(tile, z, scale):
        on = gt[:, 0] == z
        draw_boxes(tile[14:], gt[on, 1:], [GT_BGR if h else MISS_BGR for h in gt_hit[on]],
                   scale)

    tiles = []
    for rank, (z, boxes) in enumerate(parts[:max_tracklets]):
        best = int(np.argmax(boxes[:, 4]))
        zb = int(z[best])
        tile, scale = _tile(get_slice(zb), tile_px, window_hu)
        draw_gt(tile, zb, scale)
        draw_boxes(tile[14:], boxes[best:best + 1, :4], trk_colour[rank], scale,
                   [f'#{rank} {boxes[best, 4]:.2f}'])
        _caption(tile, f'trk #{rank} z={zb} [{int(z.min())}-{int(z.max())}] '
                 f's={boxes[:, 4].max():.2f} {"hit" if trk_hit[rank] else "FP"}')
        tiles.append(tile)
    for zg in sorted({int(v) for v in gt[:, 0]}):
        tile, scale = _tile(get_slice(zg), tile_px, window_hu)
        others, labels, colours = [], [], []
        for rank, (z, boxes) in enumerate(parts):
            on = np.flatnonzero(z == zg)
            if on.size:
                others.append(boxes[on[0], :4])
                labels.append(f'#{rank} {boxes[on[0], 4]:.2f}')
                colours.append(trk_colour[rank])
        if others:
            draw_boxes(tile[14:], np.stack(others), colours, scale, labels)
        draw_gt(tile, zg, scale)
        on = gt[:, 0] == zg
        _caption(tile, f'GT z={zg}: {int(gt_hit[on].sum())} of {int(on.sum())} found, '
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
    head = np.zeros((HEAD_PX, grid.shape[1], 3), np.uint8)
    cv2.putText(head, title, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    draw_legend(head, 2, 15)
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
        iou_thr: a detection with this IoU with a ground-truth box hits it (the colours).
    """

    def __init__(self, out_dir: str, score_thr: float = 0.3, max_images: Optional[int] = None,
                 window_hu: Tuple[float, float] = DEFAULT_DISPLAY_WINDOW_HU,
                 min_size: int = 384, iou_thr: float = 0.5) -> None:
        self.out_dir = out_dir
        self.score_thr = float(score_thr)
        self.max_images = max_images
        self.window_hu = tuple(window_hu)
        self.min_size = int(min_size)
        self.iou_thr = float(iou_thr)
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
            gt = np.zeros((0, 4))
            if 'gt_instances' in sample:
                gt = sample.gt_instances.bboxes
                gt = np.asarray(getattr(gt, 'tensor', gt).cpu(), dtype=np.float64).reshape(-1, 4)
            pred = sample.pred_instances
            keep = (pred.scores >= self.score_thr).cpu().numpy()
            boxes = pred.bboxes.cpu().numpy()[keep].reshape(-1, 4)
            scores = pred.scores.cpu().numpy()[keep]
            iou = box_iou_2d(boxes, gt) if len(boxes) and len(gt) else \
                np.zeros((len(boxes), len(gt)))
            det_hit, gt_hit = (iou >= self.iou_thr).any(1), (iou >= self.iou_thr).any(0)
            draw_boxes(image, gt, [GT_BGR if h else MISS_BGR for h in gt_hit], scale)
            draw_boxes(image, boxes, [HIT_BGR if h else DET_BGR for h in det_hit], scale,
                       labels=[f'{s:.2f}' for s in scores])
            head = np.zeros((16, image.shape[1], 3), np.uint8)
            draw_legend(head, 2, 2)
            image = np.concatenate([head, image], axis=0)
            if meta.get('volume_id') is not None and meta.get('slice_index') is not None:
                name = f'{meta["volume_id"]}_{int(meta["slice_index"]):03d}.png'
            else:
                name = f'{meta.get("img_id", batch_idx)}.png'
            os.makedirs(self.out_dir, exist_ok=True)
            _write_png(osp.join(self.out_dir, name), image)
            self._written += 1
