"""Finished volumes of a long scan on disk, one file per volume, so that a scan resumes.

A scan of DeepLesion's training volumes takes hours and every harvest round runs one.  Each
finished volume's prediction is written at once, atomically (temporary file + rename, so a kill
leaves either the whole file or none), to ``<root>/<fingerprint>/<volume key>.npz``; a rerun
loads the volumes found there instead of decoding and predicting them again.  Files of different
ranks never collide (a volume belongs to one rank), so distributed scans resume too, with any
number of ranks.

The *fingerprint* (:func:`scan_fingerprint`) names what the predictions depend on: the model's
weights (a hash of every tensor of its state dict, whichever file they came from), the model and
test-pipeline configuration, the stacking settings and the batch size.  A different checkpoint
or config gives another fingerprint, hence another folder: the scan starts afresh and the old
records stay as they are.  The annotation set is not part of it (a volume's prediction does not
depend on which set lists it); its ground truth is attached when the records are evaluated.

Record layout (``numpy.savez``, no pickled objects): ``z`` ``(B,)`` int64, ``boxes`` ``(B, 5)``
float64 ``[x1, y1, x2, y2, score]``, ``filled`` ``(B,)`` bool, ``lengths`` ``(T,)`` int64 (the
tracklets, concatenated, in the scan's order) and ``meta``, a JSON string with the key, slice
range, image size, number of slices, bad slices and error.  Slice detections before stacking are
not kept.
"""
import hashlib
import json
import logging
import os
import os.path as osp
from typing import Any, Iterable, Optional, Set

import numpy as np
import torch
from mmengine.logging import print_log

from mmlesion.structures.tracklet import Tracklet
from mmlesion.structures.volume import VolumeInfo
from mmlesion.utils.fileio import atomic_open

from .inference import VolumePrediction, VolumePredictor

__all__ = ['ScanRecords', 'scan_fingerprint', 'RECORD_VERSION']

RECORD_VERSION = 1


def _state_dict_digest(model) -> str:
    module = getattr(model, 'module', model)  # DDP wrappers hold the model in .module
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype, bf16 too
    return h.hexdigest()


def scan_fingerprint(model, predictor: VolumePredictor, model_cfg: Any = None) -> str:
    """A 16-hex-digit name for what a scan's predictions depend on (see the module doc).

    Args:
        model: the detector (its weights are hashed).
        predictor: the scan's predictor (pipeline, stacking, batch size, precision).
        model_cfg: the model's config (test-time settings such as ``topk`` live there).
    """
    if hasattr(model_cfg, 'to_dict'):  # ConfigDict -> plain; json then writes tuples as lists
        model_cfg = model_cfg.to_dict()
    settings = dict(
        version=RECORD_VERSION, model_cfg=model_cfg,
        loader=repr(predictor.loader), transforms=[repr(t) for t in predictor.transforms],
        stack=predictor.stack_cfg, batch_size=predictor.batch_size, fp16=predictor.fp16)
    # the GPU path's settings change detections (to float tolerance, or by precision): named
    # only when on, so that the records of scans without them keep their fingerprint
    for key in ('amp_dtype', 'channels_last', 'cross_volume', 'compile'):
        if getattr(predictor, key, None):
            settings[key] = getattr(predictor, key)
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(_state_dict_digest(model).encode())
    return h.hexdigest()[:16]


class ScanRecords:
    """The per-volume records of one scan configuration under ``root/fingerprint``.

    Args:
        root: folder of all scans' records (e.g. ``<work_dir>/volume_scan``).
        fingerprint: :func:`scan_fingerprint` of the scan.
    """

    def __init__(self, root: str, fingerprint: str) -> None:
        self.dir = osp.join(root, fingerprint)
        self.fingerprint = fingerprint

    def path(self, key: str) -> str:
        return osp.join(self.dir, f'{key}.npz')

    def finished(self, keys: Iterable[str]) -> Set[str]:
        """The keys among ``keys`` whose record exists."""
        if not osp.isdir(self.dir):
            return set()
        present = set(os.listdir(self.dir))
        return {k for k in keys if f'{k}.npz' in present}

    def save(self, pred: VolumePrediction) -> str:
        """Write one volume's record atomically; returns its path."""
        os.makedirs(self.dir, exist_ok=True)
        trks = pred.tracklets
        meta = dict(version=RECORD_VERSION, key=pred.volume.key,
                    slice_range=[int(v) for v in pred.volume.slice_range],
                    image_size=None if pred.image_size is None else list(pred.image_size),
                    num_slices=int(pred.num_slices),
                    bad_slices=[list(b) for b in pred.bad_slices], error=pred.error)
        arrays = dict(
            z=np.concatenate([t.z for t in trks]) if trks else np.zeros(0, np.int64),
            boxes=np.concatenate([t.boxes for t in trks]) if trks else np.zeros((0, 5)),
            filled=np.concatenate([t.filled for t in trks]) if trks else np.zeros(0, bool),
            lengths=np.array([len(t) for t in trks], dtype=np.int64),
            meta=np.array(json.dumps(meta)))
        path = self.path(pred.volume.key)
        with atomic_open(path, 'wb') as f:
            np.savez(f, **arrays)
        return path

    def load(self, volume: VolumeInfo) -> Optional[VolumePrediction]:
        """The record of ``volume`` as a :class:`VolumePrediction` (no slice detections), or None
        when it is absent or unreadable (then the volume is scanned again)."""
        path = self.path(volume.key)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data['meta']))
                z, boxes, filled = data['z'], data['boxes'], data['filled']
                lengths = data['lengths']
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as e:
            print_log(f'ScanRecords: {path} is unreadable ({e}); the volume is scanned again',
                      logger='current', level=logging.WARNING)
            return None
        if meta.get('version') != RECORD_VERSION or meta.get('key') != volume.key:
            return None
        starts = np.cumsum(lengths) - lengths
        tracklets = [Tracklet(z[s:s + n], boxes[s:s + n], filled[s:s + n])
                     for s, n in zip(starts.tolist(), lengths.tolist())]
        size = meta.get('image_size')
        return VolumePrediction(
            volume=volume, tracklets=tracklets, image_size=None if size is None else tuple(size),
            num_slices=int(meta.get('num_slices', 0)), num_decoded=0,
            bad_slices=[tuple(b) for b in meta.get('bad_slices') or []], error=meta.get('error'))
