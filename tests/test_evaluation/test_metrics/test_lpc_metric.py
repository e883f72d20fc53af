"""LPCMetric on hand-made scores: the numbers of the numpy core, the scores file, key names."""
import json

import pytest
import torch
from mmengine.structures import BaseDataElement

import mmlesion  # noqa: F401
from mmdet.registry import METRICS


def sample(key, index, s_g, label, s_c):
    ds = BaseDataElement(metainfo=dict(key=key, index=index, s_g=s_g, label=label))
    ds.pred_score = torch.tensor(s_c)
    return ds


def test_values_and_scores_file(tmp_path):
    out = tmp_path / 'scores.json'
    metric = METRICS.build(dict(type='LPCMetric', out_file=str(out)))
    # s_c alone: the negative scores highest; s_g * s_c: 0.45, 0.48 (lesions), 0.18, 0.02
    samples = [sample('b', 0, 0.9, 1, 0.5), sample('a', 1, 0.8, 1, 0.6),
               sample('a', 0, 0.2, 0, 0.9), sample('c', 0, 0.1, -1, 0.2)]
    metric.process({}, [s.to_dict() for s in samples[:2]])
    metric.process({}, samples[2:])  # data elements are read as well
    res = metric.evaluate(4)
    assert res['lpc/num_pos'] == 2 and res['lpc/num_neg'] == 1 and res['lpc/num_unknown'] == 1
    assert res['lpc/s_c_roc_auc'] == 0.0
    assert res['lpc/s_c_pr_auc'] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert res['lpc/s_g_pr_auc'] == pytest.approx(1.0)
    assert res['lpc/s_gc_roc_auc'] == pytest.approx(1.0)
    assert res['lpc/s_gc_recall@0.95'] == pytest.approx(1.0)
    assert res['lpc/s_c_recall@0.9'] == 0.0
    saved = json.loads(out.read_text())
    assert [(p['key'], p['index']) for p in saved['proposals']] == [
        ('a', 0), ('a', 1), ('b', 0), ('c', 0)]
    assert saved['proposals'][0] == dict(key='a', index=0, s_g=0.2, s_c=pytest.approx(0.9),
                                         label=0)
    assert saved['metrics']['num_unknown'] == 1


def test_missing_fields_are_named():
    metric = METRICS.build(dict(type='LPCMetric'))
    with pytest.raises(KeyError, match='pred_score'):
        metric.process({}, [BaseDataElement(metainfo=dict(s_g=0.5, label=1))])
