# Faster R-CNN 2.5D sized for a 2-core CPU on the built-in synthetic data: the data pipeline,
# schedule and seed of the synthetic MSCN-HNSL config and its backbone size (same DenseNet25D
# code, growth 16, blocks (2, 4, 6)); the detector of configs/faster_rcnn/ (mmdet's FPN, RPN and a
# one-class RoI head, docs/method.md#faster-rcnn) at reduced widths.  Table III on synthetic data:
# docs/results.md#table-3.
_base_ = ['./mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py']

model = dict(
    _delete_=True,  # MSCN's model is replaced, not merged
    type='FasterRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor', mean=[50.0], std=[1.0], bgr_to_rgb=False,
        pad_size_divisor=16, pad_value=-50.0),
    backbone=dict(
        type='DenseNet25D', num_slice_groups=3, in_channels_per_group=3, growth_rate=16,
        block_config=(2, 4, 6), bn_size=4, num_init_features=32, out_indices=(0, 1, 2),
        fusion_levels=(2, ), frozen_stages=-1, norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True), pretrained_torchvision=None),
    # block outputs 32 + 2*16 = 64 (stride 4), 32 + 4*16 = 96 (8), 48 + 6*16 = 144 (16); FPN adds
    # a max-pooled stride-32 level
    neck=dict(type='FPN', in_channels=[64, 96, 144], out_channels=32, num_outs=4),
    rpn_head=dict(
        type='RPNHead', in_channels=32, feat_channels=32,
        # 16-128 px anchors = 19-154 mm at 1.2 mm/px, as the paper config's 13-102 mm
        anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=32, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='NegativeWeightedBBoxHead', in_channels=32, fc_out_channels=256,
            roi_feat_size=7, num_classes=1,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False),
        # 300 proposals on 128-192 px slices with a few lesions each (paper config: 1000)
        rpn_proposal=dict(nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
                          min_bbox_size=0),
        # the plain baseline; configs/synthetic/faster-rcnn-{obhs,mobhs,obss}_* replace it
        rcnn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                          min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                         add_gt_as_proposals=True),
            pos_weight=-1, debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
                 min_bbox_size=0),
        rcnn=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.5), max_per_img=50)))
# harvest rounds' hard negatives are for the HNSL only; harvested positives are kept
train_dataloader = dict(dataset=dict(drop_hard_negatives=True))
# mmcv's RoIAlign reads NCHW features: no channels-last weights here
custom_hooks = []
