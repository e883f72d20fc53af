"""Lesions and lesion look-alikes of a synthetic series: sizes, contrasts and placement.

Lesions are ellipsoids (in-plane semi-axes a >= b in px at a random orientation, c along z in mm)
with soft edges, placed wholly inside the tissues of their host (a
:class:`~.phantom.LesionHost`) where nothing else is painted over them, clear of look-alikes and
of each other.  Their contrast is hypo- or hyper-dense relative to the host (a liver metastasis
40 HU darker than the liver, a lung nodule at +20 HU in -850 HU lung, a lymph node at 45 HU in
-100 HU fat, a lytic or sclerotic bone lesion).

Look-alikes are tubes that look like a nodule on one slice but continue through many slices:
contrast-enhanced vessels (+150..250 HU, in lung, liver, mesenteric or pelvic fat) and bowel loops
(wall and fluid, air or oral-contrast lumen).  A tube is clipped to its host tissue, so it ends
where the lung or liver ends.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .phantom import LesionHost, TubeHost
from .shapes import (
    Ellipsoid,
    Grid,
    Organ,
    Tube,
    Window,
    coverage,
    intersect,
    organ_window,
    paint_anatomy,
    section_window,
    soft_ellipse,
    union,
)

MIN_DIAMETER_MM = 5.0
MAX_DIAMETER_MM = 50.0
MAX_C_MM = 30.0
# A lesion must lie where its host tissues make up at least this fraction of the painted value.
HOST_COVER_MIN = 0.98


@dataclass
class Lesion:
    """One synthetic lesion (geometry in px / mm, series frame)."""
    index: int  # within the series
    shape: Ellipsoid
    host: LesionHost
    host_hu: float  # clean anatomy HU at the centre, on the central plane
    hu: float  # lesion interior HU
    tex_hu: float
    kind: str  # e.g. 'hypodense', 'solid', 'ground_glass', 'cyst', 'lytic'
    subvolume: int  # index of the owning sub-volume within the series
    marked: bool
    noisy: bool = False


@dataclass
class LookAlike:
    """A tube that mimics a lesion on single slices (a hard negative)."""
    index: int  # within the series
    kind: str  # 'vessel' | 'bowel'
    host: TubeHost
    tube: Tube
    hu: float  # vessel lumen, or bowel wall
    lumen_hu: Optional[float]  # bowel only
    wall_fraction: float  # bowel: lumen radius = (1 - wall_fraction) * r
    tex_hu: float


class PlacementContext:
    """What lesions and tubes are placed into: the anatomy, the grid, what is occupied."""

    def __init__(self, organs: Sequence[Organ], grid: Grid, spacing_mm: float):
        self.organs = list(organs)
        self.grid = grid
        self.spacing_mm = spacing_mm
        self.tubes: List[LookAlike] = []
        self.lesions: List[Lesion] = []
        self._scratch: Optional[np.ndarray] = None

    def host_window(self, tissues, z_mm: float) -> Optional[Window]:
        win = None
        for organ in self.organs:
            if not any(t in tissues for t in organ.tissues):
                continue
            sec = organ.section(z_mm)
            if sec is None:
                continue
            win = union(win, organ_window(organ, sec, self.grid))
        return win

    def free_distance(self, tissues, z_mm: float, avoid_tubes: bool = True
                      ) -> Tuple[Optional[Window], Optional[np.ndarray]]:
        """Distance (px) from each pixel to the nearest pixel that is not free host tissue.

        Free = host tissues cover >= 98% of the pixel and no placed lesion (nor, with
        ``avoid_tubes``, look-alike) is there.  Returns (window, distance map) or (None, None)
        when the host is absent at z.
        """
        win = self.host_window(tissues, z_mm)
        if win is None:
            return None, None
        free = coverage(self.organs, z_mm, self.grid, win, tissues) >= HOST_COVER_MIN
        secs = []
        for la in (self.tubes if avoid_tubes else ()):
            secs.append(la.tube.section(z_mm))
        for les in self.lesions:
            sec = les.shape.section(z_mm)
            if sec is not None:  # a circle around the (possibly lobulated) ellipse
                r = max(sec[2], sec[3]) * (1.0 + les.shape.lobe_max)
                secs.append((sec[0], sec[1], r, r, 0.0))
        for sec in secs:
            if sec is None:
                continue
            ow = section_window(sec, 2.0, self.grid.width, self.grid.height)
            iw = None if ow is None else intersect(ow, win)
            if iw is None:
                continue
            xs, ys = self.grid.coords(iw, warped=False)
            free[iw[1] - win[1]:iw[3] - win[1], iw[0] - win[0]:iw[2] - win[0]] &= soft_ellipse(
                xs, ys, sec, 1.0) <= 0.01
        padded = np.zeros((free.shape[0] + 2, free.shape[1] + 2), dtype=np.uint8)
        padded[1:-1, 1:-1] = free
        dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        return win, dist

    def host_hu_at(self, x: float, y: float, z_mm: float) -> float:
        """Clean anatomy HU (no texture, noise or tubes) at the pixel nearest (x, y)."""
        ix = int(round(min(max(x, 0), self.grid.width - 1)))
        iy = int(round(min(max(y, 0), self.grid.height - 1)))
        if self._scratch is None:
            self._scratch = np.empty((self.grid.height, self.grid.width), dtype=np.float32)
        self._scratch[iy, ix] = -1000.0
        paint_anatomy(self.organs, z_mm, self.grid, (ix, iy, ix + 1, iy + 1), hu=self._scratch)
        return float(self._scratch[iy, ix])


def lesion_hu(model: str, host_hu: float, rng: np.random.Generator) -> Tuple[float, str]:
    """Interior HU of a new lesion and its kind, given the host's HU."""
    u = rng.random()
    if model == 'soft':
        model = 'fat_node' if host_hu < -30 else 'muscle'
    if model == 'lung':
        if u < 0.9:
            return float(rng.uniform(-10, 50)), 'solid'
        return float(rng.uniform(-550, -350)), 'ground_glass'
    if model == 'fat_node':
        return float(rng.uniform(20, 70)), 'node'
    if model == 'parenchyma':
        if u < 0.7:
            return float(max(host_hu - rng.uniform(25, 70), rng.uniform(0, 15))), 'hypodense'
        return float(host_hu + rng.uniform(25, 60)), 'hyperdense'
    if model == 'kidney':
        if u < 0.6:
            return float(rng.uniform(0, 20)), 'cyst'
        return float(host_hu - rng.uniform(50, 100)), 'hypodense'
    if model == 'muscle':
        sign = 1.0 if u < 0.5 else -1.0
        kind = 'hyperdense' if sign > 0 else 'hypodense'
        return float(host_hu + sign * rng.uniform(25, 50)), kind
    if model == 'bone':
        if u < 0.6:
            return float(rng.uniform(30, 120)), 'lytic'
        return float(rng.uniform(700, 1000)), 'sclerotic'
    raise ValueError(f'unknown lesion HU model {model!r}')


def sample_lesion_shape(rng: np.random.Generator) -> Tuple[float, float, float, Tuple]:
    """In-plane aspect ratio, orientation (rad), edge softness (px) and surface lobes of a lesion.

    Shared by the phantom and real-anatomy modes; the draw order is fixed so that a seed keeps
    reproducing the same dataset.  ``lobes`` is ``()`` or two ``(k, amplitude, phase)`` tuples.
    """
    aspect = float(rng.uniform(0.55, 1.0))
    theta = float(rng.uniform(0, math.pi))
    edge = float(rng.uniform(0.8, 1.8))
    lobes: Tuple = ()
    if rng.random() < 0.4:
        ks = rng.choice([3, 4, 5], size=2, replace=False)
        lobes = tuple((int(k), float(rng.uniform(0.02, 0.06)), float(rng.uniform(0, 2 * math.pi)))
                      for k in ks)
    return aspect, theta, edge, lobes


def sample_diameter_mm(host: LesionHost, marked: bool, max_mm: float,
                       rng: np.random.Generator) -> float:
    """Long diameter (mm): log-normal around the host's median; RECIST targets are larger."""
    median = host.median_diameter_mm * (1.3 if marked else 0.8)
    d = median * math.exp(0.5 * rng.standard_normal())
    return float(min(max(d, MIN_DIAMETER_MM), max_mm))


def place_lesion(ctx: PlacementContext, host: LesionHost, zc_mm: float, marked: bool,
                 subvolume: int, max_diameter_mm: float, min_c_mm: float,
                 rng: np.random.Generator, attempts: int = 5,
                 relaxed: bool = False) -> Optional[Lesion]:
    """Place an ellipsoid lesion centred at height ``zc_mm`` inside ``host``, or return None.

    The in-plane centre is drawn among the pixels whose distance to anything that is not free
    host tissue exceeds the lesion's radius plus its soft edge and 1 px, on the central plane and
    at +-0.7 c; the size shrinks by 20% per failed attempt, the last attempt at 5 mm.
    ``relaxed`` (a last resort on small images) checks the central plane only, with a 0.5 px
    margin, and lets the lesion cover look-alikes.
    """
    sp = ctx.spacing_mm
    diameter = sample_diameter_mm(host, marked, max_diameter_mm, rng)
    aspect, theta, edge, lobes = sample_lesion_shape(rng)
    if relaxed:
        lobes = ()
    lobe_max = sum(e for _, e, _ in lobes)
    c_factor = float(rng.uniform(0.7, 1.3))
    H, W = ctx.grid.height, ctx.grid.width
    # Shrinking sizes, the last one always the 5 mm minimum.
    diameters = [diameter * 0.8 ** i for i in range(attempts - 1)
                 if diameter * 0.8 ** i > MIN_DIAMETER_MM] + [MIN_DIAMETER_MM]
    for diameter in diameters:
        a_mm = diameter / 2.0
        b_mm = a_mm * aspect
        c_mm = min(max(math.sqrt(a_mm * b_mm) * c_factor, min_c_mm), MAX_C_MM)
        a_px = a_mm / sp
        ok = np.ones((H, W), dtype=bool)
        for t in ((0.0,) if relaxed else (0.0, -0.7, 0.7)):
            win, dist = ctx.free_distance(host.tissues, zc_mm + t * c_mm, not relaxed)
            if win is None:
                ok[:] = False
                break
            margin = 0.5 if relaxed else edge + 1.0
            need = a_px * math.sqrt(1.0 - t * t) * (1.0 + lobe_max) + margin
            inside = np.zeros((H, W), dtype=bool)
            inside[win[1]:win[3], win[0]:win[2]] = dist >= need
            ok &= inside
            if not ok.any():
                break
        # Lesions whose z-extent overlaps are kept apart in-plane too (between the z samples).
        for les in ctx.lesions:
            if abs(les.shape.zc_mm - zc_mm) < les.shape.c_mm + c_mm and ok.any():
                r = (les.shape.a * (1 + les.shape.lobe_max) + a_px * (1 + lobe_max) + 2.0)
                y, x = np.ogrid[:H, :W]
                ok &= (x - les.shape.cx) ** 2 + (y - les.shape.cy) ** 2 > r * r
        cand = np.flatnonzero(ok)
        if len(cand):
            pick = int(cand[rng.integers(len(cand))])
            cy, cx = divmod(pick, W)
            cx += float(rng.uniform(-0.5, 0.5))
            cy += float(rng.uniform(-0.5, 0.5))
            shape = Ellipsoid(cx, cy, zc_mm, a_px, b_mm / sp, c_mm, theta, edge, lobes)
            host_hu = ctx.host_hu_at(cx, cy, zc_mm)
            hu, kind = lesion_hu(host.model, host_hu, rng)
            lesion = Lesion(len(ctx.lesions), shape, host, host_hu, hu,
                            float(rng.uniform(3, 8)), kind, subvolume, marked)
            ctx.lesions.append(lesion)
            return lesion
    return None


def sample_tube(rng: np.random.Generator, kind: str, x0: float, y0: float, z0: float,
                r_px: float, spacing_mm: float, z_lo_mm: float, z_hi_mm: float) -> Tube:
    """The path of a look-alike tube through ``(x0, y0)`` px at height ``z0`` mm.

    A tilted (up to 0.45 mm in plane per mm of z), gently winding line; a vessel winds less
    than a bowel loop.  It runs 40 mm past ``[z_lo_mm, z_hi_mm]`` (the series' extent) both
    ways, unless (30%) it branches off or turns away inside it.  Shared by the phantom and
    real-anatomy modes; the draw order is fixed so a seed keeps reproducing the same dataset.
    """
    sp = spacing_mm
    g = float(rng.uniform(0.0, 0.45))  # in-plane mm per mm of z
    ang = float(rng.uniform(0, 2 * math.pi))
    if kind == 'bowel':
        period = float(rng.uniform(25, 60))
    else:
        period = float(rng.uniform(40, 120))
    amp_mm = float(rng.uniform(0.1, 1.0)) * period / (2 * math.pi)
    if kind == 'vessel':
        amp_mm = min(amp_mm, float(rng.uniform(1.0, 5.0)))
    span = z_hi_mm - z_lo_mm
    z_start = z_lo_mm - 40.0
    z_end = z_hi_mm + 40.0
    if rng.random() < 0.3:  # the vessel branches off or the loop turns away inside the range
        if rng.random() < 0.5:
            z_start = z0 - float(rng.uniform(0.3, 0.8)) * max(span, 20.0)
        else:
            z_end = z0 + float(rng.uniform(0.3, 0.8)) * max(span, 20.0)
    return Tube(x0, y0, z0, g / sp * math.cos(ang), g / sp * math.sin(ang), amp_mm / sp, period,
                float(rng.uniform(0, 2 * math.pi)), r_px, sp, z_start, z_end,
                edge_px=float(rng.uniform(0.8, 1.3)))


def place_tube(ctx: PlacementContext, th: TubeHost, z_lo_mm: float, z_hi_mm: float,
               size_factor: float, rng: np.random.Generator) -> Optional[LookAlike]:
    """Start a vessel or bowel loop inside its host at a random height of the series."""
    sp = ctx.spacing_mm
    # Tubes shrink with the anatomy on small images (vessels only down to 1.2 px).
    r_mm = float(rng.uniform(*th.radius_mm)) * math.sqrt(min(size_factor, 1.0))
    r_px = max(r_mm / sp, 1.2)
    r_mm = r_px * sp
    z0 = float(rng.uniform(z_lo_mm, z_hi_mm))
    win, dist = ctx.free_distance(th.tissues, z0)
    if win is None:
        return None
    cand = np.flatnonzero(dist >= r_px + 1.5)
    if len(cand) == 0:
        return None
    pick = int(cand[rng.integers(len(cand))])
    py, px = divmod(pick, win[2] - win[0])
    x0 = win[0] + px + float(rng.uniform(-0.5, 0.5))
    y0 = win[1] + py + float(rng.uniform(-0.5, 0.5))
    tube = sample_tube(rng, th.kind, x0, y0, z0, r_px, sp, z_lo_mm, z_hi_mm)
    if th.kind == 'vessel':
        hu = float(rng.uniform(100, 250) if th.name == 'lung' else rng.uniform(150, 250))
        la = LookAlike(len(ctx.tubes), 'vessel', th, tube, hu, None, 0.0, 4.0)
    else:
        content = rng.random()
        if content < 0.5:
            lumen = float(rng.uniform(0, 30))
        elif content < 0.75:
            lumen = float(rng.uniform(-950, -850))
        else:
            lumen = float(rng.uniform(250, 400))
        wall_frac = float(min(max(1.5 / r_mm, 0.15), 0.4))
        la = LookAlike(len(ctx.tubes), 'bowel', th, tube, float(rng.uniform(40, 70)), lumen,
                       wall_frac, 8.0)
    ctx.tubes.append(la)
    return la
