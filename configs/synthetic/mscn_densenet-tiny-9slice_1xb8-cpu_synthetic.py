# MSCN (no HNSL) on the synthetic data: the synthetic MSCN-HNSL config with hard-negative
# annotations dropped at load time, as configs/mscn.py is to configs/mscn_hnsl.py.  Without a
# harvest round's hard negatives in the training file the two train identically.
_base_ = ['./mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py']

train_dataloader = dict(dataset=dict(drop_hard_negatives=True))
