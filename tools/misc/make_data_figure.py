"""Draw ``docs/images/data_examples.png``: the kinds of data the project trains and tests on.

    python tools/misc/make_data_figure.py [--out docs/images/data_examples.png] \
        [--real-ct-dir DIR] [--seed 0]

Panels (key slices read back from the written 16-bit PNGs, HU = raw - 32768):
(a) a synthetic phantom, soft-tissue window; (b) real anatomy (lung2) with an inserted liver
lesion, soft-tissue window; (c) real anatomy with an inserted lung nodule and vessel-like
look-alikes, lung window; (d) the real lung nodule of lung1 with its RECIST axes, lung window.
Boxes: red = RECIST-marked (a DL_info.csv row), orange dashed = unmarked lesion (complete truth
only), green = real lesion, yellow = look-alike tube (mask extent).  Everything is generated in a
temporary folder; the PNG is written atomically with a grey + box-colour palette (< 300 KB).
"""
import argparse
import io
import json
import os
import tempfile

import cv2
import numpy as np

from mmlesion.datasets.png_codec import raw_to_hu, read_uint16_png
from mmlesion.synthetic import generate_dataset
from mmlesion.synthetic.lesion_masks import describe_mask_lesion, mask_lesions
from mmlesion.synthetic.nrrd_volume import load_real_ct
from mmlesion.synthetic.writer import LUNG_WINDOW, SOFT_WINDOW
from mmlesion.utils.fileio import atomic_write_bytes

PANEL_PX = 256


def _window(hu, window):
    lo, hi = window
    return np.clip((hu.astype(np.float32) - lo) / (hi - lo), 0, 1)


def _read_hu(root, series, k):
    return raw_to_hu(read_uint16_png(os.path.join(root, 'Images_png', series, f'{k:03d}.png')))


def _objects(vol, k):
    """(box, style) of every lesion / look-alike of a truth volume on slice k (0-based px)."""
    out = []
    for la in vol['lookalikes']:
        for s in la['slices']:
            if s['slice'] == k:
                x1, y1, x2, y2 = s['mask_box']
                out.append(([x1 - 1, y1 - 1, x2 + 1, y2 + 1], 'lookalike'))
    for les in vol['lesions']:
        for s in les['slices']:
            if s['slice'] == k:
                style = 'real' if les.get('origin') == 'real' else (
                    'marked' if les['marked'] else 'unmarked')
                out.append((s['box'], style))
    return out


def _pick(truth, want, score=None):
    """The (volume, lesion) matching ``want(volume, lesion)``, the first or the best ``score``."""
    found = [(v, les) for v in truth['volumes'] for les in v['lesions'] if want(v, les)]
    if not found:
        raise RuntimeError('no volume shows the wanted example; try another --seed')
    return max(found, key=lambda vl: score(*vl)) if score is not None else found[0]


def _n_lookalikes(vol, les):
    return sum(style == 'lookalike' for _, style in _objects(vol, les['key_slice']))


def build_panels(real_ct_dir=None, seed=0):
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        ph = os.path.join(tmp, 'phantom')
        generate_dataset(ph, 4, seed=seed, image_size=PANEL_PX, small_image_fraction=0.0)
        with open(os.path.join(ph, 'ground_truth', 'truth.json')) as f:
            truth = json.load(f)
        vol, les = _pick(truth, lambda v, le: le['marked'] and v['region'] == 'abdomen'
                         and len(v['lesions']) >= 2)
        k = les['key_slice']
        panels.append((_window(_read_hu(ph, vol['series'], k), SOFT_WINDOW),
                       _objects(vol, k), f'(a) phantom, {vol["spacing"][0]:.2f} mm/px'))

        ra = os.path.join(tmp, 'real')
        generate_dataset(ra, 16, seed=seed, image_size=PANEL_PX, small_image_fraction=0.0,
                         anatomy='real', real_ct_dir=real_ct_dir)
        with open(os.path.join(ra, 'ground_truth', 'truth.json')) as f:
            truth = json.load(f)
        vol, les = _pick(truth, lambda v, le: le['organ'] == 'liver' and le['marked'])
        k = les['key_slice']
        panels.append((_window(_read_hu(ra, vol['series'], k), SOFT_WINDOW), _objects(vol, k),
                       '(b) real CT + inserted liver lesion'))
        vol, les = _pick(truth, lambda v, le: le['organ'] == 'lung' and le['marked']
                         and le.get('origin') == 'synthetic', score=_n_lookalikes)
        k = les['key_slice']
        panels.append((_window(_read_hu(ra, vol['series'], k), LUNG_WINDOW), _objects(vol, k),
                       '(c) real CT + lung nodule, vessels'))

    vol = load_real_ct(real_ct_dir, ('lung1',))[0]
    m, = mask_lesions(vol.label)
    d = describe_mask_lesion(m, vol.spacing[:2])
    kz = d['key_slice'] - 1
    # 512 px real slice cropped around the nodule's lung, shown at the panel size
    cx, cy = (int(v) for v in d['center_px'])
    half = 128
    x0 = min(max(cx - half, 0), vol.hu.shape[2] - 2 * half)
    y0 = min(max(cy - half, 0), vol.hu.shape[1] - 2 * half)
    img = _window(vol.hu[kz, y0:y0 + 2 * half, x0:x0 + 2 * half], LUNG_WINDOW)
    f = PANEL_PX / (2.0 * half)
    r = [(v - o) * f for v, o in zip(d['recist'], (x0, y0) * 4)]
    b = [(v - o) * f for v, o in zip(d['box2d'], (x0, y0) * 2)]
    panels.append((cv2.resize(img, (PANEL_PX, PANEL_PX)), [(b, 'real')],
                   f'(d) real nodule, {d["diameters_mm"][0]:.0f} x {d["diameters_mm"][1]:.0f} mm',
                   r))
    return panels


def draw(panels):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    styles = {'marked': dict(ec='#ff3030', ls='-'), 'unmarked': dict(ec='#ffa020', ls='--'),
              'real': dict(ec='#30e030', ls='-'), 'lookalike': dict(ec='#ffff40', ls=':')}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.85), dpi=100)
    for ax, panel in zip(axes, panels):
        img, objects, title = panel[:3]
        ax.imshow(img, cmap='gray', vmin=0, vmax=1, interpolation='bilinear')
        for box, style in objects:
            x1, y1, x2, y2 = box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.3,
                                   **styles[style]))
        if len(panel) > 3:
            r = panel[3]
            ax.plot([r[0], r[2]], [r[1], r[3]], color='#30e030', lw=1.0)
            ax.plot([r[4], r[6]], [r[5], r[7]], color='#30e030', lw=1.0)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    handles = [Rectangle((0, 0), 1, 1, fill=False, lw=1.3, **styles[k]) for k in styles]
    fig.legend(handles, ['marked (DL_info row)', 'unmarked (truth only)', 'real lesion',
                         'look-alike'], loc='lower center', ncol=4, fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.005, right=0.995, top=0.9, bottom=0.1, wspace=0.03)
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100, facecolor='white')
    plt.close(fig)
    return buf.getvalue()


def _quantise(png_bytes):
    """Palette PNG (about 4x smaller): 250 grey levels plus the box and text colours."""
    from PIL import Image
    im = Image.open(io.BytesIO(png_bytes)).convert('RGB')
    colours = [(int(v), int(v), int(v)) for v in np.linspace(0, 255, 250)]
    colours += [(0xff, 0x30, 0x30), (0xff, 0xa0, 0x20), (0x30, 0xe0, 0x30), (0xff, 0xff, 0x40)]
    colours += [(0, 0, 0)] * (256 - len(colours))
    pal = Image.new('P', (1, 1))
    pal.putpalette([c for rgb in colours for c in rgb])
    out = io.BytesIO()
    im.quantize(palette=pal, dither=Image.Dither.NONE).save(out, format='PNG', optimize=True)
    return out.getvalue()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=os.path.join('docs', 'images', 'data_examples.png'),
                   help='output PNG (default docs/images/data_examples.png)')
    p.add_argument('--real-ct-dir', default=None,
                   help='folder of lung{1,2}_{image,label}.nrrd (default: found as '
                   'mmlesion.utils.locations says)')
    p.add_argument('--seed', type=int, default=0, help='seed of the synthetic panels (default 0)')
    args = p.parse_args(argv)
    data = _quantise(draw(build_panels(args.real_ct_dir, args.seed)))
    atomic_write_bytes(args.out, data)
    print(f'wrote {args.out} ({len(data) / 1024:.0f} KB)')


if __name__ == '__main__':
    main()
