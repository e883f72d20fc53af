# Faster R-CNN 2.5D (paper Table III baseline, docs/method.md#faster-rcnn): mmdet's FasterRCNN on
# the MSCN backbone -- 2.5D DenseNet-121 truncated after dense block 3, shared over 3 slice groups,
# 3D context fusion at the last level (MULAN) -- then mmdet's FPN, RPN and a one-class RoI head.
# The missing-label strategies change train_cfg.rcnn only (configs/faster_rcnn/*-{obhs,mobhs,obss}).
model = dict(
    type='FasterRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # as MSCN: MULAN's pixel mean 50 on the [0, 255] window, not divided
        mean=[50.0],
        std=[1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-50.0),  # padding after normalisation: raw 0 = -1024 HU (air)
    backbone=dict(
        type='DenseNet25D',
        num_slice_groups=3,
        in_channels_per_group=3,
        growth_rate=32,
        block_config=(6, 12, 24),
        bn_size=4,
        num_init_features=64,
        out_indices=(0, 1, 2),  # strides 4, 8, 16
        fusion_levels=(2, ),  # MULAN: fuse at the last level only
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        pretrained_torchvision=None),
    # FPN over the three dense blocks plus a max-pooled stride-32 level for large lesions
    neck=dict(type='FPN', in_channels=[256, 512, 1024], out_channels=256, num_outs=4),
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        # anchors of 16-128 px (13-102 mm at 0.8 mm/px): DeepLesion's lesions are small
        # *(ours; MULAN anchors 16-96 px on one level)*
        anchor_generator=dict(
            type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        # mmdet's Shared2FCBBoxHead, plus per-negative weights from the samplers of OBSS/M-OBHS
        bbox_head=dict(
            type='NegativeWeightedBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=1,  # lesion
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        # the plain baseline: every RoI below 0.5 IoU is background, all weighted 1
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        # low score floor: the scan keeps slice detections above t_G (test_cfg.score_thr) itself
        rcnn=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
