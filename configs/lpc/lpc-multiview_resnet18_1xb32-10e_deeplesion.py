# The paper's LPC: multi-view ResNet-18 on 3D proposals of DeepLesion (Sec. III-D, Fig. 5b).
# Proposal files: tools/scan_proposals.py (docs/proposals.md); ablation: tools/lpc_ablation.py.
_base_ = [
    '../_base_/models/lpc_multiview_resnet18.py', '../_base_/datasets/lpc_deeplesion.py',
    '../_base_/schedules/schedule_lpc_10e.py', '../_base_/default_runtime.py'
]
default_hooks = dict(
    logger=dict(interval=20),
    # keep the checkpoint with the best PR-AUC of the final score s_g * s_c (paper Eq. 2)
    checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='lpc/s_gc_pr_auc', rule='greater'))
