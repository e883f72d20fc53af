"""CT-like anatomy of one synthetic series: body wall, lungs or abdominal organs, bone.

The anatomy of a series is a list of :class:`~.shapes.Organ` painted in order (later covers
earlier), in pixel units of the series' images.  It scales with the image: the body fills about
80% of the field of view whatever the image size, as a CT technologist sets the field of view to
the patient, while the pixel spacing stays in DeepLesion's 0.6-0.98 mm range.  Tissue values
(HU) follow contrast-enhanced portal-venous CT: fat -100, muscle 50, liver 55-110, kidney cortex
140-200, enhanced vessels 150-250, lung -850, cancellous bone 180-320, cortical bone 650-950.

Regions: ``chest`` (lungs, mediastinum, heart, aorta, spine, ribs, sternum), ``abdomen`` (liver,
spleen, kidneys, aorta and IVC, retroperitoneal and mesenteric fat, psoas, spine, lower ribs) and
``pelvis`` (bladder, rectum, iliac wings, sacrum, gluteal muscles, pelvic fat).
"""
import math
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

from .shapes import Grid, Layer, Organ

REGIONS = ('chest', 'abdomen', 'pelvis')
REGION_WEIGHTS = (0.42, 0.43, 0.15)

# Where the series sits along the body, for DL_info's normalised z (0 = head, 1 = feet) and a
# body length of about 1 m between the levels below (mm per unit of normalised z).
REGION_LEVEL = {'chest': (0.30, 0.52), 'abdomen': (0.52, 0.70), 'pelvis': (0.70, 0.86)}
BODY_LEVEL_MM = 1000.0


class LesionHost(NamedTuple):
    """Where lesions of a DeepLesion coarse type grow: a set of tissues of the anatomy."""
    name: str
    lesion_type: int  # DL_info Coarse_lesion_type 1..8
    tissues: frozenset
    model: str  # HU model of lesions.py: lung, fat_node, parenchyma, kidney, soft, bone
    weight: float
    median_diameter_mm: float


# 1 bone, 2 abdomen, 3 mediastinum, 4 liver, 5 lung, 6 kidney, 7 soft tissue, 8 pelvis.
_SOFT = frozenset({'fat_sc', 'muscle_wall'})
LESION_HOSTS: Dict[str, Tuple[LesionHost, ...]] = {
    'chest': (
        LesionHost('lung', 5, frozenset({'lung'}), 'lung', 0.50, 12.0),
        LesionHost('mediastinum', 3, frozenset({'mediastinal_fat'}), 'fat_node', 0.28, 16.0),
        LesionHost('soft_tissue', 7, _SOFT, 'soft', 0.14, 18.0),
        LesionHost('bone', 1, frozenset({'cancellous'}), 'bone', 0.08, 14.0),
    ),
    'abdomen': (
        LesionHost('liver', 4, frozenset({'liver'}), 'parenchyma', 0.33, 20.0),
        LesionHost('spleen', 2, frozenset({'spleen'}), 'parenchyma', 0.12, 16.0),
        LesionHost('retroperitoneum', 2, frozenset({'retro_fat'}), 'fat_node', 0.12, 16.0),
        LesionHost('mesentery', 2, frozenset({'abd_fat'}), 'fat_node', 0.08, 15.0),
        LesionHost('kidney', 6, frozenset({'kidney'}), 'kidney', 0.17, 18.0),
        LesionHost('soft_tissue', 7, _SOFT, 'soft', 0.11, 18.0),
        LesionHost('bone', 1, frozenset({'cancellous'}), 'bone', 0.07, 14.0),
    ),
    'pelvis': (
        LesionHost('pelvis', 8, frozenset({'pelvic_fat'}), 'fat_node', 0.55, 18.0),
        LesionHost('soft_tissue', 7, _SOFT | {'gluteal'}, 'soft', 0.25, 18.0),
        LesionHost('bone', 1, frozenset({'marrow_pelvis'}), 'bone', 0.20, 14.0),
    ),
}


class TubeHost(NamedTuple):
    """Where look-alike tubes run: vessels (bright, contrast-enhanced) or bowel loops."""
    kind: str  # 'vessel' | 'bowel'
    name: str
    tissues: frozenset
    count: Tuple[int, int]  # inclusive range per series
    radius_mm: Tuple[float, float]


TUBE_HOSTS: Dict[str, Tuple[TubeHost, ...]] = {
    'chest': (
        TubeHost('vessel', 'lung', frozenset({'lung'}), (4, 8), (1.5, 4.0)),
        TubeHost('vessel', 'mediastinum', frozenset({'mediastinal_fat'}), (0, 2), (2.0, 4.0)),
    ),
    'abdomen': (
        TubeHost('vessel', 'liver', frozenset({'liver'}), (2, 4), (2.0, 5.0)),
        TubeHost('vessel', 'mesentery', frozenset({'abd_fat'}), (1, 3), (2.0, 4.0)),
        TubeHost('bowel', 'mesentery', frozenset({'abd_fat'}), (2, 4), (6.0, 12.0)),
    ),
    'pelvis': (
        TubeHost('vessel', 'pelvis', frozenset({'pelvic_fat'}), (2, 3), (2.5, 5.0)),
        TubeHost('bowel', 'pelvis', frozenset({'pelvic_fat'}), (2, 4), (6.0, 12.0)),
    ),
}


def make_grid(width: int, height: int, rng: np.random.Generator) -> Grid:
    """Pixel grid with a smooth random warp (sum of 3 plane waves per axis) for organic outlines."""
    size = max(width, height)
    amp_total = rng.uniform(0.008, 0.018) * size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    fields = []
    for _ in range(2):
        f = np.zeros((height, width), dtype=np.float32)
        amps = rng.dirichlet(np.ones(3)) * amp_total
        for amp in amps:
            k = rng.uniform(0.8, 2.5)
            ang = rng.uniform(0, 2 * math.pi)
            kx = np.float32(2 * math.pi * k * math.cos(ang) / size)
            ky = np.float32(2 * math.pi * k * math.sin(ang) / size)
            phase = np.float32(rng.uniform(0, 2 * math.pi))
            f += np.float32(amp) * np.sin(xs * kx + ys * ky + phase)
        fields.append(f)
    return Grid(width, height, fields[0], fields[1], float(amp_total))


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def build_anatomy(region: str, width: int, height: int, z_lo_mm: float, z_hi_mm: float,
                  rng: np.random.Generator) -> List[Organ]:
    """Organs of one series, in painting order.

    Args:
        region: 'chest', 'abdomen' or 'pelvis'.
        width, height: image size in px.
        z_lo_mm, z_hi_mm: z range (series frame, mm) of the slices that will be rendered; organs
            that end along z (heart, liver, kidneys, bladder) are centred relative to it.
        rng: the series' geometry generator.
    """
    if region not in REGIONS:
        raise ValueError(f'unknown phantom region {region!r}; expected one of {REGIONS}')
    size = min(width, height)
    cx = width / 2.0 + _u(rng, -0.02, 0.02) * width
    cy = height / 2.0 + _u(rng, -0.05, -0.01) * height
    if region == 'pelvis':
        A = _u(rng, 0.39, 0.44) * size
        B = A * _u(rng, 0.60, 0.72)
    else:
        A = _u(rng, 0.36, 0.43) * size
        B = A * _u(rng, 0.62, 0.78)
    z_mid = 0.5 * (z_lo_mm + z_hi_mm)
    s_fat = 0.985
    s_mus = _u(rng, 0.92, 0.95)
    s_int = s_mus - _u(rng, 0.05, 0.08)
    Ai, Bi = A * s_int, B * s_int
    period = _u(rng, 250, 400)
    phase = _u(rng, 0, 2 * math.pi)
    fat_hu = _u(rng, -110, -85)
    muscle_hu = _u(rng, 40, 60)
    cort_hu = _u(rng, 650, 950)
    canc_hu = _u(rng, 180, 320)
    vessel_hu = _u(rng, 150, 250)
    interior = {'chest': ('chest_soft', _u(rng, 25, 45), 8.0),
                'abdomen': ('abd_fat', fat_hu + _u(rng, 0, 15), 10.0),
                'pelvis': ('pelvic_fat', fat_hu + _u(rng, 0, 15), 10.0)}[region]

    def body_like(name, layers, a, b, edge=1.0, **kw):
        kw.setdefault('var_size', 0.02)
        return Organ(name, layers, cx, cy, a, b, edge_px=edge, var_period_mm=period,
                     var_phase=phase, **kw)

    def organ(name, layers, x, y, a, b, theta=0.0, edge=1.0, **kw):
        kw.setdefault('var_size', _u(rng, 0.03, 0.08))
        kw.setdefault('var_dx', _u(rng, 0.0, 0.02) * A)
        kw.setdefault('var_dy', _u(rng, 0.0, 0.02) * B)
        kw.setdefault('var_period_mm', _u(rng, 150, 300))
        kw.setdefault('var_phase', _u(rng, 0, 2 * math.pi))
        return Organ(name, layers, x, y, a, b, theta, edge_px=edge, **kw)

    def bone(name, x, y, a, b, theta=0.0, marrow='cancellous', marrow_scale=0.72, **kw):
        return organ(name, [Layer(1.0, 'cortical_bone', cort_hu, 12.0),
                            Layer(marrow_scale, marrow, canc_hu, 25.0)], x, y, a, b, theta,
                     edge=0.8, var_size=kw.pop('var_size', 0.03), **kw)

    organs: List[Organ] = []
    table_y = cy + B + _u(rng, 0.03, 0.05) * size
    organs.append(Organ('table', [Layer(1.0, 'table', _u(rng, -300, 100), 3.0)], cx,
                        table_y, 0.46 * width, max(0.012 * size, 1.5), edge_px=1.0,
                        warped=False))
    organs.append(body_like('body', [
        Layer(1.0, 'skin', _u(rng, 20, 50), 5.0),
        Layer(s_fat, 'fat_sc', fat_hu, 8.0),
        Layer(s_mus, 'muscle_wall', muscle_hu, 10.0),
        Layer(s_int, interior[0], interior[1], interior[2]),
    ], A, B))

    spine_y = cy + 0.60 * Bi
    vert_r = 0.115 * Ai
    lat = 1.0 if rng.random() < 0.5 else -1.0  # heart/aorta side jitter

    if region == 'chest':
        for side in (-1.0, 1.0):
            organs.append(organ('paraspinal', [Layer(1.0, 'muscle_wall', muscle_hu, 10.0)],
                                cx + side * 0.17 * Ai, cy + 0.80 * Bi, 0.14 * Ai, 0.16 * Bi))
        lung_hu = _u(rng, -870, -820)
        lung_tex = _u(rng, 20, 35)
        for side in (-1.0, 1.0):
            big = 1.04 if side < 0 else 1.0  # the right lung (image left) is larger
            organs.append(organ('lung', [Layer(1.0, 'lung', lung_hu, lung_tex)],
                                cx + side * 0.48 * Ai, cy + _u(rng, -0.04, 0.04) * Bi,
                                0.40 * Ai * big, 0.80 * Bi * big, side * _u(rng, 0.0, 0.12),
                                edge=1.0))
        organs.append(organ('mediastinum', [Layer(1.0, 'mediastinal_fat', fat_hu + 10, 10.0)],
                            cx, cy - 0.22 * Bi, 0.20 * Ai, 0.50 * Bi))
        organs.append(organ('heart', [Layer(1.0, 'heart', _u(rng, 35, 70), 6.0)],
                            cx + 0.08 * Ai, cy - 0.18 * Bi, 0.26 * Ai, 0.36 * Bi, -0.4,
                            zc_mm=z_mid + _u(rng, -60, 60), c_mm=_u(rng, 60, 90)))
        organs.append(organ('aorta', [Layer(1.0, 'vessel', vessel_hu, 5.0)],
                            cx + 0.14 * Ai, spine_y - 0.16 * Bi, 0.075 * Ai, 0.075 * Ai,
                            var_size=0.02))
        if rng.random() < 0.5:
            organs.append(organ('trachea', [Layer(1.0, 'airway', _u(rng, -980, -920), 5.0)],
                                cx + _u(rng, -0.03, 0.03) * Ai, cy - 0.10 * Bi, 0.06 * Ai,
                                0.05 * Ai, zc_mm=z_mid + _u(rng, -50, 50), c_mm=_u(rng, 50, 90)))
        organs.append(bone('sternum', cx, cy - 0.5 * (s_mus + s_int) * B, 0.10 * Ai,
                           0.035 * B, var_size=0.05))
    elif region == 'abdomen':
        organs.append(organ('retroperitoneum', [Layer(1.0, 'retro_fat', fat_hu + 5, 10.0)],
                            cx, cy + 0.30 * Bi, 0.32 * Ai, 0.17 * Bi))
        liver_hu = _u(rng, 55, 110)
        organs.append(organ('liver', [Layer(1.0, 'liver', liver_hu, _u(rng, 6, 12))],
                            cx - 0.40 * Ai, cy - 0.04 * Bi, 0.50 * Ai, 0.72 * Bi,
                            _u(rng, -0.2, 0.1), zc_mm=z_mid + _u(rng, -40, 40),
                            c_mm=_u(rng, 100, 160)))
        organs.append(organ('spleen', [Layer(1.0, 'spleen', liver_hu + _u(rng, -15, 15), 8.0)],
                            cx + 0.62 * Ai, cy + 0.26 * Bi, 0.22 * Ai, 0.32 * Bi,
                            _u(rng, 0.5, 0.9), zc_mm=z_mid + _u(rng, -40, 40),
                            c_mm=_u(rng, 55, 85)))
        for side in (-1.0, 1.0):
            organs.append(organ('psoas', [Layer(1.0, 'muscle_wall', muscle_hu, 10.0)],
                                cx + side * 0.21 * Ai, cy + 0.50 * Bi, 0.10 * Ai, 0.12 * Bi))
        kid_hu = _u(rng, 140, 200)
        for side in (-1.0, 1.0):
            organs.append(organ('kidney', [Layer(1.0, 'kidney', kid_hu, 10.0),
                                           Layer(0.45, 'renal_sinus', fat_hu + 30, 10.0)],
                                cx + side * 0.43 * Ai, cy + 0.50 * Bi, 0.22 * Bi, 0.15 * Ai,
                                math.pi / 2 + side * _u(rng, 0.2, 0.5),
                                zc_mm=z_mid + _u(rng, -40, 40), c_mm=_u(rng, 50, 70)))
        organs.append(organ('aorta', [Layer(1.0, 'vessel', vessel_hu, 5.0)],
                            cx + 0.08 * Ai * lat, cy + 0.30 * Bi, 0.055 * Ai, 0.055 * Ai,
                            var_size=0.02))
        organs.append(organ('ivc', [Layer(1.0, 'vessel', vessel_hu - _u(rng, 20, 60), 5.0)],
                            cx - 0.13 * Ai * lat, cy + 0.28 * Bi, 0.07 * Ai, 0.05 * Ai))
    else:  # pelvis
        for side in (-1.0, 1.0):
            organs.append(organ('gluteal', [Layer(1.0, 'gluteal', muscle_hu, 10.0)],
                                cx + side * 0.50 * Ai, cy + 0.58 * Bi, 0.34 * Ai, 0.30 * Bi,
                                side * 0.3))
        organs.append(organ('bladder', [Layer(1.0, 'bladder', _u(rng, 0, 15), 3.0)],
                            cx + _u(rng, -0.05, 0.05) * Ai, cy - 0.38 * Bi, 0.24 * Ai,
                            0.22 * Bi, zc_mm=z_mid + _u(rng, -40, 40), c_mm=_u(rng, 45, 75)))
        lumen = float(rng.choice([-900.0, 20.0]))
        organs.append(organ('rectum', [Layer(1.0, 'bowel_wall', muscle_hu, 8.0),
                                       Layer(0.65, 'rectal_lumen', lumen, 10.0)],
                            cx, cy + 0.40 * Bi, 0.09 * Ai, 0.08 * Ai))
        for side in (-1.0, 1.0):
            organs.append(bone('iliac', cx + side * 0.52 * Ai, cy + 0.18 * Bi, 0.34 * Ai,
                               0.09 * Bi, side * _u(rng, 0.9, 1.2), marrow='marrow_pelvis',
                               marrow_scale=0.6))
        organs.append(bone('sacrum', cx, cy + 0.62 * Bi, 0.22 * Ai, 0.11 * Bi,
                           marrow='marrow_pelvis', marrow_scale=0.65))

    if region in ('chest', 'abdomen'):
        organs.append(bone('vertebra', cx, spine_y, vert_r, vert_r * 0.92))
        organs.append(organ('canal', [Layer(1.0, 'canal', _u(rng, 15, 35), 4.0)],
                            cx, spine_y + vert_r + 0.06 * Ai, 0.055 * Ai, 0.05 * Ai,
                            var_size=0.02))
        organs.append(bone('spinous', cx, spine_y + vert_r + 0.17 * Ai, 0.035 * Ai,
                           0.09 * Ai, var_size=0.05))
        organs.extend(_ribs(region, cx, cy, A, B, 0.5 * (s_mus + s_int), z_lo_mm, z_hi_mm,
                            cort_hu, canc_hu, rng))
    return organs


def _ribs(region, cx, cy, A, B, s_rib, z_lo, z_hi, cort_hu, canc_hu, rng) -> List[Organ]:
    """Rib cross-sections: rows every 18-26 mm along z, several segments per side on the wall."""
    pitch = _u(rng, 18, 26)
    organs = []
    z = z_lo - _u(rng, 0, pitch) - 10.0
    if region == 'chest':
        arcs = [(100, 200), (-20, 80), (205, 250), (290, 335)]
        per_arc = (3, 3, 1, 1)
    else:  # lower ribs only laterally, and not on every row
        arcs = [(150, 200), (-20, 30)]
        per_arc = (2, 2)
    while z < z_hi + 10.0:
        if region == 'chest' or rng.random() < 0.6:
            for (lo, hi), n in zip(arcs, per_arc):
                for ang in np.sort(rng.uniform(lo, hi, size=n)):
                    phi = math.radians(float(ang))
                    x = cx + s_rib * A * math.cos(phi)
                    y = cy + s_rib * B * math.sin(phi)
                    tangent = math.atan2(B * math.cos(phi), -A * math.sin(phi))
                    organs.append(Organ(
                        'rib', [Layer(1.0, 'cortical_bone', cort_hu, 12.0),
                                Layer(0.55, 'marrow', canc_hu, 20.0)],
                        x, y, 0.06 * A * _u(rng, 0.8, 1.2), 0.024 * A, tangent, edge_px=0.8,
                        zc_mm=z + _u(rng, -3, 3), c_mm=_u(rng, 5, 8)))
        z += pitch
    return organs
