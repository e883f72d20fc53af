# Lesion harvesting on the synthetic DeepLesion-format data of `make demo` (work_dirs/demo/data),
# sized for a 2-core CPU: `make demo` runs it after training its LPG (docs/method.md#harvesting).
#   tools/harvest_round.py configs/harvest/harvest_mscn-hnsl_lpc-multiview_2rounds_synthetic.py \
#       --work-dir work_dirs/demo/harvest
_base_ = ['./harvest_mscn-hnsl_lpc-multiview_3rounds_deeplesion.py']

data_root = 'work_dirs/demo/data/'
harvest = dict(
    image_root=data_root + 'Images_png/',
    series_info=data_root + 'DL_info.csv',
    train_ann=data_root + 'annotations/train.json',
    # the generator's completely annotated roles (summary.json: V_M 63, V_H^test 42 volumes)
    v_m_ann=data_root + 'ground_truth/Revised-Train-VM.pkl',
    v_h_test_ann=data_root + 'ground_truth/Revised-Train-VHtest.pkl',
    test_ann=data_root + 'ground_truth/Revised-Test.pkl',
    rounds=2,
    # a seeded 180 of V_H's 315 other volumes (V_H^test always whole): two rounds fit the
    # demo's CPU budget, and 3x the 60 of earlier demos trebles the harvest *(ours)*
    v_h_volumes=180,
    # the paper's rule (the threshold on all of V_M): 1 / 3 holds 21 of V_M's 63 volumes out
    # to set it, for 100% harvest precision on V_H^test where this rule gives 66-86%, at a
    # lower recall (docs/results.md#harvest-calibration)
    v_m_holdout=None,
    lpg=dict(
        _delete_=True,
        config='configs/synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py',
        cfg_options=dict(data_root=data_root),
        finetune_epochs=4,
        # finetuning restarts the cosine at a tenth of the from-scratch rate *(ours)*
        finetune_cfg_options={'optim_wrapper.optimizer.lr': 3e-4}),
    lpc=dict(
        _delete_=True,
        config='configs/lpc/synthetic/lpc-multiview_resnet18-tiny_1xb16-5e_synthetic.py'),
    scan=dict(_delete_=True, device='cpu', batch_size=8, num_workers=0))
