"""Test-only detectors of the engine tests."""
import json

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample


@MODELS.register_module(force=True)
class OracleLesionDetector(BaseModel):
    """Returns the generator's true lesion boxes of each slice (original frame, 0-based):
    score 0.9 on a lesion's key slice, 0.6 on its other slices."""

    def __init__(self, truth_file, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # DDP wraps only modules with params
        with open(truth_file) as f:
            truth = json.load(f)
        self.boxes = {}
        for vol in truth['volumes']:
            for les in vol['lesions']:
                for s in les['slices']:
                    score = 0.9 if s['slice'] == les['key_slice'] else 0.6
                    self.boxes.setdefault((vol['key'], s['slice']), []).append(s['box'] + [score])
        self.seen = []
        self.passes = []  # the volume of each slice, per test_step call

    def forward(self, inputs, data_samples=None, mode='tensor'):
        raise NotImplementedError('the oracle only predicts through test_step')

    def test_step(self, data):
        out = []
        self.passes.append([s.metainfo['volume_id'] for s in data['data_samples']])
        for inputs, sample in zip(data['inputs'], data['data_samples']):
            meta = sample.metainfo
            self.seen.append((meta['volume_id'], meta['slice_index'], tuple(inputs.shape),
                              tuple(meta['scale_factor']), tuple(meta['ori_shape'])))
            arr = np.array(self.boxes.get((meta['volume_id'], meta['slice_index']), []),
                           dtype=np.float32).reshape(-1, 5)
            result = DetDataSample(metainfo=meta)
            result.pred_instances = InstanceData(
                bboxes=torch.from_numpy(arr[:, :4]), scores=torch.from_numpy(arr[:, 4]),
                labels=torch.zeros(len(arr), dtype=torch.long))
            out.append(result)
        return out
