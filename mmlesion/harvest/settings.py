"""The settings of a harvest (the ``harvest`` dict of a config in ``configs/harvest/``) and the
sets they name (docs/method.md#harvesting):

* V: the training sub-volumes with their original RECIST marks R (``train_ann``, our JSON);
* V_M ⊂ V: completely annotated (``v_m_ann``; DeepLesion: ``Revised-Train744.pkl``);
* V_H^test ⊂ V: completely annotated, treated like V_H, for Table I (``v_h_test_ann``;
  ``Revised-Train100.pkl``);
* V_H = V minus V_M (V_H^test included), optionally a seeded subset ``v_h_volumes`` of
  V_H minus V_H^test (to size a demo; V_H^test is always kept whole);
* V_M^cal (optional, *ours*): a seeded fraction ``v_m_holdout`` of V_M's volumes held out to
  choose the harvest threshold.  They are treated like V_H (only their RECIST marks reach the
  LPG and the LPC) and their complete labels judge their harvest candidates, so the threshold
  is set on proposals that neither model fitted (docs/method.md#harvest-calibration);
* the test split for Table II (``test_ann``, complete: ``Revised-Test*.pkl``).

Everything is checked before any training (:func:`load_harvest_sets`): a missing file, a V_M or
V_H^test volume that is not a training sub-volume, V_M and V_H^test overlapping, or a series
folder missing under the image root is an error that names the file and volume.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from mmlesion.structures.volume import AnnotationSet, VolumeInfo

from .rules import HARD_NEGATIVE_S_G, HARD_NEGATIVE_TOP_K, PRECISION_TARGET

__all__ = ['HarvestSettings', 'HarvestSets', 'load_harvest_sets', 'holdout_keys']

_PATHS = ('image_root', 'train_ann', 'v_m_ann', 'v_h_test_ann')


@dataclass
class HarvestSettings:
    """The ``harvest`` dict of a harvest config (see ``configs/harvest/``).

    Attributes:
        image_root: DeepLesion's ``Images_png`` folder.
        train_ann: V and R: the training split in our JSON (``tools/convert_deeplesion.py``).
        v_m_ann, v_h_test_ann: complete annotations of V_M and V_H^test.
        test_ann: complete annotation of the test split (Table II); None: no Table II.
        series_info: ``DL_info.csv`` / JSONs with spacing for volumes a file lacks it for.
        rounds: rounds ``--rounds`` runs by default.
        v_h_volumes: a seeded subset of V_H minus V_H^test of this many volumes (None: all).
        seed: seed of that subset and of the V_M^cal draw.
        v_m_holdout: fraction of V_M's volumes (seeded) held out as V_M^cal, on whose harvest
            candidates the threshold is chosen; None: the paper's rule (threshold on all of
            V_M's proposals, which the LPG's and the LPC's training sets contain).
        score_thr: t_G, slice scores stacked into proposals (0.1).
        precision: precision on V_M that sets the harvest threshold (0.95).
        hard_negative_s_g, hard_negative_top_k: the hard-negative rule (0.5, 5).
        lpg: ``config``, ``cfg_options``, ``round1_checkpoint`` with ``round1_train_ann`` (an
            LPG already trained on R ∪ V_M: round 1 reuses it when that file's content equals
            round 1's training file), ``epochs`` (round 1 from scratch; None: the config's),
            ``finetune_epochs`` and ``finetune_cfg_options`` (rounds > 1).
        lpc: ``config``, ``cfg_options``, ``epochs``, ``finetune`` (rounds > 1 start from the
            previous round's LPC; default True).
        scan: ``device``, ``batch_size``, ``num_workers`` of the scans, and optionally the
            GPU speed settings ``amp_dtype``, ``channels_last``, ``cross_volume``,
            ``open_volumes``, ``pin_memory`` (:class:`~mmlesion.apis.VolumePredictor`).
    """
    image_root: str
    train_ann: str
    v_m_ann: str
    v_h_test_ann: str
    test_ann: Optional[str] = None
    series_info: Any = None
    rounds: int = 3
    v_h_volumes: Optional[int] = None
    seed: int = 0
    v_m_holdout: Optional[float] = None
    score_thr: float = 0.1
    precision: float = PRECISION_TARGET
    hard_negative_s_g: float = HARD_NEGATIVE_S_G
    hard_negative_top_k: int = HARD_NEGATIVE_TOP_K
    lpg: Dict[str, Any] = field(default_factory=dict)
    lpc: Dict[str, Any] = field(default_factory=dict)
    scan: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any],
                    where: str = 'harvest config') -> 'HarvestSettings':
        """From the config's ``harvest`` dict.

        Raises:
            ValueError: no ``harvest`` dict, unknown or missing keys, bad values.
        """
        h = cfg.get('harvest')
        if not isinstance(h, Mapping):
            raise ValueError(f'{where}: no `harvest = dict(...)` (see configs/harvest/)')
        h = {k: (v.to_dict() if hasattr(v, 'to_dict') else v) for k, v in dict(h).items()}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(h) - known)
        if unknown:
            raise ValueError(f'{where}: unknown harvest setting(s) {unknown}; known: '
                             f'{sorted(known)}')
        missing = [k for k in _PATHS if not h.get(k)]
        if missing:
            raise ValueError(f'{where}: harvest.{missing[0]} is not set')
        s = cls(**h)
        for part in ('lpg', 'lpc'):
            if not dict(getattr(s, part)).get('config'):
                raise ValueError(f'{where}: harvest.{part}.config is not set')
        if not 0.0 < float(s.precision) <= 1.0:
            raise ValueError(f'{where}: harvest.precision must be in (0, 1], got {s.precision}')
        if int(s.rounds) < 1:
            raise ValueError(f'{where}: harvest.rounds must be >= 1, got {s.rounds}')
        if s.v_h_volumes is not None and int(s.v_h_volumes) < 0:
            raise ValueError(f'{where}: harvest.v_h_volumes must be >= 0 or None')
        if s.v_m_holdout is not None and not 0.0 < float(s.v_m_holdout) < 1.0:
            raise ValueError(f'{where}: harvest.v_m_holdout must be a fraction in (0, 1) or '
                             f'None, got {s.v_m_holdout}')
        return s

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class HarvestSets:
    """The volume sets of a harvest, read and checked.

    Attributes:
        train: the annotation set of ``train_ann`` (V with R).
        v_m: complete annotation of V_M as the models use it (without V_M^cal).
        v_h_test: complete annotation of V_H^test.
        v_h_keys: the V_H volumes scanned (V_H^test and V_M^cal included), sorted.
        scan_volumes: VolumeInfo of V_M ∪ V_H as scanned, by key.
        v_m_cal: complete annotation of V_M^cal (``v_m_holdout``), or None.
    """
    train: AnnotationSet
    v_m: AnnotationSet
    v_h_test: AnnotationSet
    v_h_keys: List[str]
    scan_volumes: Dict[str, VolumeInfo]
    v_m_cal: Optional[AnnotationSet] = None

    @property
    def v_m_keys(self) -> List[str]:
        return list(self.v_m.volumes)

    def counts(self) -> Dict[str, int]:
        out = dict(V=len(self.train.volumes), V_M=len(self.v_m.volumes),
                   V_H=len(self.v_h_keys), V_H_test=len(self.v_h_test.volumes),
                   R_marks=self.train.num_boxes, V_M_marks=self.v_m.num_boxes,
                   V_H_test_marks=self.v_h_test.num_boxes)
        if self.v_m_cal is not None:
            out.update(V_M_cal=len(self.v_m_cal.volumes), V_M_cal_marks=self.v_m_cal.num_boxes)
        return out


def holdout_keys(keys: List[str], fraction: float, seed: int) -> List[str]:
    """The seeded ``round(fraction * n)`` of ``keys`` held out (at least 1, at most n-1),
    sorted; the same keys in any order give the same draw."""
    keys = sorted(keys)
    n = min(max(int(round(float(fraction) * len(keys))), 1), len(keys) - 1)
    if n <= 0:
        return []
    # a seed apart from the V_H subset's, so that changing one draw leaves the other alone
    rng = np.random.default_rng([int(seed), 1])
    return sorted(rng.choice(keys, size=n, replace=False).tolist())


def _need_file(path: Optional[str], what: str) -> str:
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'harvest.{what}: file not found: {path}')
    return path


def load_harvest_sets(s: HarvestSettings, check_images: bool = True) -> HarvestSets:
    """Read and check the sets of ``s`` (before any training).

    Raises:
        FileNotFoundError: a missing annotation file, image root or series folder.
        ValueError: V_M / V_H^test volumes that are not training sub-volumes, overlapping V_M
            and V_H^test, an empty V_M.
    """
    from mmlesion.apis.inference import check_series_folders
    from mmlesion.evaluation.annotation_set import load_annotation_set

    for what in ('train_ann', 'v_m_ann', 'v_h_test_ann'):
        _need_file(getattr(s, what), what)
    if s.test_ann:
        _need_file(s.test_ann, 'test_ann')
    if not osp.isdir(s.image_root):
        raise FileNotFoundError(f'harvest.image_root: folder not found: {s.image_root}')
    train = load_annotation_set(s.train_ann)
    v_m = load_annotation_set(s.v_m_ann)
    v_h_test = load_annotation_set(s.v_h_test_ann)
    if not v_m.volumes:
        raise ValueError(f'{s.v_m_ann}: V_M has no volume')
    for ann, name in ((v_m, 'V_M'), (v_h_test, 'V_H^test')):
        absent = [k for k in ann.volumes if k not in train.volumes]
        if absent:
            raise ValueError(f'{ann.path}: {len(absent)} {name} volume(s) are not training '
                             f'sub-volumes of {s.train_ann}, e.g. {absent[:3]}')
    both = sorted(set(v_m.volumes) & set(v_h_test.volumes))
    if both:
        raise ValueError(f'V_M ({s.v_m_ann}) and V_H^test ({s.v_h_test_ann}) share '
                         f'{len(both)} volume(s), e.g. {both[:3]}')
    rest = sorted(set(train.volumes) - set(v_m.volumes) - set(v_h_test.volumes))
    if s.v_h_volumes is not None and int(s.v_h_volumes) < len(rest):
        rng = np.random.default_rng(int(s.seed))
        rest = sorted(rng.choice(rest, size=int(s.v_h_volumes), replace=False).tolist())
    v_m_cal = None
    if s.v_m_holdout is not None:
        if len(v_m.volumes) < 2:
            raise ValueError(f'{s.v_m_ann}: harvest.v_m_holdout needs V_M to have at least 2 '
                             f'volumes, it has {len(v_m.volumes)}')
        cal = holdout_keys(list(v_m.volumes), float(s.v_m_holdout), int(s.seed))
        v_m_cal = v_m.subset(cal)
        v_m = v_m.subset(sorted(set(v_m.volumes) - set(cal)))
    v_h_keys = sorted(rest + list(v_h_test.volumes) + (v_m_cal.keys if v_m_cal else []))
    scan_keys = sorted(list(v_m.volumes) + v_h_keys)
    scan_volumes = {k: train.volumes[k] for k in scan_keys}
    if check_images:
        check_series_folders(list(scan_volumes.values()), s.image_root, s.train_ann)
    return HarvestSets(train, v_m, v_h_test, v_h_keys, scan_volumes, v_m_cal)
