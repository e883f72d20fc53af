"""A hand-made annotation set (4 volumes) in mmlesion JSON and in the Lesion Harvester formats.

Volumes (mmlesion frame: 0-based x/y, absolute z):

* A ``000001_01_01_005-025``: lesion g1 on z=10 [10, 10, 29, 29]; lesion g2 on z=12
  [50, 50, 59, 59]; a *noisy* mark on z=12 [100, 100, 110, 110] (dropped by default).
* B ``000002_01_01_000-010``: lesion g3 on z=5 [0, 0, 9, 9]; lesion g4 on z=7 [80, 80, 99, 99].
* C ``000003_01_01_000-010``: only a *hard negative* on z=3 [0, 0, 5, 5] (not a lesion).
* D ``000004_01_01_000-010``: nothing at all (listed in ``volumes`` only).
"""

A, B, C, D = ('000001_01_01_005-025', '000002_01_01_000-010', '000003_01_01_000-010',
              '000004_01_01_000-010')


def _image(i, key, z):
    return dict(id=i, file_name=f'{key[:12]}/{z:03d}.png', width=128, height=128, volume_id=key,
                series=key[:12], slice_index=z, slice_range=[int(key[13:16]), int(key[17:20])],
                spacing=[0.7, 0.7, 5.0], slice_interval=5.0, split='test')


def _ann(i, image_id, xyxy, **kw):
    x1, y1, x2, y2 = xyxy
    ann = dict(id=i, image_id=image_id, category_id=1, bbox=[x1, y1, x2 - x1, y2 - y1],
               area=(x2 - x1) * (y2 - y1), iscrowd=0, noisy=False, hard_negative=False,
               source='revised')
    ann.update(kw)
    return ann


def make_coco():
    images = [_image(1, A, 10), _image(2, A, 12), _image(3, B, 5), _image(4, B, 7),
              _image(5, C, 3)]
    anns = [
        _ann(1, 1, [10, 10, 29, 29]),
        _ann(2, 2, [50, 50, 59, 59]),
        _ann(3, 2, [100, 100, 110, 110], noisy=True),
        _ann(4, 3, [0, 0, 9, 9]),
        _ann(5, 4, [80, 80, 99, 99]),
        _ann(6, 5, [0, 0, 5, 5], hard_negative=True),
    ]
    volumes = [dict(id=k, series=k[:12], slice_range=[int(k[13:16]), int(k[17:20])],
                    spacing=[0.7, 0.7, 5.0], split='test', complete=True, missing_slices=[])
               for k in (A, B, C, D)]
    return dict(info={}, categories=[{'id': 1, 'name': 'lesion'}], images=images,
                annotations=anns, volumes=volumes)


def make_lh2d():
    """The same lesions (noisy mark and hard negative left out) in the LH 2D format."""
    def box(x1, y1, x2, y2, z_rel):
        return [x1 + 1, y1 + 1, x2 + 1, y2 + 1, z_rel, z_rel]
    return {
        A + '.annot': {5: [box(10, 10, 29, 29, 5)], 7: [box(50, 50, 59, 59, 7)]},
        B + '.annot': {5: [box(0, 0, 9, 9, 5)], 7: [box(80, 80, 99, 99, 7)]},
        C + '.annot': {},
        D + '.annot': {},
    }


# tracklets (mmlesion frame) whose P3D numbers are worked out in test_p3d_metric.py
TRACKLETS = {
    A: [[(9, [10, 10, 29, 29, 0.2]), (10, [10, 10, 29, 29, 0.9]), (11, [11, 11, 28, 28, 0.3])],
        [(12, [100, 100, 110, 110, 0.8])],
        [(12, [50, 50, 59, 59, 0.5])]],
    B: [[(5, [0, 0, 9, 9, 0.7])]],
    C: [[(3, [0, 0, 5, 5, 0.6])]],
}
