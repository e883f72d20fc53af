# Multi-view lesion proposal classifier (paper Sec. III-D, Fig. 3; docs/method.md#lpc): axial,
# coronal and sagittal patches through the proposal centre, one ResNet-18 trunk per view,
# global-average-pooled features concatenated, one FC layer, sigmoid = s_c.
model = dict(
    type='MultiViewLPC',
    # one view per plane: axial, coronal, sagittal (the dataset's `views`, in this order)
    num_views=3,
    # the paper runs a trunk per view; True shares one trunk (ours, a third of the weights)
    share_backbone=False,
    # ImageNet's RGB mean / std averaged over the channels *(ours)*: the grey patch (windowed to
    # 0..255) is repeated to the trunk's 3 input channels, the layout of ImageNet weights
    data_preprocessor=dict(type='LPCDataPreprocessor', mean=117.0, std=57.6),
    backbone=dict(
        type='ResNet',
        depth=18,  # the paper: ResNet-18 "because of its proven usefulness and pre-trained weights"
        in_channels=3,  # ImageNet layout, so torchvision's weights load (see below)
        out_indices=(3, ),  # the last stage only: it is globally pooled
        norm_eval=False,  # BN trains with the classifier (mmdet's default freezes it)
        # ImageNet weights, never downloaded: point at a local torchvision file, e.g.
        # --cfg-options model.backbone.init_cfg.type=Pretrained
        #               model.backbone.init_cfg.checkpoint=checkpoints/resnet18-f37072fd.pth
        # (torchvision's key names are mmdet ResNet's; its fc.* keys are ignored)
        init_cfg=None),
    # binary cross-entropy with logits (mmdet's CE with use_sigmoid on (B,) logits and labels)
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
