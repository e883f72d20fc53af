"""Analytic 3D shapes of the phantom and their rasterisation onto axial slices.

Every shape's axial cross-section at height ``z_mm`` is an ellipse ``(cx, cy, a, b, theta)``:
centre in 0-based pixels (pixel centres at integers, x = column, y = row), semi-axes ``a >= b``
in pixels, ``theta`` the angle (radians) of the ``a`` axis from +x towards +y.  z is in mm in the
series frame: absolute slice index ``k`` lies at ``z_mm = k * slice_interval_mm``.

Rasterisation gives a soft weight in [0, 1] per pixel (0.5 on the boundary): anatomy uses a cheap
edge (several body-sized shapes per slice), lesions and look-alikes an edge of the requested
width in pixels and partial-volume averaging over the slice thickness.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

Section = Tuple[float, float, float, float, float]  # cx, cy, a, b (px), theta (rad)
Window = Tuple[int, int, int, int]  # x0, y0, x1, y1: half-open pixel ranges

# Offsets (fractions of the slice thickness) of the sub-planes averaged for partial volume.
PV_OFFSETS = (-1.0 / 3.0, 0.0, 1.0 / 3.0)


def section_window(sec: Section, margin_px: float, width: int,
                   height: int) -> Optional[Window]:
    """Half-open pixel window holding the ellipse plus ``margin_px``, clipped to the image."""
    cx, cy, a, b, th = sec
    c, s = math.cos(th), math.sin(th)
    hx = math.sqrt((a * c) ** 2 + (b * s) ** 2) + margin_px
    hy = math.sqrt((a * s) ** 2 + (b * c) ** 2) + margin_px
    x0 = max(int(math.floor(cx - hx)), 0)
    y0 = max(int(math.floor(cy - hy)), 0)
    x1 = min(int(math.ceil(cx + hx)) + 1, width)
    y1 = min(int(math.ceil(cy + hy)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def intersect(w1: Window, w2: Window) -> Optional[Window]:
    x0, y0 = max(w1[0], w2[0]), max(w1[1], w2[1])
    x1, y1 = min(w1[2], w2[2]), min(w1[3], w2[3])
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def union(w1: Optional[Window], w2: Optional[Window]) -> Optional[Window]:
    if w1 is None:
        return w2
    if w2 is None:
        return w1
    return min(w1[0], w2[0]), min(w1[1], w2[1]), max(w1[2], w2[2]), max(w1[3], w2[3])


def _rotated(xs, ys, sec: Section):
    cx, cy, _, _, th = sec
    dx = xs - np.float32(cx)
    dy = ys - np.float32(cy)
    if th == 0.0:
        return dx, dy
    c, s = np.float32(math.cos(th)), np.float32(math.sin(th))
    return dx * c + dy * s, dy * c - dx * s


def ellipse_q(xs: np.ndarray, ys: np.ndarray, sec: Section) -> np.ndarray:
    """Squared normalised radius ``(u/a)^2 + (v/b)^2`` (1 on the boundary)."""
    u, v = _rotated(xs, ys, sec)
    a, b = sec[2], sec[3]
    return (u * np.float32(1.0 / a)) ** 2 + (v * np.float32(1.0 / b)) ** 2


def layer_weight(q: np.ndarray, scale: float, sec: Section, edge_px: float) -> np.ndarray:
    """Cheap soft weight of the ellipse scaled by ``scale`` (anatomy).

    Uses ``1 - q / scale^2 ~ 2 d / r`` near the boundary with r = scale * sqrt(a b): the edge is
    ``edge_px`` wide for a circle, up to sqrt(a/b) wider or narrower along the axes otherwise.
    """
    r = scale * math.sqrt(sec[2] * sec[3])
    k = np.float32(r / (2.0 * edge_px))
    w = (np.float32(1.0) - q * np.float32(1.0 / (scale * scale))) * k + np.float32(0.5)
    return np.clip(w, 0.0, 1.0, out=w)


def soft_ellipse(xs: np.ndarray, ys: np.ndarray, sec: Section, edge_px: float,
                 lobes: Sequence[Tuple[int, float, float]] = ()) -> np.ndarray:
    """Soft weight of an ellipse whose edge is ``edge_px`` wide everywhere (lesions, tubes).

    The signed distance to the boundary is approximated to first order by ``(1 - rho) / |grad
    rho|``.  ``lobes`` = (k, eps, phase) harmonics modulate the boundary radius by
    ``1 + sum eps cos(k phi + phase)`` (lobulated lesions).
    """
    u, v = _rotated(xs, ys, sec)
    a, b = sec[2], sec[3]
    ua = u * np.float32(1.0 / a)
    vb = v * np.float32(1.0 / b)
    rho = np.sqrt(ua * ua + vb * vb)
    if lobes:
        phi = np.arctan2(vb, ua)
        mod = np.ones_like(rho)
        for k, eps, ph in lobes:
            mod += np.float32(eps) * np.cos(np.float32(k) * phi + np.float32(ph))
        rho = rho / mod
    gx = ua * np.float32(1.0 / a)
    gy = vb * np.float32(1.0 / b)
    grad = np.sqrt(gx * gx + gy * gy) / np.maximum(rho, np.float32(1e-6))
    grad = np.maximum(grad, np.float32(1.0 / max(a, b)))
    w = (np.float32(1.0) - rho) / grad * np.float32(1.0 / edge_px) + np.float32(0.5)
    return np.clip(w, 0.0, 1.0, out=w)


@dataclass
class Layer:
    scale: float  # of the organ's outer ellipse
    tissue: str
    hu: float
    tex_hu: float  # std of the tissue texture, HU


@dataclass
class Organ:
    """An anatomical structure: concentric elliptic layers varying smoothly along z.

    Painted in list order (later organs cover earlier ones); its pixels are distorted by the
    series' smooth warp field when ``warped`` (irregular organic outlines).
    """
    name: str
    layers: List[Layer]
    cx: float
    cy: float
    a: float
    b: float
    theta: float = 0.0
    edge_px: float = 1.0
    # size and position vary as sin(2 pi z / period + phase); relative size amplitude, px shifts
    var_size: float = 0.0
    var_dx: float = 0.0
    var_dy: float = 0.0
    var_period_mm: float = 200.0
    var_phase: float = 0.0
    # ellipsoidal profile along z (organ ends); c_mm = inf: present on every slice
    zc_mm: float = 0.0
    c_mm: float = math.inf
    warped: bool = True

    def section(self, z_mm: float) -> Optional[Section]:
        s = 1.0
        if math.isfinite(self.c_mm):
            t = (z_mm - self.zc_mm) / self.c_mm
            if abs(t) >= 0.98:
                return None
            s = math.sqrt(1.0 - t * t)
        ph = 2.0 * math.pi * z_mm / self.var_period_mm + self.var_phase
        f = s * (1.0 + self.var_size * math.sin(ph))
        return (self.cx + self.var_dx * math.sin(ph + 1.3), self.cy + self.var_dy * math.cos(ph),
                self.a * f, self.b * f, self.theta)

    @property
    def tissues(self) -> List[str]:
        return [la.tissue for la in self.layers]


@dataclass
class Ellipsoid:
    """A lesion: an ellipsoid with its c axis along z (mm), a >= b in-plane (px)."""
    cx: float
    cy: float
    zc_mm: float
    a: float
    b: float
    c_mm: float
    theta: float
    edge_px: float
    lobes: Tuple[Tuple[int, float, float], ...] = ()

    def section(self, z_mm: float) -> Optional[Section]:
        t = (z_mm - self.zc_mm) / self.c_mm
        if abs(t) >= 1.0:
            return None
        s = math.sqrt(1.0 - t * t)
        return self.cx, self.cy, self.a * s, self.b * s, self.theta

    @property
    def lobe_max(self) -> float:
        return sum(abs(e) for _, e, _ in self.lobes)


@dataclass
class Tube:
    """A tubular structure (vessel, bowel loop) running through many slices.

    Centre path (px): ``p0 + (z - z0) * vel + amp * sin(2 pi (z - z0) / period + phase) * perp``
    with ``vel`` in px per mm; radius ``r_px`` (semi-minor axis of the cross-section; the
    semi-major axis is stretched by the tube's tilt, ``sqrt(1 + g^2)`` with g its in-plane
    speed in mm per mm).  Rounded (hemispherical) ends at ``z_start_mm`` and ``z_end_mm``.
    """
    x0: float
    y0: float
    z0_mm: float
    vx: float
    vy: float
    amp_px: float
    period_mm: float
    phase: float
    r_px: float
    spacing_mm: float
    z_start_mm: float
    z_end_mm: float
    edge_px: float = 1.0

    def centre(self, z_mm: float) -> Tuple[float, float, float, float]:
        """(x, y) centre in px and (dx/dz, dy/dz) in px per mm."""
        t = z_mm - self.z0_mm
        sp = math.hypot(self.vx, self.vy)
        if sp > 0:
            px, py = -self.vy / sp, self.vx / sp
        else:
            px, py = 1.0, 0.0
        w = 2.0 * math.pi / self.period_mm
        sn = math.sin(w * t + self.phase)
        cs = math.cos(w * t + self.phase)
        x = self.x0 + t * self.vx + self.amp_px * sn * px
        y = self.y0 + t * self.vy + self.amp_px * sn * py
        dx = self.vx + self.amp_px * w * cs * px
        dy = self.vy + self.amp_px * w * cs * py
        return x, y, dx, dy

    def section(self, z_mm: float, radius_scale: float = 1.0) -> Optional[Section]:
        if z_mm <= self.z_start_mm or z_mm >= self.z_end_mm:
            return None
        r_mm = self.r_px * self.spacing_mm
        s = 1.0
        for dist in (z_mm - self.z_start_mm, self.z_end_mm - z_mm):
            if dist < r_mm:
                s = min(s, math.sqrt(1.0 - ((r_mm - dist) / r_mm) ** 2))
        x, y, dx, dy = self.centre(z_mm)
        g = math.hypot(dx, dy) * self.spacing_mm
        r = self.r_px * radius_scale * s
        if r <= 0:
            return None
        return x, y, r * math.sqrt(1.0 + g * g), r, math.atan2(dy, dx)


@dataclass
class Grid:
    """Pixel-centre coordinates of an image, plain and warped (float32)."""
    width: int
    height: int
    warp_x: np.ndarray = field(repr=False)  # (H, W) displacement in px
    warp_y: np.ndarray = field(repr=False)
    warp_max_px: float = 0.0

    def __post_init__(self):
        self.xs = np.arange(self.width, dtype=np.float32)[None, :]
        self.ys = np.arange(self.height, dtype=np.float32)[:, None]
        self.wx = self.xs + self.warp_x
        self.wy = self.ys + self.warp_y

    def coords(self, win: Window, warped: bool):
        x0, y0, x1, y1 = win
        if warped:
            return self.wx[y0:y1, x0:x1], self.wy[y0:y1, x0:x1]
        return self.xs[:, x0:x1], self.ys[y0:y1, :]


def organ_window(organ: Organ, sec: Section, grid: Grid) -> Optional[Window]:
    margin = organ.edge_px + 2.0 + (grid.warp_max_px if organ.warped else 0.0)
    return section_window(sec, margin, grid.width, grid.height)


def paint_anatomy(organs: Sequence[Organ], z_mm: float, grid: Grid, win: Window,
                  hu: Optional[np.ndarray] = None, tex: Optional[np.ndarray] = None,
                  cover: Optional[np.ndarray] = None, cover_tissues=frozenset(),
                  covers: Optional[dict] = None) -> None:
    """Paint organs in order onto window ``win`` of the full-image arrays, in place.

    ``hu`` / ``tex`` (H, W float32) receive HU and texture amplitude (HU); ``cover`` (the
    window's shape) receives the fraction of each pixel's final value that comes from tissues in
    ``cover_tissues`` (the painter's algorithm run on indicator values): 1 inside a host organ
    that nothing covers.  ``covers`` maps more tissue sets to full-image (H, W) arrays filled the
    same way in the same pass.
    """
    covers = covers or {}
    for organ in organs:
        sec = organ.section(z_mm)
        if sec is None:
            continue
        ow = organ_window(organ, sec, grid)
        if ow is None:
            continue
        iw = intersect(ow, win)
        if iw is None:
            continue
        xs, ys = grid.coords(iw, organ.warped)
        q = ellipse_q(xs, ys, sec)
        x0, y0, x1, y1 = iw
        for layer in organ.layers:
            w = layer_weight(q, layer.scale, sec, organ.edge_px)
            if hu is not None:
                view = hu[y0:y1, x0:x1]
                view += w * (np.float32(layer.hu) - view)
            if tex is not None:
                view = tex[y0:y1, x0:x1]
                view += w * (np.float32(layer.tex_hu) - view)
            if cover is not None:
                view = cover[y0 - win[1]:y1 - win[1], x0 - win[0]:x1 - win[0]]
                target = np.float32(1.0 if layer.tissue in cover_tissues else 0.0)
                view += w * (target - view)
            for tissues, arr in covers.items():
                view = arr[y0:y1, x0:x1]
                if layer.tissue in tissues:
                    view += w * (np.float32(1.0) - view)
                else:
                    view *= np.float32(1.0) - w


def coverage(organs: Sequence[Organ], z_mm: float, grid: Grid, win: Window,
             tissues) -> np.ndarray:
    """(h, w) fraction of each pixel of ``win`` showing one of ``tissues`` after painting."""
    cov = np.zeros((win[3] - win[1], win[2] - win[0]), dtype=np.float32)
    paint_anatomy(organs, z_mm, grid, win, cover=cov, cover_tissues=frozenset(tissues))
    return cov


def pv_weight(shape, z_mm: float, thickness_mm: float, grid: Grid, edge_px: float,
              lobes=(), radius_scale: float = 1.0) -> Tuple[Optional[Window], Optional[np.ndarray]]:
    """Partial-volume weight of a lesion or tube on the slice at ``z_mm``.

    The mean of the soft cross-sections at the sub-planes ``z + thickness * PV_OFFSETS``: a
    structure ending inside the slab shows with reduced contrast.  Returns (window, weights) or
    (None, None) when no sub-plane meets it.
    """
    secs = []
    for off in PV_OFFSETS:
        if radius_scale == 1.0:
            sec = shape.section(z_mm + off * thickness_mm)
        else:
            sec = shape.section(z_mm + off * thickness_mm, radius_scale)
        if sec is not None:
            secs.append(sec)
    if not secs:
        return None, None
    lobe_max = sum(abs(e) for _, e, _ in lobes)
    win = None
    for sec in secs:
        r = max(sec[2], sec[3]) * lobe_max
        win = union(win, section_window(sec, edge_px + r + 2.0, grid.width, grid.height))
    if win is None:
        return None, None
    xs, ys = grid.coords(win, warped=False)
    acc = None
    for sec in secs:
        w = soft_ellipse(xs, ys, sec, edge_px, lobes)
        acc = w if acc is None else acc + w
    acc *= np.float32(1.0 / len(PV_OFFSETS))
    return win, acc
