# M3DCF-style detector (docs/method.md#m3dcf): the seed's three ideas (seeds' m3dcf README) built
# from mmlesion's and mmdet's parts -- (1) a one-stage detector, (2) 3D context fusion of the
# neighbouring slices' features, (3) at several scales, feeding a multi-scale head.
model = dict(
    type='ATSS',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[50.0],  # as MSCN (MULAN): [0, 255] window minus 50, not divided
        std=[1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-50.0),  # padding after normalisation: raw 0 = -1024 HU (air)
    backbone=dict(
        type='DenseNet25D',
        num_slice_groups=3,  # 9 slices at 2 mm, the MSCN input, so the two compare
        in_channels_per_group=3,
        growth_rate=32,
        block_config=(6, 12, 24),
        bn_size=4,
        num_init_features=64,
        out_indices=(0, 1, 2),
        # (2)+(3): fusion at every level (strides 4, 8, 16), not only the last (MULAN/MSCN)
        fusion_levels=(0, 1, 2),
        # each level fuses the slices' own features ("fuse the extracted feature of multiple
        # neighboring slices"); the trunk stays per-slice (DenseNet25D, fusion_mode)
        fusion_mode='output',
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        pretrained_torchvision=None),
    # (3): an FPN over the three fused levels plus one extra level (strides 4..32): lesions of
    # 4-400 px at 0.8 mm/px, where the seed's darknet (YOLOv3) predicts at three scales
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024],
        out_channels=128,
        start_level=0,
        add_extra_convs='on_output',
        num_outs=4),
    # (1): one-stage head from mmdet.  Ours: ATSS rather than the seed's YOLOv3 head -- anchors as
    # YOLO, but positives chosen per object from IoU statistics, so no k-means anchor priors of
    # DeepLesion are needed; one square anchor per cell, 4 x the stride (16-128 px)
    bbox_head=dict(
        type='ATSSHead',
        num_classes=1,
        in_channels=128,
        stacked_convs=4,
        feat_channels=128,
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=4,
            scales_per_octave=1,
            strides=[4, 8, 16, 32]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1,
                   debug=False),
    # slice detections above 0.05 (mmdet's default); the volume scan keeps those above t_G
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.6), max_per_img=100))
