# Patches of DeepLesion 3D proposals for the lesion proposal classifier (docs/method.md#lpc).
# Proposal files come from tools/scan_proposals.py (format: docs/proposals.md).
dataset_type = 'ProposalPatchDataset'
data_root = 'data/DeepLesion/'
backend_args = None
# train: proposals of V_M (labelled complete: P_M^R = 1, P_M^- = 0) and V_H (labelled against
# the RECIST marks: P_H^R = 1, the rest unknown and dropped); val/test: V_H^test, complete
proposal_root = 'work_dirs/lpc/'
train_proposals = proposal_root + 'proposals_train.json'
val_proposals = proposal_root + 'proposals_val.json'

mode = 'views'  # 2D planes; 'cube' for the 3D LPC
views = ('axial', 'coronal', 'sagittal')  # the paper's three planes through the centre
# 224 px views *(ours: the paper gives no size; ImageNet's input size for the trunks' weights)*
patch_size = 224
pad_px = 64  # paper Sec. IV-E: patches "padded with 64 pixels in each direction"
window_hu = (-1024, 3071)  # the LPG's window -> 0..255 (docs/method.md#data-input)

train_pipeline = [
    # left-right and front-back mirrors *(ours)*, applied to every view consistently
    dict(type='RandomFlipLPC', prob=0.5, axes=('x', 'y')),
    dict(type='PackLPCInputs'),
]
test_pipeline = [dict(type='PackLPCInputs')]

train_dataloader = dict(
    batch_size=32,  # *(ours)*: the paper gives none
    num_workers=4,
    persistent_workers=True,
    # a last batch of one proposal cannot train BN where the trunk's map is 1 x 1 (small patches)
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=train_proposals,
        data_prefix=dict(img=data_root + 'Images_png/'),
        series_info=data_root + 'DL_info.csv',  # spacing of volumes the file lacks it for
        mode=mode, views=views, patch_size=patch_size, pad_px=pad_px, window_hu=window_hu,
        # unknown (-1) proposals of V_H are not training samples (the paper trains on
        # P_M^R, P_H^R vs P_M^-)
        filter_cfg=dict(drop_unknown=True),
        # shuffled proposals hit random volumes: a few decoded sub-volumes per worker (~60 MB
        # each at 512 px)
        cache_volumes=4,
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    # sequential: the proposals of a volume come together, its PNGs are decoded once
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=val_proposals,
        data_prefix=dict(img=data_root + 'Images_png/'),
        series_info=data_root + 'DL_info.csv',
        mode=mode, views=views, patch_size=patch_size, pad_px=pad_px, window_hu=window_hu,
        cache_volumes=1,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# ROC-AUC, PR-AUC and recall at 90 / 95% precision of s_g, s_c and s_g * s_c (paper Fig. 5b)
val_evaluator = dict(type='LPCMetric', precisions=(0.9, 0.95))
test_evaluator = val_evaluator
