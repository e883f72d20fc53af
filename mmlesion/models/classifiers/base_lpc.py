"""The lesion proposal classifier's common part: a feature extractor, one logit, BCE, sigmoid.

Paper Sec. III-D (docs/method.md#lpc): the LPC scores a 3D proposal with the probability
``s_c`` that it is a lesion; the final score is ``s_{g,c} = s_g s_c`` (Eq. 2), computed by the
metric and the harvest, not here.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmdet.registry import MODELS

__all__ = ['BaseLPC']


class BaseLPC(BaseModel):
    """Binary classifier of proposal patches following mmengine's ``BaseModel`` protocol.

    Subclasses implement :meth:`extract_feat` (``inputs`` -> ``B x feat_dim``) and set
    ``feat_dim`` before calling :meth:`_init_head`.

    ``forward(inputs, data_samples, mode)``:

    * ``'tensor'``: the logits, ``(B,)``;
    * ``'loss'``: ``dict(loss_cls=...)``, binary cross-entropy of the logits against the samples'
      ``gt_label`` (1 lesion, 0 not); an unknown label (-1) is an error (the training set must
      drop them: ``filter_cfg=dict(drop_unknown=True)``);
    * ``'predict'``: the data samples with ``pred_score`` = sigmoid of the logit (``s_c``) and
      ``pred_logit`` set.

    Args:
        loss_cls: loss config; mmdet's ``CrossEntropyLoss(use_sigmoid=True)`` computes BCE with
            logits when logits and labels are both ``(B,)``.
        dropout: dropout before the final fully connected layer (0: none).
        data_preprocessor: e.g. ``dict(type='LPCDataPreprocessor', mean=..., std=...)``.
        init_cfg: mmengine init config.
    """

    def __init__(self, loss_cls: Optional[dict] = None, dropout: float = 0.0,
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='LPCDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if loss_cls is None:
            loss_cls = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
        self.loss_cls = MODELS.build(loss_cls)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def _init_head(self, feat_dim: int) -> None:
        self.feat_dim = int(feat_dim)
        self.fc = nn.Linear(self.feat_dim, 1)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def _logits(self, inputs: Tensor) -> Tensor:
        return self.fc(self.dropout(self.extract_feat(inputs))).reshape(-1)

    def forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[Tensor, dict, list]:
        if mode == 'tensor':
            return self._logits(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'invalid mode {mode!r}: one of "tensor", "loss", "predict"')

    @staticmethod
    def gt_labels(data_samples: Sequence[BaseDataElement], device) -> Tensor:
        """``(B,)`` float labels of the samples (their ``gt_label``)."""
        if not data_samples or any('gt_label' not in ds for ds in data_samples):
            raise ValueError('LPC training needs data samples with gt_label (PackLPCInputs '
                             'sets it from the proposal label)')
        labels = torch.stack([torch.as_tensor(ds.gt_label, dtype=torch.float32).reshape(())
                              for ds in data_samples]).to(device)
        if torch.any((labels != 0) & (labels != 1)):
            raise ValueError('LPC loss: labels must be 0 or 1; unknown proposals (-1) reached '
                             'training -- set filter_cfg=dict(drop_unknown=True) on the training '
                             'ProposalPatchDataset')
        return labels

    def loss(self, inputs: Tensor, data_samples: Sequence[BaseDataElement]) -> dict:
        logits = self._logits(inputs)
        labels = self.gt_labels(data_samples, logits.device)
        return dict(loss_cls=self.loss_cls(logits, labels))

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[BaseDataElement]] = None) -> List[BaseDataElement]:
        logits = self._logits(inputs)
        scores = logits.sigmoid()
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(logits.shape[0])]
        for ds, logit, score in zip(data_samples, logits, scores):
            ds.pred_logit = logit.detach()
            ds.pred_score = score.detach()
        return list(data_samples)
