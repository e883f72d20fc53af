# The second-stage sampling of the missing-label strategies (paper Sec. IV-F, Table III;
# docs/method.md#missing-labels).  A config picks one with
#   _base_ = [..., '../_base_/models/faster-rcnn_missing-label-strategies.py']
#   model = dict(train_cfg=dict(rcnn={{_base_.obss_rcnn}}))
# and keeps its own sampler size through rcnn_num_rois.
rcnn_num_rois = 512  # RoIs sampled per image for the second stage (mmdet's default)

# OBHS (Ren et al.): negatives only from proposals with max IoU in [0.1, 0.5); background below
# 0.1 is ignored.  mmdet's own MaxIoUAssigner does it with a (low, high) neg_iou_thr.
obhs_rcnn = dict(
    assigner=dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.5), min_pos_iou=0.5,
        match_low_quality=False, ignore_iof_thr=-1),
    sampler=dict(type='RandomSampler', num=rcnn_num_rois, pos_fraction=0.25, neg_pos_ub=-1,
                 add_gt_as_proposals=True),
    pos_weight=-1,
    debug=False)

# M-OBHS (Lesion Harvester): all background kept; negatives with max IoU in [0.1, 0.5) weigh 2,
# positives and plain background 1.
mobhs_rcnn = dict(
    assigner=dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
        match_low_quality=False, ignore_iof_thr=-1),
    sampler=dict(type='OverlapBandWeightSampler', num=rcnn_num_rois, pos_fraction=0.25,
                 neg_pos_ub=-1, add_gt_as_proposals=True, band=(0.1, 0.5), band_weight=2.0),
    pos_weight=-1,
    debug=False)

# OBSS (Wu et al., BMVC 2019): all background kept; each negative weighs
# a + (1 - a) exp(-b exp(-c x)) of its max IoU x, with the paper's a=0.25, b=50, c=20.
obss_rcnn = dict(
    assigner=dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
        match_low_quality=False, ignore_iof_thr=-1),
    sampler=dict(type='OverlapSoftSampler', num=rcnn_num_rois, pos_fraction=0.25, neg_pos_ub=-1,
                 add_gt_as_proposals=True, a=0.25, b=50.0, c=20.0),
    pos_weight=-1,
    debug=False)
