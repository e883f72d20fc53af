"""Who is in the synthetic dataset: patients, studies, series, sub-volumes, splits and roles.

The split is by patient (DeepLesion's official split is patient-level): about 70/15/15% of the
sub-volumes (and so of the patients) go to train/val/test, and every split has a patient whenever
there are at least 3 patients (at least 3 sub-volumes are always spread over at least 3
patients).  Among the training
sub-volumes, about 15% form V_M (completely annotated, for the harvest), about 10% V_H^test
(completely annotated, for evaluating the harvest) and the rest V_H.

Patient numbers never collide with DeepLesion's (its patients are 1-4427): phantom patients are
``PATIENT_BASE`` + 1-4427, i.e. 900001-904427 (series ``9PPPPP_SS_RR``, still DeepLesion's
six-digit form); the real-anatomy volumes are patients 9001 and 9002
(:data:`~mmlesion.synthetic.nrrd_volume.REAL_CT_IDS`).  The random draws of a series are seeded
with :func:`draw_index` (the number without ``PATIENT_BASE``), so moving the numbers out of
DeepLesion's range renamed the series and left their images as they were.
"""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

SPLITS = ('train', 'val', 'test')
ROLES = ('V_M', 'V_H', 'V_H_test', 'val', 'test')
_LAYOUT_STREAM = 0x4C41  # keeps the layout's generator apart from the series' generators
DEEPLESION_MAX_PATIENT = 4427  # DeepLesion's patient indices are 1-4427
PATIENT_BASE = 900000  # synthetic phantom patients: PATIENT_BASE + 1 ... PATIENT_BASE + 4427


def draw_index(patient: int) -> int:
    """The number a series' random draws are seeded with: the patient number without
    ``PATIENT_BASE`` (real-anatomy patients 9001/9002 are their own)."""
    return patient - PATIENT_BASE if patient > PATIENT_BASE else patient


@dataclass
class SeriesLayout:
    patient: int
    study: int
    series: int
    n_subvolumes: int
    split: str
    gender: str
    age: Optional[int]  # None: missing in DL_info (empty field)
    roles: List[str]  # one per sub-volume, in slice order


def num_patients(num_volumes: int) -> int:
    """Patients holding ``num_volumes`` sub-volumes: about 2.5 each, at least 3 when possible."""
    return max(min(num_volumes, 3), int(round(num_volumes / 2.5)))


def plan_layout(num_volumes: int, seed: int) -> List[SeriesLayout]:
    """Series of the dataset, sorted by (patient, study, series), with ``num_volumes`` sub-volumes.

    A patient has 1-3 studies, a study 1-2 series, a series 1 sub-volume (sometimes 2: a series
    with two non-contiguous sub-volumes, like DeepLesion).
    """
    if num_volumes < 1:
        raise ValueError(f'num_volumes must be >= 1, got {num_volumes}')
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _LAYOUT_STREAM]))
    n_patients = num_patients(num_volumes)
    per_patient = np.ones(n_patients, dtype=int)
    extra = num_volumes - n_patients
    if extra > 0:
        per_patient += rng.multinomial(extra, np.full(n_patients, 1.0 / n_patients))
    patient_ids = PATIENT_BASE + np.sort(
        rng.choice(np.arange(1, DEEPLESION_MAX_PATIENT + 1), size=n_patients, replace=False))

    # Patient-level split: patients in random order fill test, then val, up to about 15% of the
    # sub-volumes each (a patient that would overshoot 1.5x the target stays in train; a split
    # nobody fits takes the smallest remaining patient).  At least one patient stays in train.
    order = [int(p) for p in rng.permutation(n_patients)]
    split_of = {p: 'train' for p in order}
    targets = []
    if n_patients >= 2:
        targets.append(('test', max(1, int(round(0.15 * num_volumes)))))
    if n_patients >= 3:
        targets.append(('val', max(1, int(round(0.15 * num_volumes)))))
    free = list(order)
    for name, target in targets:
        got = 0
        for p in list(free):
            if got >= target or len(free) <= 1:
                break
            if got + per_patient[p] <= max(1.5 * target, 1):
                split_of[p] = name
                got += int(per_patient[p])
                free.remove(p)
        if got == 0 and len(free) > 1:
            p = min(free, key=lambda q: (per_patient[q], free.index(q)))
            split_of[p] = name
            free.remove(p)
    layouts: List[SeriesLayout] = []
    for p in range(n_patients):
        gender = 'F' if rng.random() < 0.5 else 'M'
        base_age = int(rng.integers(18, 89))
        age_missing = rng.random() < 0.04
        remaining = int(per_patient[p])
        study = 0
        while remaining > 0:
            study += 1 if rng.random() < 0.8 else 2
            n_series = 1 if rng.random() < 0.75 else 2
            for series in range(1, n_series + 1):
                if remaining == 0:
                    break
                n_sub = 2 if remaining >= 2 and rng.random() < 0.2 else 1
                remaining -= n_sub
                age = None if age_missing else base_age + (study - 1) // 2
                layouts.append(SeriesLayout(int(patient_ids[p]), study, series, n_sub,
                                            split_of[p], gender, age, []))

    # Roles of the sub-volumes: val/test by split; train ones drawn into V_M, V_H^test, V_H.
    train_slots = [(i, j) for i, lay in enumerate(layouts) if lay.split == 'train'
                   for j in range(lay.n_subvolumes)]
    for lay in layouts:
        lay.roles = [lay.split if lay.split != 'train' else 'V_H'] * lay.n_subvolumes
    n_train = len(train_slots)
    n_vm = max(1, int(round(0.15 * n_train))) if n_train >= 3 else 0
    n_vht = max(1, int(round(0.10 * n_train))) if n_train >= 4 else 0
    perm = rng.permutation(n_train)
    for rank, t in enumerate(perm):
        i, j = train_slots[t]
        if rank < n_vm:
            layouts[i].roles[j] = 'V_M'
        elif rank < n_vm + n_vht:
            layouts[i].roles[j] = 'V_H_test'
    assert sum(lay.n_subvolumes for lay in layouts) == num_volumes
    return layouts


