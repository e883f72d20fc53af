"""Montages of multi-slice (2.5D) network inputs with their boxes, for eyeballing the data path.

Network inputs are HU windowed to [-1024, 3071] and mapped to [0, 255]
(docs/method.md#data-input; or a composite window, see
:func:`mmlesion.datasets.slice_sampling.apply_window`), which shows soft tissue with little
contrast; for display every channel is mapped back to HU and re-windowed to a display window
(default the abdominal soft-tissue window [-175, 275] HU).
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.slice_sampling import DEFAULT_WINDOW_HU, WindowSpec, window_to_hu
from mmlesion.utils import atomic_write_bytes

POSITIVE_BGR = (60, 20, 220)  # crimson: lesions
HARD_NEGATIVE_BGR = (255, 170, 0)  # azure: hard negatives


def input_to_display(channel: np.ndarray,
                     input_window_hu: WindowSpec = DEFAULT_WINDOW_HU,
                     input_range: Tuple[float, float] = (0, 255),
                     display_window_hu: Tuple[float, float] = (-175, 275)) -> np.ndarray:
    """Map one input channel (H x W, network scale; windowed with ``input_window_hu`` onto
    ``input_range``) to a uint8 display image in another HU window."""
    hu = window_to_hu(channel, input_window_hu, input_range)
    lo_d, hi_d = display_window_hu
    return (np.clip((hu - lo_d) / max(hi_d - lo_d, 1e-6), 0, 1) * 255).round().astype(np.uint8)


def multislice_row(image: np.ndarray,
                   boxes: Optional[np.ndarray] = None,
                   hard_negatives: Optional[np.ndarray] = None,
                   key_channel: Optional[int] = None,
                   title: str = '',
                   display_window_hu: Tuple[float, float] = (-175, 275),
                   tile_px: int = 160,
                   input_window_hu: WindowSpec = DEFAULT_WINDOW_HU) -> np.ndarray:
    """One sample as a row of its C channels (most superior first), boxes drawn on the key channel.

    Args:
        image: H x W x C float array in network scale (0-255 over [-1024, 3071] HU).
        boxes: n x 4 [x1, y1, x2, y2] 0-based pixels of ``image``; lesions.
        hard_negatives: m x 4, same frame; drawn in another colour.
        key_channel: channel holding the key slice (default C // 2).
        title: text written on the first tile.
        input_window_hu: the window ``image`` was made with (the loader's ``window_hu``).

    Returns:
        uint8 BGR image of shape tile_px x (C * tile_px) x 3.
    """
    h, w, c = image.shape
    key_channel = c // 2 if key_channel is None else key_channel
    scale = tile_px / max(h, w)
    tiles = []
    for ch in range(c):
        gray = input_to_display(image[..., ch], input_window_hu=input_window_hu,
                                display_window_hu=display_window_hu)
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
        tile = np.zeros((tile_px, tile_px, 3), np.uint8)
        tile[:gray.shape[0], :gray.shape[1]] = gray[..., None]
        if ch == key_channel:
            for bxs, color in ((boxes, POSITIVE_BGR), (hard_negatives, HARD_NEGATIVE_BGR)):
                for x1, y1, x2, y2 in (np.zeros((0, 4)) if bxs is None else np.asarray(bxs)):
                    cv2.rectangle(tile, (int(x1 * scale), int(y1 * scale)),
                                  (int(round(x2 * scale)), int(round(y2 * scale))), color, 1)
        # slice groups of 3 channels (MULAN) are separated by a brighter frame line
        frame = (90, 90, 90) if ch % 3 else (200, 200, 200)
        cv2.line(tile, (0, 0), (0, tile_px - 1), frame, 1)
        cv2.putText(tile, f'{ch}{"*" if ch == key_channel else ""}', (3, tile_px - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    row = np.concatenate(tiles, axis=1)
    if title:
        cv2.putText(row, title, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return row


def save_montage(path: str, rows: Sequence[np.ndarray]) -> None:
    """Stack rows (padded to the widest) and write a PNG atomically."""
    if not rows:
        raise ValueError('save_montage needs at least one row')
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows]
    ok, buf = cv2.imencode('.png', np.concatenate(padded, axis=0))
    if not ok:
        raise RuntimeError(f'could not encode montage for {path}')
    atomic_write_bytes(path, buf.tobytes())
