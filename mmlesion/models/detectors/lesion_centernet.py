"""mmdet's ``CenterNet`` with CenterNet's flip test (Zhou et al. 2019, ``--flip_test``).

With ``test_cfg.flip_test=True`` every image is also run mirrored left-right; the centre
heatmaps (after the sigmoid) and the width/height maps of the two passes are averaged in the
frame of the original (the mirrored maps are mirrored back), the sub-pixel offsets are the
original pass's, and the averaged maps are decoded as usual.  That is the official CenterNet
recipe (``ctdet`` decoding of ``hm``/``wh`` means, ``reg`` of the first image); mmdet's
``DetTTAModel`` instead merges two box lists with NMS.  Inference costs two forward passes;
training is unchanged.  Without ``flip_test`` the detector is exactly mmdet's ``CenterNet``.
"""
import torch
from torch import Tensor

from mmdet.models.detectors import CenterNet
from mmdet.registry import MODELS
from mmdet.structures import SampleList


@MODELS.register_module()
class LesionCenterNet(CenterNet):
    """``CenterNet`` plus ``test_cfg.flip_test`` (default False).

    The flip is exact on the stride-4 maps: batches are padded to a multiple of the
    backbone stride on the right, and mirroring the padded ``N x C x H x W`` batch maps output
    column ``i`` to ``W / 4 - 1 - i``.
    """

    @property
    def flip_test(self) -> bool:
        return bool(self.test_cfg and self.test_cfg.get('flip_test', False))

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Args: batch_inputs: ``N x C x H x W`` (normalised, padded); see ``CenterNet``."""
        if not self.flip_test:
            return super().predict(batch_inputs, batch_data_samples, rescale=rescale)
        n = batch_inputs.shape[0]
        feats = self.extract_feat(torch.cat([batch_inputs, batch_inputs.flip(-1)], 0))
        heatmaps, whs, offsets = self.bbox_head(feats)
        heatmap = 0.5 * (heatmaps[0][:n] + heatmaps[0][n:].flip(-1))
        wh = 0.5 * (whs[0][:n] + whs[0][n:].flip(-1))
        offset = offsets[0][:n]
        results_list = self.bbox_head.predict_by_feat(
            [heatmap], [wh], [offset],
            batch_img_metas=[s.metainfo for s in batch_data_samples], rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)
