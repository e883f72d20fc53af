# Lesion Harvester on DeepLesion (paper Sec. III, Fig. 2, Tables I, II; docs/method.md#harvesting)
#   tools/dist_harvest.sh \
#       configs/harvest/harvest_mscn-hnsl_lpc-multiview_3rounds_deeplesion.py 4 \
#       --work-dir work_dirs/harvest
# Annotations: tools/convert_deeplesion.py (train.json = V with its RECIST marks R) and the
# Lesion Harvester release's completely annotated files (data/DeepLesion/ground_truth/).
data_root = 'data/DeepLesion/'
harvest = dict(
    image_root=data_root + 'Images_png/',
    series_info=data_root + 'DL_info.csv',  # spacing of the release files' volumes
    train_ann=data_root + 'annotations/train.json',  # V and R
    v_m_ann=data_root + 'ground_truth/Revised-Train744.pkl',  # V_M: 744 completely annotated
    v_h_test_ann=data_root + 'ground_truth/Revised-Train100.pkl',  # V_H^test: 100, Table I
    test_ann=data_root + 'ground_truth/Revised-Test1071.pkl',  # V_D^test: Table II
    rounds=3,  # the paper stops after 3 rounds, when the PR curves top out
    score_thr=0.1,  # t_G: slice detections above it are stacked into proposals
    precision=0.95,  # P_H^+ threshold: >= 95% precision on V_M
    # the paper's rule: the threshold is set on all of V_M's proposals; e.g. 0.25 holds a
    # quarter of V_M out to set it on proposals neither model fitted *(ours)*
    # (docs/method.md#harvest-calibration)
    v_m_holdout=None,
    hard_negative_s_g=0.5,  # P_H^-: every leftover proposal with s_g >= 0.5 ...
    hard_negative_top_k=5,  # ... plus up to 5 top-s_g proposals per sub-volume
    lpg=dict(
        config='configs/mscn_hnsl.py',
        cfg_options=dict(data_root=data_root),
        # rounds > 1 finetune the previous LPG with the harvested labels (few epochs *(ours)*:
        # the paper gives none)
        finetune_epochs=4),
    lpc=dict(config='configs/lpc/lpc-multiview_resnet18_1xb32-10e_deeplesion.py'),
    # bf16, channels last and passes filled across sub-volumes: x2 on one H200
    # (docs/results.md#scan-gpu)
    scan=dict(device='cuda', batch_size=16, num_workers=4, amp_dtype='bf16', channels_last=True,
              cross_volume=True))
