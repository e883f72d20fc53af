"""DeepLesion key slices from mmlesion's COCO-style JSON (``docs/data_format.md``)."""
import math
import os.path as osp
from typing import Dict, List, Optional

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

_REQUIRED_IMAGE_FIELDS = ('file_name', 'width', 'height', 'volume_id', 'series', 'slice_index',
                          'slice_range', 'spacing')


def _optional_float(value) -> Optional[float]:
    # slice intervals may be null in JSON or NaN (DL_info.csv) -- both mean "unknown".
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@DATASETS.register_module()
class DeepLesionDataset(CocoDataset):
    """Key slices of DeepLesion sub-volumes with lesion boxes and hard negatives.

    Reads the COCO-style JSON written by mmlesion's converters (a superset of COCO; see
    ``docs/data_format.md``).  Each data info holds mmdet's fields (``img_path``, ``img_id``,
    ``height``, ``width``, ``instances``) plus, for the multi-slice loader and the evaluation:

    * ``volume_id`` (``PPPPPP_SS_RR_SSS-EEE``), ``series`` (``PPPPPP_SS_RR``),
      ``slice_index`` (absolute), ``slice_range`` ``[first, last]`` (absolute, inclusive),
      ``spacing`` ``[x, y, z]`` mm, ``slice_interval`` mm (``None`` when null or NaN; 0 is kept:
      both make the loader repeat the key slice), ``dicom_window`` HU, ``split``;
    * ``missing_slices``: absolute indices absent on disk, from the JSON's ``volumes`` section
      (``None`` when the volume is not listed or was not scanned: the loader then checks files);
      ``complete``: whether the sub-volume is completely annotated (``volumes[].complete``).

    Each instance: ``bbox`` ``[x1, y1, x2, y2]`` (0-based px, key slice), ``bbox_label`` (0),
    ``ignore_flag`` (``iscrowd``), ``hard_negative`` (bool; hard negatives are annotations of the
    same class, flagged), ``recist`` (8 numbers, 0-based, or ``None``), ``source``,
    ``lesion_type``, ``ann_id``.

    Args:
        drop_noisy: drop annotations flagged ``noisy`` (DeepLesion's ``Possibly_noisy``) at load
            time, as 3DCE/MULAN do.
        drop_hard_negatives: drop hard-negative annotations at load time.
        filter_cfg: as mmdet: ``filter_empty_gt`` drops training images without any non-ignored
            annotation -- an image with only hard negatives is kept (it teaches what not to
            detect); ``min_size`` drops images whose shorter side is below it (px).
        Other arguments as :class:`mmdet.datasets.CocoDataset`; images are found under
        ``data_prefix['img']`` (DeepLesion's ``Images_png``).
    """

    METAINFO = dict(classes=('lesion',), palette=[(220, 20, 60)])

    def __init__(self, *args, drop_noisy: bool = True, drop_hard_negatives: bool = False,
                 **kwargs) -> None:
        # load_data_list runs inside the parent's __init__, so these must exist first.
        self.drop_noisy = drop_noisy
        self.drop_hard_negatives = drop_hard_negatives
        self._volumes: Optional[Dict[str, dict]] = None
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        self._volumes = None
        try:
            return super().load_data_list()
        finally:
            self._volumes = None

    def _prepare_parsing(self) -> None:
        # Runs once per load while self.coco (deleted by the parent after loading) exists.
        if not self.cat_ids:
            names = [c.get('name') for c in self.coco.dataset.get('categories', [])]
            raise ValueError(f'{self.ann_file}: no category named {list(self.metainfo["classes"])} '
                             f'(the JSON has {names}); every annotation would be dropped')
        volumes = {}
        for volume in self.coco.dataset.get('volumes', []) or []:
            if 'id' not in volume:
                raise ValueError(f'{self.ann_file}: a "volumes" entry has no "id": {volume!r}')
            volumes[volume['id']] = volume
        self._volumes = volumes

    def parse_data_info(self, raw_data_info: dict) -> dict:
        if self._volumes is None:
            self._prepare_parsing()
        img_info = raw_data_info['raw_img_info']
        ann_info = raw_data_info['raw_ann_info']
        missing = [f for f in _REQUIRED_IMAGE_FIELDS if img_info.get(f) is None]
        if missing:
            raise ValueError(f'{self.ann_file}: image id {img_info.get("id")} '
                             f'({img_info.get("file_name")!r}) lacks {missing} '
                             '(see docs/data_format.md)')
        slice_range = [int(v) for v in img_info['slice_range']]
        slice_index = int(img_info['slice_index'])
        if len(slice_range) != 2 or not slice_range[0] <= slice_index <= slice_range[1]:
            raise ValueError(f'{self.ann_file}: image id {img_info["id"]} '
                             f'({img_info["file_name"]!r}): slice_index {slice_index} is not '
                             f'inside slice_range {img_info["slice_range"]}')
        volume = self._volumes.get(img_info['volume_id'], {})
        missing_slices = volume.get('missing_slices')

        img_prefix = self.data_prefix.get('img', self.data_prefix.get('img_path', ''))
        data_info = dict(
            img_path=osp.join(img_prefix, img_info['file_name']),
            img_id=img_info['img_id'],
            seg_map_path=None,
            height=int(img_info['height']),
            width=int(img_info['width']),
            volume_id=img_info['volume_id'],
            series=img_info['series'],
            slice_index=slice_index,
            slice_range=slice_range,
            spacing=[_optional_float(v) for v in img_info['spacing']],
            slice_interval=_optional_float(img_info.get('slice_interval')),
            dicom_window=img_info.get('dicom_window'),
            split=img_info.get('split', volume.get('split')),
            missing_slices=None if missing_slices is None else [int(i) for i in missing_slices],
            complete=bool(volume.get('complete', False)))

        instances = []
        for ann in ann_info:
            if ann.get('ignore', False):
                continue
            if self.drop_noisy and ann.get('noisy', False):
                continue
            hard_negative = bool(ann.get('hard_negative', False))
            if self.drop_hard_negatives and hard_negative:
                continue
            x1, y1, w, h = ann['bbox']
            # Same validity rules as mmdet's CocoDataset: boxes outside the image or thinner
            # than a pixel are skipped.
            inter_w = max(0, min(x1 + w, data_info['width']) - max(x1, 0))
            inter_h = max(0, min(y1 + h, data_info['height']) - max(y1, 0))
            if inter_w * inter_h == 0 or ann.get('area', w * h) <= 0 or w < 1 or h < 1:
                continue
            if ann['category_id'] not in self.cat_ids:
                continue
            instances.append(
                dict(
                    bbox=[x1, y1, x1 + w, y1 + h],
                    bbox_label=self.cat2label[ann['category_id']],
                    ignore_flag=1 if ann.get('iscrowd', False) else 0,
                    hard_negative=hard_negative,
                    recist=ann.get('recist'),
                    source=ann.get('source'),
                    lesion_type=ann.get('lesion_type', -1),
                    ann_id=ann.get('id')))
        data_info['instances'] = instances
        return data_info

    def filter_data(self) -> List[dict]:
        """Drop training images without a usable annotation (positives *or* hard negatives) when
        ``filter_empty_gt``, and images whose shorter side is below ``min_size`` px."""
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        valid = []
        for data_info in self.data_list:
            if filter_empty_gt and not any(inst['ignore_flag'] == 0
                                           for inst in data_info['instances']):
                continue
            if min(data_info['width'], data_info['height']) >= min_size:
                valid.append(data_info)
        return valid
