"""The training annotation files of harvest rounds, in mmlesion's COCO-style JSON
(docs/data_format.md; docs/method.md#harvesting, steps 1 and 6).

* Round 1 trains the LPG on the original RECIST marks R plus the complete marks of V_M:
  :func:`merge_complete_marks`.
* Each round adds, for every 3D proposal of ``P_M^R ∪ P_M^- ∪ P_H^R ∪ P_H^+ ∪ P_H^-``, the 2D
  box on its top-objectness slice (paper Sec. III-E: "only the 2D slices with the highest
  objectness score within each proposal ... are used"): positives (``P_M^R``, ``P_H^R``,
  ``P_H^+``) as lesions, ``P_M^-`` and ``P_H^-`` as ``hard_negative`` annotations that reach the
  HNSL (:func:`add_proposal_boxes`).  The pool grows over rounds (paper:
  ``P_i = P_{i-1} ∪ P_H,i^+ ∪ P_H,i^- ∪ P_M,i^-``).

Deduplication *(ours)*, on each slice, with continuous-corner IoU:

* a positive box with IoU >= 0.5 with a lesion already marked there is the same lesion: skipped;
* a new positive removes hard negatives it overlaps (a later round's verdict wins);
* a hard negative that overlaps any lesion box on its slice is skipped: HNSL overwrites the
  positive heat map with the negative one, so it would erase that lesion's peak; a hard negative
  with IoU >= 0.5 with an earlier one is a duplicate.

Images are kept one per (volume, slice), sorted by volume then slice, ids renumbered from 1.
"""
import copy
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mmlesion.structures.boxes import box_iou_2d
from mmlesion.structures.volume import AnnotationSet, VolumeInfo
from mmlesion.structures.volume_key import parse_volume_key, slice_file_name

__all__ = ['ProposalBox', 'merge_complete_marks', 'add_proposal_boxes', 'renumber',
           'SAME_LESION_IOU']

SAME_LESION_IOU = 0.5
_IMAGE_KEYS_FROM_SIBLING = ('width', 'height', 'series', 'slice_range', 'spacing',
                            'slice_interval', 'dicom_window', 'split', 'patient_index',
                            'study_index', 'series_id', 'gender', 'age')


class ProposalBox(NamedTuple):
    """One 2D training box taken from a 3D proposal (mmlesion frame: 0-based x/y, absolute z).

    Attributes:
        key: sub-volume key.
        z: the slice (the proposal's top-objectness slice).
        box: ``[x1, y1, x2, y2]`` continuous corners, px.
        hard_negative: True for P_M^- / P_H^-.
        source: annotation ``source`` (``'harvested'`` or ``'mined_3d'``).
        score: the proposal's score (``s_g * s_c`` for P_H^+, ``s_g`` otherwise).
        pool: ``'P_M^R'``, ``'P_M^-'``, ``'P_H^R'``, ``'P_H^+'`` or ``'P_H^-'``.
        round: the harvest round that produced it.
    """
    key: str
    z: int
    box: Tuple[float, float, float, float]
    hard_negative: bool
    source: str
    score: float
    pool: str
    round: int


def _xyxy(ann: Mapping[str, Any]) -> np.ndarray:
    x, y, w, h = (float(v) for v in ann['bbox'])
    return np.array([x, y, x + w, y + h])


def _new_annotation(box: Sequence[float], **fields) -> dict:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = round(x2 - x1, 3), round(y2 - y1, 3)
    ann = OrderedDict(id=0, image_id=0, category_id=1, bbox=[round(x1, 3), round(y1, 3), w, h],
                      area=round(w * h, 3), iscrowd=0, recist=None, diameters_px=None,
                      lesion_type=-1, noisy=False, source='harvested', hard_negative=False,
                      csv_row=None)
    ann.update(fields)
    return ann


class _Index:
    """Images by (volume, slice) and annotations by image, over a COCO dict being edited."""

    def __init__(self, coco: dict, volumes: Optional[Mapping[str, VolumeInfo]] = None):
        self.coco = coco
        self.volumes = volumes or {}
        self.images: Dict[Tuple[str, int], dict] = {}
        self.sibling: Dict[str, dict] = {}
        self.anns: Dict[int, List[dict]] = {}
        self.volume_entries = {v['id']: v for v in coco.get('volumes', [])}
        for im in coco['images']:
            self.images[(im['volume_id'], int(im['slice_index']))] = im
            self.sibling.setdefault(im['volume_id'], im)
        for a in coco['annotations']:
            self.anns.setdefault(a['image_id'], []).append(a)
        self.next_image_id = max((im['id'] for im in coco['images']), default=0) + 1
        self.next_ann_id = max((a['id'] for a in coco['annotations']), default=0) + 1

    def image(self, key: str, z: int, where: str) -> dict:
        im = self.images.get((key, z))
        if im is not None:
            return im
        vk = parse_volume_key(key)
        if not vk.start <= z <= vk.end:
            raise ValueError(f'{where}: slice {z} is outside sub-volume {key}')
        sib = self.sibling.get(key)
        if sib is not None:
            meta = {k: copy.deepcopy(sib[k]) for k in _IMAGE_KEYS_FROM_SIBLING if k in sib}
        else:
            vol = self.volume_entries.get(key)
            info = self.volumes.get(key)
            size = info.image_size if info is not None else None
            if vol is None or size is None:
                raise ValueError(f'{where}: sub-volume {key} has no image in the annotation '
                                 'file and its image size is unknown; is it a training volume '
                                 'of this file?')
            spacing = vol.get('spacing')
            meta = dict(width=int(size[0]), height=int(size[1]), series=vk.series_name,
                        slice_range=[vk.start, vk.end], spacing=spacing,
                        slice_interval=None if not spacing else spacing[2],
                        dicom_window=None, split=vol.get('split', 'train'),
                        patient_index=vk.patient, study_index=vk.study, series_id=vk.series,
                        gender=None, age=None)
        im = OrderedDict(id=self.next_image_id, file_name=slice_file_name(vk.series_name, z))
        im.update(meta)
        im['volume_id'] = key
        im['slice_index'] = int(z)
        self.next_image_id += 1
        self.coco['images'].append(im)
        self.images[(key, z)] = im
        self.sibling.setdefault(key, im)
        return im

    def add(self, im: dict, ann: dict) -> None:
        ann['id'], ann['image_id'] = self.next_ann_id, im['id']
        self.next_ann_id += 1
        self.coco['annotations'].append(ann)
        self.anns.setdefault(im['id'], []).append(ann)

    def remove(self, im: dict, drop: Sequence[dict]) -> None:
        ids = {id(a) for a in drop}
        self.anns[im['id']] = [a for a in self.anns.get(im['id'], []) if id(a) not in ids]
        self.coco['annotations'] = [a for a in self.coco['annotations'] if id(a) not in ids]

    def boxes(self, im: Optional[dict], hard_negative: bool) -> Tuple[List[dict], np.ndarray]:
        anns = [] if im is None else [a for a in self.anns.get(im['id'], [])
                                      if bool(a.get('hard_negative')) == hard_negative
                                      and not a.get('iscrowd')]
        return anns, np.array([_xyxy(a) for a in anns]).reshape(-1, 4)


def _iou(box: Sequence[float], others: np.ndarray) -> np.ndarray:
    if len(others) == 0:
        return np.zeros(0)
    return box_iou_2d(np.asarray(box, dtype=np.float64)[None, :4], others,
                             plus_one=False)[0]


def renumber(coco: dict) -> dict:
    """Sort images by (volume, slice) and annotations by (image, id); ids from 1, in place."""
    images = sorted(coco['images'], key=lambda im: (im['volume_id'], int(im['slice_index'])))
    new_id = {im['id']: i + 1 for i, im in enumerate(images)}
    for im in images:
        im['id'] = new_id[im['id']]
    anns = sorted(coco['annotations'], key=lambda a: (new_id[a['image_id']], a['id']))
    for i, a in enumerate(anns):
        a['image_id'], a['id'] = new_id[a['image_id']], i + 1
    coco['images'], coco['annotations'] = images, anns
    return coco


def merge_complete_marks(base: dict, complete: AnnotationSet, source: str = 'revised',
                         description: Optional[str] = None) -> Tuple[dict, Dict[str, int]]:
    """R ∪ the complete marks of V_M: the training file of round 1.

    Args:
        base: the training JSON (R: the original marks of every training sub-volume).
        complete: the complete annotation of V_M (e.g. ``Revised-Train744.pkl``); every
            volume must be in ``base``.
        source: ``source`` of the added marks.

    Returns:
        ``(new JSON, counts)``: ``added`` marks, ``already_marked`` (the R mark of the same
        lesion), ``volumes`` made complete.

    Raises:
        ValueError: a V_M volume that is not a sub-volume of ``base``.
    """
    coco = copy.deepcopy(base)
    idx = _Index(coco)
    missing = [k for k in complete.volumes if k not in idx.volume_entries]
    if missing:
        raise ValueError(f'{complete.path}: {len(missing)} completely annotated volume(s) are '
                         f'not training sub-volumes of the base annotation file, e.g. '
                         f'{missing[:3]}')
    counts = dict(added=0, already_marked=0, volumes=len(complete.volumes))
    for key in complete.volumes:
        idx.volume_entries[key]['complete'] = True
        for row in np.asarray(complete.boxes_2d[key], dtype=np.float64).reshape(-1, 5):
            z, box = int(round(row[0])), row[1:5]
            im = idx.image(key, z, complete.path)
            _, pos = idx.boxes(im, hard_negative=False)
            if (_iou(box, pos) >= SAME_LESION_IOU).any():
                counts['already_marked'] += 1
                continue
            idx.add(im, _new_annotation(box, source=source))
            counts['added'] += 1
    if description:
        coco.setdefault('info', {})['description'] = description
    return renumber(coco), counts


def add_proposal_boxes(base: dict, entries: Sequence[ProposalBox],
                       volumes: Optional[Mapping[str, VolumeInfo]] = None,
                       description: Optional[str] = None) -> Tuple[dict, Dict[str, int]]:
    """Add the top-slice boxes of a round's proposals to a training JSON (see the module
    docstring for the deduplication rules).

    Args:
        base: the previous training JSON (not modified).
        entries: the boxes; positives are added before hard negatives.
        volumes: VolumeInfo by key, for the image size of volumes without any image in
            ``base``.

    Returns:
        ``(new JSON, counts)`` with ``positives`` / ``hard_negatives`` added and
        ``duplicates`` / ``overlapping_lesion`` / ``replaced_hard_negatives``.
    """
    coco = copy.deepcopy(base)
    idx = _Index(coco, volumes)
    counts = dict(positives=0, hard_negatives=0, duplicates=0, overlapping_lesion=0,
                  replaced_hard_negatives=0)
    ordered = sorted(entries, key=lambda e: bool(e.hard_negative))  # stable: positives first
    for e in ordered:
        where = f'{e.pool} proposal of {e.key}'
        im = idx.image(e.key, int(e.z), where)
        _, pos = idx.boxes(im, hard_negative=False)
        neg_anns, neg = idx.boxes(im, hard_negative=True)
        fields = dict(source=e.source, hard_negative=bool(e.hard_negative),
                      score=round(float(e.score), 6), harvest_pool=e.pool,
                      harvest_round=int(e.round))
        if not e.hard_negative:
            if (_iou(e.box, pos) >= SAME_LESION_IOU).any():
                counts['duplicates'] += 1
                continue
            over = _iou(e.box, neg) > 0
            if over.any():
                idx.remove(im, [a for a, o in zip(neg_anns, over) if o])
                counts['replaced_hard_negatives'] += int(over.sum())
            idx.add(im, _new_annotation(e.box, **fields))
            counts['positives'] += 1
        else:
            if (_iou(e.box, pos) > 0).any():
                counts['overlapping_lesion'] += 1
                continue
            if (_iou(e.box, neg) >= SAME_LESION_IOU).any():
                counts['duplicates'] += 1
                continue
            idx.add(im, _new_annotation(e.box, **fields))
            counts['hard_negatives'] += 1
    if description:
        coco.setdefault('info', {})['description'] = description
    return renumber(coco), counts
