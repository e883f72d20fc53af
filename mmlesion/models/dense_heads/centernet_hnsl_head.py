"""CenterNet head with the hard-negative suppression loss (HNSL)."""
from typing import List, Optional, Tuple

from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import CenterNetHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList

from ..utils.signed_gaussian_target import RADIUS_RULES, draw_box_gaussians, signed_gaussian_target


@MODELS.register_module()
class CenterNetHNSLHead(CenterNetHead):
    """mmdet ``CenterNetHead`` trained with signed heatmap targets (HNSL).

    Everything of :class:`mmdet.models.dense_heads.CenterNetHead` is
    unchanged (branches, init, decoding, wh/offset targets, loss weights:
    heatmap 1, wh 0.1, offset 1; ``GaussianFocalLoss(alpha=2, gamma=4)`` -
    mmdet's ``alpha`` / ``gamma`` are the paper's alpha / beta) except the
    heatmap target: the lesion heatmap ``Y^p`` is overwritten by ``-Y^n``
    wherever the hard-negative heatmap ``Y^n`` (Gaussians of
    ``data_sample.gt_hard_negatives.bboxes``, see
    :mod:`mmlesion.models.utils.signed_gaussian_target`) is positive. The
    focal loss, unchanged, then weighs a hard-negative centre 16x an ordinary
    background pixel with the same prediction.

    Normalisation is CenterNetHead's: ``avg_factor = max(1, #(Y == 1))``
    counted on the target actually used, i.e. lesion peaks that a hard
    negative overwrote no longer count. wh/offset targets and their weights
    come only from lesions (hard negatives have no size to regress), as in
    CenterNetHead. Without hard negatives every loss and prediction equals
    CenterNetHead's bit for bit.

    Prediction: as CenterNetHead, except that a missing ``img_meta['border']``
    (set only by mmdet's ``RandomCenterCropPad``) is read as no border
    instead of raising ``KeyError``.

    Args:
        hard_negative_radius_rule (str): ``'same'`` (paper): hard-negative
            Gaussians use the lesion radius rule (``gaussian_radius`` with
            ``min_overlap=0.3`` of the box size); ``'center'``: only the
            centre pixel (-1).
        *args, **kwargs: as :class:`CenterNetHead` (``in_channels``,
            ``feat_channels``, ``num_classes``, losses, ``train_cfg``,
            ``test_cfg``, ``init_cfg``).
    """

    def __init__(self,
                 *args,
                 hard_negative_radius_rule: str = 'same',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if hard_negative_radius_rule not in RADIUS_RULES:
            raise ValueError('CenterNetHNSLHead: hard_negative_radius_rule '
                             f'must be one of {RADIUS_RULES}, got '
                             f'{hard_negative_radius_rule!r}')
        self.hard_negative_radius_rule = hard_negative_radius_rule
        # CenterNetHead reads test_cfg.topk by attribute: accept plain dicts
        if isinstance(self.test_cfg, dict) and not isinstance(
                self.test_cfg, ConfigDict):
            self.test_cfg = ConfigDict(self.test_cfg)

    def loss(self, x: Tuple[Tensor], batch_data_samples: SampleList) -> dict:
        """Forward and loss, reading ``gt_hard_negatives`` of each sample.

        Args:
            x (tuple[Tensor]): One ``N x in_channels x H x W`` feature map.
            batch_data_samples (list[DetDataSample]): with ``gt_instances``
                and optionally ``gt_hard_negatives`` (``InstanceData`` with
                ``bboxes`` ``M x 4`` in the same frame as
                ``gt_instances.bboxes``, tensor or ``HorizontalBoxes``;
                optional ``labels``).

        Returns:
            dict[str, Tensor]: ``loss_center_heatmap``, ``loss_wh``,
            ``loss_offset``.
        """
        outs = self(x)
        (batch_gt_instances, batch_gt_instances_ignore,
         batch_img_metas) = unpack_gt_instances(batch_data_samples)
        batch_gt_hard_negatives = [
            data_sample.get('gt_hard_negatives', None)
            for data_sample in batch_data_samples
        ]
        return self.loss_by_feat(
            *outs,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore,
            batch_gt_hard_negatives=batch_gt_hard_negatives)

    def loss_by_feat(
            self,
            center_heatmap_preds: List[Tensor],
            wh_preds: List[Tensor],
            offset_preds: List[Tensor],
            batch_gt_instances: InstanceList,
            batch_img_metas: List[dict],
            batch_gt_instances_ignore: OptInstanceList = None,
            batch_gt_hard_negatives: Optional[List[Optional[
                InstanceData]]] = None) -> dict:
        """CenterNetHead's loss with the signed heatmap target.

        Args:
            center_heatmap_preds, wh_preds, offset_preds (list[Tensor]): One
                level each, ``B x num_classes x H x W`` (sigmoid),
                ``B x 2 x H x W``, ``B x 2 x H x W``.
            batch_gt_instances (list[InstanceData]): ``bboxes`` (input px,
                ``[x1, y1, x2, y2]``) and ``labels`` per image.
            batch_img_metas (list[dict]): needs ``batch_input_shape``.
            batch_gt_instances_ignore: unused, as in CenterNetHead.
            batch_gt_hard_negatives (list[InstanceData | None], optional):
                Per image hard-negative boxes (``bboxes``, optional
                ``labels``); None or empty entries mean none.

        Returns:
            dict[str, Tensor]: ``loss_center_heatmap``, ``loss_wh``,
            ``loss_offset``.
        """
        assert len(center_heatmap_preds) == len(wh_preds) == len(
            offset_preds) == 1
        center_heatmap_pred = center_heatmap_preds[0]
        wh_pred = wh_preds[0]
        offset_pred = offset_preds[0]

        gt_bboxes = [
            gt_instances.bboxes for gt_instances in batch_gt_instances
        ]
        gt_labels = [
            gt_instances.labels for gt_instances in batch_gt_instances
        ]
        img_shape = batch_img_metas[0]['batch_input_shape']
        neg_bboxes, neg_labels = self._unpack_hard_negatives(
            batch_gt_hard_negatives, len(batch_gt_instances), batch_img_metas)
        target_result, avg_factor = self.get_targets(
            gt_bboxes,
            gt_labels,
            center_heatmap_pred.shape,
            img_shape,
            hard_negative_bboxes=neg_bboxes,
            hard_negative_labels=neg_labels)

        center_heatmap_target = target_result['center_heatmap_target']
        wh_target = target_result['wh_target']
        offset_target = target_result['offset_target']
        wh_offset_target_weight = target_result['wh_offset_target_weight']

        # identical calls to CenterNetHead.loss_by_feat (mmdet 3.3): the wh /
        # offset avg_factor is twice the heatmap one (two channels each)
        loss_center_heatmap = self.loss_center_heatmap(
            center_heatmap_pred, center_heatmap_target, avg_factor=avg_factor)
        loss_wh = self.loss_wh(
            wh_pred,
            wh_target,
            wh_offset_target_weight,
            avg_factor=avg_factor * 2)
        loss_offset = self.loss_offset(
            offset_pred,
            offset_target,
            wh_offset_target_weight,
            avg_factor=avg_factor * 2)
        return dict(
            loss_center_heatmap=loss_center_heatmap,
            loss_wh=loss_wh,
            loss_offset=loss_offset)

    def _unpack_hard_negatives(
        self, batch_gt_hard_negatives: Optional[List[Optional[InstanceData]]],
        batch_size: int, batch_img_metas: List[dict]
    ) -> Tuple[Optional[List[Tensor]], Optional[List[Optional[Tensor]]]]:
        """Per-image hard-negative box tensors and labels; ``(None, None)``
        when the batch has none."""
        if batch_gt_hard_negatives is None:
            return None, None
        if len(batch_gt_hard_negatives) != batch_size:
            raise ValueError(
                f'batch_gt_hard_negatives has {len(batch_gt_hard_negatives)} '
                f'entries for a batch of {batch_size} images')
        bboxes, labels = [], []
        for i, hard_negatives in enumerate(batch_gt_hard_negatives):
            if hard_negatives is None or 'bboxes' not in hard_negatives:
                bboxes.append(None)
                labels.append(None)
                continue
            boxes = get_box_tensor(hard_negatives.bboxes)
            if boxes.dim() != 2 or boxes.shape[-1] != 4:
                where = batch_img_metas[i].get('img_path', f'image {i}')
                raise ValueError(
                    f'{where}: gt_hard_negatives.bboxes must be M x 4 '
                    f'[x1, y1, x2, y2], got shape {tuple(boxes.shape)}')
            bboxes.append(boxes)
            labels.append(hard_negatives.get('labels', None))
        if all(b is None or b.numel() == 0 for b in bboxes):
            return None, None
        return bboxes, labels

    def get_targets(
        self,
        gt_bboxes: List[Tensor],
        gt_labels: List[Tensor],
        feat_shape: tuple,
        img_shape: tuple,
        hard_negative_bboxes: Optional[List[Optional[Tensor]]] = None,
        hard_negative_labels: Optional[List[Optional[Tensor]]] = None
    ) -> Tuple[dict, int]:
        """CenterNetHead targets with the heatmap made signed.

        Args:
            gt_bboxes, gt_labels, feat_shape, img_shape: as
                ``CenterNetHead.get_targets`` (boxes in input px; feat_shape
                ``(B, C, H, W)``; img_shape the padded input ``(H, W)``).
            hard_negative_bboxes (list[Tensor | None], optional): Per image
                ``M x 4`` boxes, same frame as ``gt_bboxes``.
            hard_negative_labels (list[Tensor | None], optional): Per image
                ``M`` class indices; None: every class.

        Returns:
            tuple[dict, Tensor | int]: CenterNetHead's dict, with
            ``center_heatmap_target`` = the signed target ``Y`` and
            ``hard_negative_heatmap`` = ``Y^n`` (``B x num_classes x H x
            W``), and ``avg_factor = max(1, #(Y == 1))``. Without hard
            negatives: exactly CenterNetHead's result (no extra key).
        """
        target_result, avg_factor = super().get_targets(
            gt_bboxes, gt_labels, feat_shape, img_shape)
        if hard_negative_bboxes is None:
            return target_result, avg_factor
        if len(hard_negative_bboxes) != feat_shape[0]:
            raise ValueError(
                f'hard_negative_bboxes has {len(hard_negative_bboxes)} '
                f'entries for a batch of {feat_shape[0]} images')
        if hard_negative_labels is None:
            hard_negative_labels = [None] * len(hard_negative_bboxes)

        img_h, img_w = img_shape[:2]
        _, _, feat_h, feat_w = feat_shape
        width_ratio = float(feat_w / img_w)
        height_ratio = float(feat_h / img_h)
        pos_heatmap = target_result['center_heatmap_target']
        neg_heatmap = pos_heatmap.new_zeros(pos_heatmap.shape)
        for batch_id, (boxes, labels) in enumerate(
                zip(hard_negative_bboxes, hard_negative_labels)):
            if boxes is None or boxes.numel() == 0:
                continue
            draw_box_gaussians(
                neg_heatmap[batch_id],
                boxes.to(pos_heatmap),
                labels,
                width_ratio,
                height_ratio,
                min_overlap=0.3,
                radius_rule=self.hard_negative_radius_rule)
        signed = signed_gaussian_target(pos_heatmap, neg_heatmap)
        target_result['center_heatmap_target'] = signed
        target_result['hard_negative_heatmap'] = neg_heatmap
        avg_factor = max(1, signed.eq(1).sum())
        return target_result, avg_factor

    def _predict_by_feat_single(self,
                                center_heatmap_pred: Tensor,
                                wh_pred: Tensor,
                                offset_pred: Tensor,
                                img_meta: dict,
                                rescale: bool = True,
                                with_nms: bool = False) -> InstanceData:
        """CenterNetHead's decoding; a missing ``border`` means none."""
        if 'border' not in img_meta:
            img_meta = dict(img_meta, border=(0, 0, 0, 0))
        return super()._predict_by_feat_single(
            center_heatmap_pred,
            wh_pred,
            offset_pred,
            img_meta,
            rescale=rescale,
            with_nms=with_nms)
