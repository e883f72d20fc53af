# M3DCF-style detector (configs/m3dcf/, docs/method.md#m3dcf) at the CPU size of the synthetic
# MSCN-HNSL config, which it inherits: the same tiny DenseNet, data, augmentation, crops, schedule
# and seed, so the two differ only in fusion levels, neck and head (docs/results.md#m3dcf).
_base_ = ['./mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py']

model = dict(
    _delete_=True,
    type='ATSS',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[50.0], std=[1.0], bgr_to_rgb=False,
                           pad_size_divisor=16, pad_value=-50.0),
    backbone=dict(
        type='DenseNet25D', num_slice_groups=3, in_channels_per_group=3,
        growth_rate=16, block_config=(2, 4, 6), bn_size=4, num_init_features=32,
        out_indices=(0, 1, 2),
        # fused at every level from per-slice features (the M3DCF change to MSCN)
        fusion_levels=(0, 1, 2), fusion_mode='output'),
    # strides 4, 8, 16 and one extra 32: anchors 16-128 px = 19-154 mm at 1.2 mm/px
    neck=dict(type='FPN', in_channels=[64, 96, 144], out_channels=32, start_level=0,
              add_extra_convs='on_output', num_outs=4),
    # 2 stacked convs of 32 channels, not 4 of 128 *(ours)*: the head's cost at the tiny
    # backbone's scale (the stride-4 level alone is 16x the pixels of the stride-16 one)
    bbox_head=dict(
        type='ATSSHead', num_classes=1, in_channels=32, stacked_convs=2, feat_channels=32,
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4,
                              scales_per_octave=1, strides=[4, 8, 16, 32]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                   pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.6), max_per_img=50))
train_dataloader = dict(dataset=dict(drop_hard_negatives=True))
