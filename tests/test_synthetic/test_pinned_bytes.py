"""The generator's output bytes, pinned by SHA-256.

These tests pin *bytes*, not behaviour: any change to what the generator draws or how it writes
(PNG encoding, DL_info formatting, pickles, truth.json) changes the hashes, including changes that
are harmless.  That is the point: datasets generated before and after a refactor must be
identical, and a deliberate change of the output must be a visible decision.

To change the output deliberately: make the change, check the new data (the other tests in this
folder, and a look at the images), then replace the hash below with the one the failing test
prints, and say in the commit message why the bytes changed (old datasets are then not
reproducible with the new code).

The hash covers every file under the output folder: the sorted relative paths, each followed by
its length and bytes.  ``summary.json`` records the wall-clock generation time; its value is
replaced by 0 before hashing.
"""
import hashlib
import os
import re

from mmlesion.synthetic import generate_dataset

# 2 phantom sub-volumes of 96 px, seed 11.  Changed deliberately when phantom patients moved out of
# DeepLesion's 1-4427 to 900001-904427: the names, DL_info's Patient_index and the keys changed,
# every PNG's bytes did not (the draws are seeded with the number without PATIENT_BASE).
PHANTOM_SHA256 = '55936dab46bd30c888d87931afc0104bccdc0e0fe6448562a52036a544e7cead'
# 2 real-anatomy sub-volumes of 96 px, seed 11, held-out lung1.
REAL_SHA256 = '99125ba30e1824b217f4a28aad9c22275e89366045793cd942144a53a33e488a'

_TIME = re.compile(rb'"generation_time_s": [0-9.eE+-]+')


def tree_sha256(root):
    """SHA-256 of every file under ``root`` (see the module docstring)."""
    h = hashlib.sha256()
    paths = []
    for dirpath, _, files in os.walk(root):
        paths += [os.path.relpath(os.path.join(dirpath, f), root) for f in files]
    for rel in sorted(paths):
        with open(os.path.join(root, rel), 'rb') as f:
            data = f.read()
        if os.path.basename(rel) == 'summary.json':
            data = _TIME.sub(b'"generation_time_s": 0', data)
        h.update(rel.encode() + b'\0')
        h.update(len(data).to_bytes(8, 'little'))
        h.update(data)
    return h.hexdigest()


def test_synthetic_patients_are_not_deeplesion_patients():
    """DeepLesion's patients are 1-4427: no synthetic series or key can be taken for one."""
    from mmlesion.synthetic.layout import DEEPLESION_MAX_PATIENT, plan_layout
    from mmlesion.synthetic.nrrd_volume import REAL_CT_IDS
    from mmlesion.synthetic.real_anatomy import plan_real_layout

    assert DEEPLESION_MAX_PATIENT == 4427
    for seed in range(3):
        patients = {lay.patient for lay in plan_layout(400, seed)}
        assert len(patients) > 100 and min(patients) > DEEPLESION_MAX_PATIENT
        assert max(patients) <= 999999  # six digits, as DeepLesion's names
    assert min(p for p, _, _ in REAL_CT_IDS.values()) > DEEPLESION_MAX_PATIENT
    assert {lay.patient for lay in plan_real_layout(10, 0)} <= \
        {p for p, _, _ in REAL_CT_IDS.values()}


def test_phantom_bytes_are_pinned(tmp_path):
    out = str(tmp_path / 'phantom')
    generate_dataset(out, 2, seed=11, image_size=96, workers=1)
    assert tree_sha256(out) == PHANTOM_SHA256, 'the generator wrote other bytes (see docstring)'


def test_real_anatomy_bytes_are_pinned(tmp_path, real_ct_dir):
    out = str(tmp_path / 'real')
    generate_dataset(out, 2, seed=11, image_size=96, anatomy='real', real_ct_dir=real_ct_dir,
                     workers=1)
    assert tree_sha256(out) == REAL_SHA256, 'the generator wrote other bytes (see docstring)'
