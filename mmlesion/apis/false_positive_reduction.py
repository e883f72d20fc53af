"""Two-stage 3D false-positive reduction: the second stage, re-scoring 3D proposals with a 3D CNN.

The convnet3d seed's shape (docs/method.md#fpr3d): stage 1 screens candidates, stage 2 is a 3D
CNN on a voxel cube around each candidate that *rejects false positives* -- it re-scores the
candidates and does not regress them.  Here stage 1 is the LPG's volume scan (slice detections
Kalman-stacked into tracklets, docs/method.md#stacking) and stage 2 a lesion proposal classifier
(the 3D ResNet-18 ``LPC3D`` on a ``(25, 60, 60)`` cube, ``z, y, x``, cut as the LPC cuts its
patches, docs/proposals.md#patches).  A proposal's lesion score is ``s = s_g * s_c`` (paper
Eq. 2): every slice score of the tracklet is multiplied by the classifier's ``s_c``, so the
tracklet score (the max slice score) becomes ``s_g * s_c`` while every box stays where stage 1
put it.  The result is an ordinary list of tracklets: P3D, ``tools/eval_p3d.py`` and the Lesion
Harvester detection files read it as any detector's.

:class:`TrackletRescorer` holds the classifier and its patch settings (from the classifier's
config, so the patches are the ones it was trained on); ``VolumeScanTestLoop(rescore=...)``
applies it to every scanned volume.
"""
import inspect
from typing import List, Mapping, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate

from mmlesion.datasets import lpc_patches as lp
from mmlesion.structures.tracklet import Tracklet, as_tracklets

__all__ = ['TrackletRescorer', 'rescore_tracklets', 'PATCH_KEYS']

# the ProposalPatchDataset arguments that define a patch
PATCH_KEYS = ('mode', 'views', 'patch_size', 'pad_px', 'keep_aspect', 'window_hu', 'out_range',
              'unknown_interval_mm')


def rescore_tracklets(tracklets: Sequence, s_c: Sequence[float]) -> List[Tracklet]:
    """The tracklets with every slice score multiplied by their classifier score.

    Args:
        tracklets: ``T`` tracklets (``Tracklet`` or anything :func:`as_tracklets` reads):
            absolute slice indices ``z`` and boxes ``[x1, y1, x2, y2, score]`` (0-based px).
        s_c: ``T`` probabilities in ``[0, 1]``, one per tracklet, in the same order.

    Returns:
        ``T`` new tracklets: the same ``z``, box corners and ``filled`` flags; scores
        ``score * s_c``, so each tracklet's score (its max slice score ``s_g``) is
        ``s_g * s_c``.  Order unchanged (P3D sorts by score itself).
    """
    tracklets = as_tracklets(tracklets)
    s_c = np.asarray(s_c, dtype=np.float64).reshape(-1)
    if len(s_c) != len(tracklets):
        raise ValueError(f'rescore_tracklets: {len(tracklets)} tracklets but {len(s_c)} '
                         'classifier scores')
    if len(s_c) and (not np.isfinite(s_c).all() or s_c.min() < 0 or s_c.max() > 1):
        raise ValueError('rescore_tracklets: classifier scores must be probabilities in [0, 1], '
                         f'got {s_c.min():g} .. {s_c.max():g}')
    out = []
    for t, s in zip(tracklets, s_c):
        boxes = t.boxes.copy()
        boxes[:, 4] *= s
        out.append(Tracklet(t.z.copy(), boxes, None if t.filled is None else t.filled.copy()))
    return out


def _dataset_defaults() -> dict:
    from mmlesion.datasets.lpc_dataset import ProposalPatchDataset
    params = inspect.signature(ProposalPatchDataset.__init__).parameters
    return {k: params[k].default for k in PATCH_KEYS}


class TrackletRescorer:
    """Stage 2 of the two-stage false-positive reduction: ``s_c`` of every tracklet of a volume
    from a lesion proposal classifier, and the re-scored tracklets.

    Args:
        classifier: an LPC (``LPC3D``, ``MultiViewLPC``, ``AxialLPC``) in eval mode, with
            ``cfg`` (its config: the test dataset's patch settings and pipeline are used).
        batch_size: proposals per forward pass.
    """

    def __init__(self, classifier: torch.nn.Module, batch_size: int = 32) -> None:
        cfg = getattr(classifier, 'cfg', None)
        if cfg is None:
            raise ValueError('TrackletRescorer: the classifier has no .cfg (build it with '
                             'TrackletRescorer.from_config or init_lesion_detector)')
        if int(batch_size) < 1:
            raise ValueError(f'TrackletRescorer: batch_size must be >= 1, got {batch_size}')
        self.classifier = classifier
        self.batch_size = int(batch_size)
        ds = dict(cfg.test_dataloader.dataset)
        self.patch_cfg = {k: ds.get(k, v) for k, v in _dataset_defaults().items()}
        if self.patch_cfg['mode'] not in ('views', 'cube'):
            raise ValueError(f"TrackletRescorer: the classifier's patches must be 'views' or "
                             f"'cube', got mode={self.patch_cfg['mode']!r}")
        if isinstance(self.patch_cfg['patch_size'], list):
            self.patch_cfg['patch_size'] = tuple(self.patch_cfg['patch_size'])
        self.pipeline = Compose(list(ds.get('pipeline') or [dict(type='PackLPCInputs')]))
        self.num_classified = 0  # proposals classified so far

    @classmethod
    def from_config(cls, config, checkpoint: Optional[str], device: str = 'cpu',
                    cfg_options: Optional[dict] = None, trust_checkpoint: bool = False,
                    batch_size: int = 32) -> 'TrackletRescorer':
        """Build the classifier of ``config`` with the weights of ``checkpoint`` (None: random
        initialisation, for tests); see :func:`mmlesion.apis.init_lesion_detector`."""
        from .inference import init_lesion_detector
        if isinstance(config, Mapping) and not isinstance(config, Config):
            config = Config(dict(config))
        model = init_lesion_detector(config, checkpoint, device=device, cfg_options=cfg_options,
                                     trust_checkpoint=trust_checkpoint)
        return cls(model, batch_size=batch_size)

    def patches(self, volume: Mapping[int, np.ndarray], tracklets: Sequence, pixel_mm: float,
                slice_interval_mm: Optional[float]) -> List[np.ndarray]:
        """The classifier's input patch of every tracklet (:func:`lp.extract_volume_patches`).

        Args:
            volume: ``{absolute z: H x W HU}``, the sub-volume's slices (one decode).
            tracklets: its proposals.
            pixel_mm, slice_interval_mm: spacing in mm.

        Returns:
            per tracklet a float32 array, ``(D, H, W)`` cube or ``(V, H, W)`` views, windowed.
        """
        p = self.patch_cfg
        return lp.extract_volume_patches(
            volume, tracklets, pixel_mm, slice_interval_mm, mode=p['mode'], views=p['views'],
            size=p['patch_size'], pad_px=p['pad_px'], keep_aspect=p['keep_aspect'],
            window_hu=p['window_hu'], out_range=p['out_range'],
            unknown_interval_mm=p['unknown_interval_mm'])

    @torch.no_grad()
    def classify(self, volume: Mapping[int, np.ndarray], tracklets: Sequence, pixel_mm: float,
                 slice_interval_mm: Optional[float]) -> np.ndarray:
        """``s_c`` of every tracklet, ``(T,)`` float64 in ``[0, 1]`` (arguments as
        :meth:`patches`)."""
        tracklets = as_tracklets(tracklets)
        if not tracklets:
            return np.zeros(0, dtype=np.float64)
        patches = self.patches(volume, tracklets, pixel_mm, slice_interval_mm)
        mode, views = self.patch_cfg['mode'], tuple(self.patch_cfg['views'])
        axes = lp.patch_axes(mode, views)
        scores = []
        for start in range(0, len(patches), self.batch_size):
            samples = [self.pipeline(dict(img=patch, mode=mode, patch_axes=axes,
                                          views=views if mode == 'views' else (),
                                          label=-1, s_g=float(t.score)))
                       for patch, t in zip(patches[start:start + self.batch_size],
                                           tracklets[start:start + self.batch_size])]
            outputs = self.classifier.test_step(pseudo_collate(samples))
            scores += [float(o.pred_score) for o in outputs]
        self.num_classified += len(scores)
        return np.asarray(scores, dtype=np.float64)

    def __call__(self, volume: Mapping[int, np.ndarray], tracklets: Sequence, pixel_mm: float,
                 slice_interval_mm: Optional[float]) -> List[Tracklet]:
        """The volume's tracklets re-scored, ``s = s_g * s_c`` (:func:`rescore_tracklets`)."""
        return rescore_tracklets(tracklets, self.classify(volume, tracklets, pixel_mm,
                                                          slice_interval_mm))
