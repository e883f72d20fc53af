# MSCN (multi-slice CenterNet): 2.5D DenseNet-121 truncated after dense block 3, shared over 3
# slice groups, 3D context fusion at the last level (MULAN), FPN-style upsampling to stride 4,
# CenterNet head (docs/method.md#mscn).  Heatmap focal loss alpha=2, beta=4 (mmdet calls them
# alpha/gamma); loss weights 1/0.1/1.
# LesionCenterNet is mmdet's CenterNet plus CenterNet's flip test (test_cfg.flip_test, off here).
model = dict(
    type='LesionCenterNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # MULAN subtracts a pixel mean of 50 from the [0, 255] window and does not divide
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
        out_indices=(0, 1, 2),
        fusion_levels=(2, ),  # MULAN: fuse at the last level only
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        # path to torchvision's densenet121-a639ec97.pth to start from ImageNet weights
        pretrained_torchvision=None),
    neck=dict(
        type='LesionFPNUpsample', in_channels=[256, 512, 1024], out_channels=64, feat_channels=128),
    bbox_head=dict(
        type='CenterNetHNSLHead',
        num_classes=1,
        in_channels=64,
        feat_channels=64,
        loss_center_heatmap=dict(type='GaussianFocalLoss', alpha=2.0, gamma=4.0, loss_weight=1.0),
        loss_wh=dict(type='L1Loss', loss_weight=0.1),
        loss_offset=dict(type='L1Loss', loss_weight=1.0),
        hard_negative_radius_rule='same'),
    train_cfg=None,
    test_cfg=dict(topk=100, local_maximum_kernel=3, max_per_img=100, flip_test=False))
