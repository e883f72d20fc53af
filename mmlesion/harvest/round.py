"""One harvest round, steps 1-6 of docs/method.md#harvesting, resumable (paper Sec. III, Fig. 2).

Steps of round ``i`` (each writes into ``<work dir>/round_{i}/`` only, atomically, and is recorded
in its ``state.json`` with the SHA-256 of what it consumed and wrote,
:class:`~mmlesion.harvest.state.RoundState`):

1. ``lpg_data``: the LPG's training file ``lpg_train.json``: round 1, R ∪ the marks of V_M;
   round ``i > 1``, round ``i-1``'s ``next_train.json``.
2. ``lpg``: round 1 trains the LPG (or reuses one already trained on the same file,
   ``harvest.lpg.round1_checkpoint``); round ``i > 1`` finetunes round ``i-1``'s LPG, hard
   negatives reaching the HNSL.  -> ``lpg.pth``.
3. ``scan``: every slice of V_M ∪ V_H, stacked (t_G), labelled by the P3D hit rule (V_M against
   its complete marks: 1/0; V_H against R: 1/-1).  Per-volume records make the scan itself
   resumable; distributed runs shard the volumes over the ranks.  -> ``proposals.json``.
4. ``lpc``: the LPC trained on P_M^R ∪ P_H^R vs P_M^- (the unknown rest is dropped by its
   dataset); rounds ``i > 1`` finetune round ``i-1``'s (``harvest.lpc.finetune``, default
   True).  -> ``lpc.pth``.
5. ``score``: ``s_c`` of every proposal.  -> ``proposals_scored.json``.
6. ``select``: the V_M threshold at the target precision (on V_M^cal's harvest candidates when
   ``harvest.v_m_holdout`` holds part of V_M out), P_H^+, P_H^-; written as
   ``harvested_positives.{pkl,json}``, ``hard_negatives.{pkl,json}`` (Lesion Harvester detection
   format, read by ``tools/eval_p3d.py --det``; and our COCO JSON, top-objectness slice),
   ``recist_3d_boxes.pkl`` (3D-Box layout) and the next round's ``next_train.json``.
7. ``report``: Table I on V_H^test for rounds 1..i (``table1.txt``, ``table1_pr.png``), Table II
   (the round's LPG, P3D on the test split), ``report.json``.

A rerun skips every step that is done (same inputs, settings and intact outputs) and redoes the
first one that is not, and all after it; an interrupted training step restarts from its first
epoch, so a resumed round gives the outputs an uninterrupted one gives.  A finished round is
never changed again: rerunning it does nothing, and a finished round whose files were altered is
an error, as is redoing a round once a later one has started.
"""
import copy
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config

from mmlesion.structures.proposals import LABEL_POSITIVE, Proposal, ProposalSet
from mmlesion.utils.fileio import atomic_dump_json, atomic_write_text

from .annotations import ProposalBox, add_proposal_boxes, merge_complete_marks
from .rules import (
    harvest_threshold,
    holdout_threshold,
    lesion_scores,
    select_hard_negatives,
    select_positives,
    split_pools,
)
from .settings import HarvestSets, HarvestSettings, load_harvest_sets
from .state import RoundState, file_sha256
from .table1 import (
    TABLE1_PRECISIONS,
    HarvestCandidates,
    candidate_hits,
    cumulative_candidates,
    harvest_curve,
    mark_hits,
    recall_at_precisions,
)

__all__ = ['HarvestRunner', 'STEPS', 'round_dir', 'RoundFrozenError']

STEPS = ('lpg_data', 'lpg', 'scan', 'lpc', 'score', 'select', 'report')
TABLE2_FPS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# the scan's speed settings (docs/method.md#scan-gpu) a harvest's `scan` dict passes through
SCAN_GPU_KEYS = ('amp_dtype', 'channels_last', 'cross_volume', 'open_volumes', 'pin_memory',
                 'compile')


class RoundFrozenError(RuntimeError):
    """A finished (or superseded) round would have to change."""


def round_dir(work_dir: str, i: int) -> str:
    return osp.join(work_dir, f'round_{int(i)}')


def _log(msg: str) -> None:
    print(f'[harvest] {msg}', flush=True)


def _copy_atomic(src: str, dst: str) -> None:
    tmp = f'{dst}.tmp{os.getpid()}'
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _fresh_instances(cfg: Config, what: str) -> None:
    """Unique names for the run's logger and visualizer: mmengine keeps one instance per name
    in the process, and one made for an earlier run (of another step, or of a work dir since
    removed) would write there."""
    name = f'{what}_{time.time_ns()}'
    cfg.experiment_name = name
    if cfg.get('visualizer'):
        cfg.visualizer.name = name


def _tracklet_rows(p: Proposal, scale: float = 1.0) -> list:
    t = p.tracklet
    return [(int(z), [float(v) for v in b[:4]] + [float(b[4]) * scale])
            for z, b in zip(t.z, t.boxes)]


class HarvestRunner:
    """Runs harvest rounds of one config in one work dir.

    Args:
        cfg: the harvest config (its ``harvest`` dict: :class:`HarvestSettings`).
        work_dir: the harvest's folder (``round_{i}/`` inside).
        launcher: ``'none'`` or a distributed launcher (``'pytorch'``): the scan is sharded over
            the ranks, the trainings run distributed, rank 0 writes every file.
        hooks: ``{step: callable(round)}`` called when a step starts (tests interrupt rounds
            with them).
    """

    def __init__(self, cfg: Config, work_dir: str, launcher: str = 'none',
                 hooks: Optional[Dict[str, Callable[[int], None]]] = None) -> None:
        self.cfg = cfg
        self.settings = HarvestSettings.from_config(cfg, getattr(cfg, 'filename', None) or
                                                    'harvest config')
        self.work_dir = osp.abspath(work_dir)
        self.launcher = launcher
        self.hooks = dict(hooks or {})
        self._sets: Optional[HarvestSets] = None

    # ------------------------------------------------------------------ helpers
    @property
    def sets(self) -> HarvestSets:
        if self._sets is None:
            self._sets = load_harvest_sets(self.settings)
        return self._sets

    @staticmethod
    def _rank_world():
        from mmengine.dist import get_dist_info
        return get_dist_info()

    def _barrier(self) -> None:
        from mmengine.dist import barrier
        barrier()

    def _is_main(self) -> bool:
        return self._rank_world()[0] == 0

    def _step_settings(self, step: str, i: int) -> dict:
        s = self.settings
        common = dict(round=int(i))
        if s.v_m_holdout is not None:
            # V_M^cal changes round 1's training marks, the scan's labels and the threshold
            common.update(v_m_holdout=float(s.v_m_holdout), seed=int(s.seed))
        if step == 'lpg_data':
            return common
        if step == 'lpg':
            return dict(common, lpg=s.lpg)
        if step == 'scan':
            return dict(common, score_thr=s.score_thr, lpg=s.lpg.get('cfg_options'),
                        volumes=sorted(self.sets.scan_volumes),
                        **{k: s.scan[k] for k in SCAN_GPU_KEYS if s.scan.get(k) is not None})
        if step == 'lpc':
            return dict(common, lpc=s.lpc)
        if step == 'score':
            return dict(common, lpc=s.lpc.get('cfg_options'))
        if step == 'select':
            return dict(common, precision=s.precision, s_g=s.hard_negative_s_g,
                        top_k=s.hard_negative_top_k)
        return dict(common, precisions=list(TABLE1_PRECISIONS), test_ann=s.test_ann,
                    scan=s.scan)

    def _inputs(self, step: str, i: int) -> List[str]:
        s = self.settings
        prev = round_dir(self.work_dir, i - 1)
        if step == 'lpg_data':
            return ([osp.abspath(s.train_ann), osp.abspath(s.v_m_ann)] if i == 1 else
                    [osp.join(prev, 'next_train.json')])
        if step == 'lpg':
            ins = ['lpg_train.json', osp.abspath(s.lpg['config'])]
            return ins + ([osp.join(prev, 'lpg.pth')] if i > 1 else [])
        if step == 'scan':
            return ['lpg.pth', osp.abspath(s.train_ann), osp.abspath(s.v_m_ann)]
        if step == 'lpc':
            ins = ['proposals.json', osp.abspath(s.lpc['config'])]
            return ins + ([osp.join(prev, 'lpc.pth')] if i > 1 and self._lpc_finetunes else [])
        if step == 'score':
            return ['proposals.json', 'lpc.pth']
        if step == 'select':
            return ['proposals_scored.json', 'lpg_train.json']
        ins = [osp.join(round_dir(self.work_dir, k), 'proposals_scored.json')
               for k in range(1, i + 1)]
        ins += [osp.abspath(s.v_h_test_ann), osp.abspath(s.train_ann), 'lpg.pth']
        return ins + ([osp.abspath(s.test_ann)] if s.test_ann else [])

    # ------------------------------------------------------------------ driving
    def run(self, rounds: Optional[int] = None, only_round: Optional[int] = None) -> List[dict]:
        """Run rounds ``1..rounds`` (default: the config's), or only round ``only_round`` (its
        predecessors must be finished).  Returns the rounds' reports."""
        if only_round is not None:
            wanted = [int(only_round)]
        else:
            wanted = list(range(1, int(rounds or self.settings.rounds) + 1))
        self.sets  # noqa: B018  (check every file and volume before any training)
        reports = []
        for i in wanted:
            reports.append(self.run_round(i))
        return reports

    def round_finished(self, i: int) -> bool:
        return 'report' in RoundState(round_dir(self.work_dir, i)).steps

    def _check_finished(self, i: int, state: RoundState) -> None:
        for step, rec in state.steps.items():
            outs = rec.get('outputs', {})
            if state._hashes(outs) != outs:
                raise RoundFrozenError(
                    f'{state.round_dir}: round {i} finished, but the outputs of its {step!r} '
                    'step changed since; restore them, or start a new --work-dir (a finished '
                    'round is never redone)')

    def run_round(self, i: int) -> dict:
        """Run (or resume) round ``i``; returns its report."""
        i = int(i)
        if i < 1:
            raise ValueError(f'rounds are numbered from 1, got {i}')
        if i > 1 and not self.round_finished(i - 1):
            raise RuntimeError(f'round {i} needs round {i - 1} finished first '
                               f'({round_dir(self.work_dir, i - 1)}); run --round {i - 1}')
        rd = round_dir(self.work_dir, i)
        state = RoundState(rd)
        if 'report' in state.steps:
            self._check_finished(i, state)
            _log(f'round {i} is finished ({rd}); nothing to do')
            with open(osp.join(rd, 'report.json')) as f:
                return json.load(f)
        if osp.isdir(round_dir(self.work_dir, i + 1)):
            raise RoundFrozenError(f'round {i + 1} has started: round {i} cannot be redone')
        if self._is_main():
            os.makedirs(rd, exist_ok=True)
        self._barrier()
        for step in STEPS:
            ins, settings = self._inputs(step, i), self._step_settings(step, i)
            if state.is_done(step, ins, settings):
                _log(f'round {i}: {step} done earlier; skipped')
                continue
            if step in state.steps and self._is_main():
                state.forget_from(step, STEPS)
            if step in self.hooks:
                self.hooks[step](i)
            _log(f'round {i}: {step} ...')
            t0 = time.time()
            outputs, info = getattr(self, f'_step_{step}')(i, rd)
            seconds = round(time.time() - t0, 1)
            if self._is_main():
                state.record(step, ins, outputs, settings, info, seconds)
            self._barrier()
            state = RoundState(rd)
            _log(f'round {i}: {step} finished in {seconds:.0f} s')
        with open(osp.join(rd, 'report.json')) as f:
            return json.load(f)

    # ------------------------------------------------------------------ step 1
    def _round1_annotations(self) -> dict:
        with open(self.settings.train_ann, encoding='utf-8') as f:
            base = json.load(f)
        coco, counts = merge_complete_marks(
            base, self.sets.v_m, description='harvest round 1: R and the marks of V_M')
        return coco

    def round1_training_file(self, path: str) -> None:
        """Write round 1's LPG training file (R ∪ the marks of V_M) to ``path``; an LPG trained
        on it can be reused by round 1 (``harvest.lpg.round1_checkpoint``)."""
        atomic_dump_json(self._round1_annotations(), path)

    def _step_lpg_data(self, i: int, rd: str):
        out = osp.join(rd, 'lpg_train.json')
        if self._is_main():
            if i == 1:
                self.round1_training_file(out)
            else:
                _copy_atomic(osp.join(round_dir(self.work_dir, i - 1), 'next_train.json'), out)
        self._barrier()
        with open(out) as f:
            coco = json.load(f)
        n_neg = sum(bool(a.get('hard_negative')) for a in coco['annotations'])
        return ['lpg_train.json'], dict(images=len(coco['images']),
                                        lesions=len(coco['annotations']) - n_neg,
                                        hard_negatives=n_neg)

    # ------------------------------------------------------------------ step 2
    def _lpg_config(self, ann_file: str, work_dir: str) -> Config:
        from mmlesion.utils.locations import resolve_config
        from mmlesion.utils.schedule import without_validation
        lpg = self.settings.lpg
        cfg = Config.fromfile(resolve_config(lpg['config']))
        if lpg.get('cfg_options'):
            cfg.merge_from_dict(copy.deepcopy(dict(lpg['cfg_options'])))
        ds = cfg.train_dataloader.dataset
        while 'dataset' in ds:
            ds = ds.dataset
        ds.ann_file = osp.abspath(ann_file)
        ds.data_root = ''
        ds.data_prefix = dict(img=osp.abspath(self.settings.image_root).rstrip('/') + '/')
        without_validation(cfg)
        cfg.work_dir = work_dir
        return cfg

    def _train(self, cfg: Config) -> str:
        """Train with mmengine's Runner from scratch in ``cfg.work_dir``; the final
        checkpoint's path."""
        from mmengine.runner import Runner

        from mmlesion.engine import prepare_distributed, trust_checkpoint_dir
        if self._is_main() and osp.isdir(cfg.work_dir):
            shutil.rmtree(cfg.work_dir)  # an interrupted training restarts from its first epoch
        self._barrier()
        os.makedirs(cfg.work_dir, exist_ok=True)
        trust_checkpoint_dir(cfg.work_dir)
        if cfg.get('load_from'):
            trust_checkpoint_dir(cfg.load_from)
        hooks = list(cfg.get('custom_hooks') or [])
        if not any(h.get('type') == 'RecordOwnCheckpointsHook' for h in hooks):
            cfg.custom_hooks = hooks + [dict(type='RecordOwnCheckpointsHook')]
        prepare_distributed(cfg, self.launcher)
        _fresh_instances(cfg, osp.basename(cfg.work_dir))
        runner = Runner.from_cfg(cfg)
        runner.train()
        final = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
        if not osp.isfile(final):
            raise FileNotFoundError(f'training in {cfg.work_dir} ended without {final}; does '
                                    'the config save a checkpoint at its last epoch?')
        return final

    def _step_lpg(self, i: int, rd: str):
        from mmlesion.utils.schedule import retime_epochs
        lpg = self.settings.lpg
        ann = osp.join(rd, 'lpg_train.json')
        out = osp.join(rd, 'lpg.pth')
        info: Dict[str, Any] = {}
        if i == 1 and lpg.get('round1_checkpoint'):
            ckpt, trained_on = lpg['round1_checkpoint'], lpg.get('round1_train_ann')
            if not osp.isfile(ckpt):
                raise FileNotFoundError(f'harvest.lpg.round1_checkpoint: not found: {ckpt}')
            if not trained_on or not osp.isfile(trained_on):
                raise FileNotFoundError('harvest.lpg.round1_train_ann must name the file the '
                                        f'round-1 LPG was trained on, got {trained_on!r}')
            if file_sha256(trained_on) != file_sha256(ann):
                raise ValueError(
                    f'the LPG {ckpt} was trained on {trained_on}, which is not round 1\'s '
                    f'training set (R and the marks of V_M, {ann}); write that set with '
                    '`tools/harvest_round.py CONFIG --write-round1-ann FILE`, or unset '
                    'harvest.lpg.round1_checkpoint to train round 1\'s LPG')
            if self._is_main():
                _copy_atomic(ckpt, out)
            info.update(reused=osp.abspath(ckpt))
        else:
            cfg = self._lpg_config(ann, osp.join(rd, 'lpg'))
            if i == 1:
                if lpg.get('epochs'):
                    retime_epochs(cfg, int(lpg['epochs']))
            else:
                cfg.load_from = osp.join(round_dir(self.work_dir, i - 1), 'lpg.pth')
                if lpg.get('finetune_cfg_options'):
                    cfg.merge_from_dict(copy.deepcopy(dict(lpg['finetune_cfg_options'])))
                retime_epochs(cfg, int(lpg.get('finetune_epochs') or cfg.train_cfg.max_epochs))
            final = self._train(cfg)
            if self._is_main():
                _copy_atomic(final, out)
            info.update(trained=final, epochs=int(cfg.train_cfg.max_epochs),
                        finetuned_from=cfg.get('load_from'))
        self._barrier()
        return ['lpg.pth'], info

    # ------------------------------------------------------------------ step 3
    def _detector(self, rd: str):
        from mmlesion.apis.inference import init_lesion_detector
        from mmlesion.utils.locations import resolve_config
        lpg = self.settings.lpg
        device = self.settings.scan.get('device', 'cpu')
        return init_lesion_detector(resolve_config(lpg['config']), osp.join(rd, 'lpg.pth'),
                                    device=device, cfg_options=lpg.get('cfg_options'),
                                    trust_checkpoint=True)

    def _scan(self, model, volumes: Sequence, records_dir: str, what: str) -> ProposalSet:
        """Scan ``volumes`` (this rank's share), resumably through per-volume records; rank 0
        returns the proposals of all, other ranks None."""
        from mmengine.utils import ProgressBar

        from mmlesion.apis.inference import VolumePredictor, predict_volumes
        from mmlesion.apis.scan_records import ScanRecords, scan_fingerprint
        from mmlesion.structures.proposals import proposals_from_predictions
        sc = self.settings.scan
        kwargs = dict(score_thr=float(self.settings.score_thr),
                      batch_size=int(sc.get('batch_size', 8)),
                      **{k: sc[k] for k in SCAN_GPU_KEYS if sc.get(k) is not None})
        fingerprint = scan_fingerprint(model, VolumePredictor(model, **kwargs), model.cfg.model)
        records = ScanRecords(records_dir, fingerprint)
        rank, world = self._rank_world()
        mine = list(volumes)[rank::world]
        done = records.finished([v.key for v in mine])
        todo = [v for v in mine if v.key not in done]
        if done:
            _log(f'{what}: {len(done)} volume(s) scanned earlier, {len(todo)} to go')
        bar = ProgressBar(len(todo)) if todo and rank == 0 else None
        for pred in predict_volumes(model, todo, self.settings.image_root,
                                    series_info=self.settings.series_info,
                                    num_workers=int(sc.get('num_workers', 0)), **kwargs):
            if pred.error:
                raise RuntimeError(f'{what}: volume {pred.volume.key} failed: {pred.error}')
            records.save(pred)
            if bar is not None:
                bar.update()
        if bar is not None:
            sys.stdout.write('\n')
        self._barrier()
        if rank != 0:
            return None
        preds = []
        for v in volumes:
            pred = records.load(v)
            if pred is None:
                raise RuntimeError(f'{what}: no scan record of {v.key} in {records.dir}')
            preds.append(pred)
        return proposals_from_predictions(preds, meta=dict(score_thr=self.settings.score_thr))

    def _step_scan(self, i: int, rd: str):
        from mmlesion.evaluation.functional.proposal_labels import label_proposal_set
        sets = self.sets
        model = self._detector(rd)
        volumes = list(sets.scan_volumes.values())
        pset = self._scan(model, volumes, osp.join(rd, 'scan_records'),
                          f'round {i} scan of V_M and V_H')
        info = {}
        if self._is_main():
            recist = label_proposal_set(pset, sets.train, 'recist', keys=sets.v_h_keys)
            complete = label_proposal_set(pset, sets.v_m, 'complete')
            pset.meta.update(round=i, checkpoint=osp.join(rd, 'lpg.pth'),
                             label_complete=self.settings.v_m_ann,
                             label_recist=self.settings.train_ann)
            pset.save(osp.join(rd, 'proposals.json'))
            pools = split_pools(pset.proposals, sets.v_m_keys)
            info = dict(volumes=len(volumes), proposals=len(pset), **pools.counts(),
                        labelled_recist=recist, labelled_complete=complete)
            _log(f'round {i}: {len(pset)} proposals in {len(volumes)} volumes: ' +
                 ', '.join(f'{k} {v}' for k, v in pools.counts().items()))
        self._barrier()
        return ['proposals.json'], info

    # ------------------------------------------------------------------ steps 4, 5
    def _lpc_config(self, rd: str) -> Config:
        from mmlesion.cli.lpc_ablation import variant_config
        from mmlesion.utils.locations import resolve_config
        lpc = self.settings.lpc
        proposals = osp.join(rd, 'proposals.json')
        series = self.settings.series_info
        series = [series] if isinstance(series, str) else series
        return variant_config(resolve_config(lpc['config']), proposals, proposals,
                              osp.abspath(self.settings.image_root), osp.join(rd, 'lpc'),
                              series, lpc.get('epochs'),
                              copy.deepcopy(dict(lpc.get('cfg_options') or {})))

    @property
    def _lpc_finetunes(self) -> bool:
        return bool(self.settings.lpc.get('finetune', True))

    def _step_lpc(self, i: int, rd: str):
        cfg = self._lpc_config(rd)
        if i > 1 and self._lpc_finetunes:
            # paper Fig. 2, step 3: "train/finetune the LPC": a later round starts from the
            # previous round's classifier, which has seen that round's (larger) proposal set
            cfg.load_from = osp.join(round_dir(self.work_dir, i - 1), 'lpc.pth')
        final = self._train(cfg)
        if self._is_main():
            _copy_atomic(final, osp.join(rd, 'lpc.pth'))
        self._barrier()
        return ['lpc.pth'], dict(trained=final, epochs=int(cfg.train_cfg.max_epochs),
                                 finetuned_from=cfg.get('load_from'))

    def _step_score(self, i: int, rd: str):
        from mmengine.runner import Runner

        from mmlesion.engine import prepare_distributed, trust_checkpoint_dir
        cfg = self._lpc_config(rd)
        cfg.work_dir = osp.join(rd, 'lpc_score')
        scores_file = osp.join(rd, 'lpc_scores.json')
        cfg.test_evaluator = dict(cfg.test_evaluator, out_file=scores_file)
        cfg.load_from = osp.join(rd, 'lpc.pth')
        cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = None
        cfg.param_scheduler = None
        trust_checkpoint_dir(cfg.load_from)
        prepare_distributed(cfg, self.launcher)
        _fresh_instances(cfg, 'lpc_score')
        Runner.from_cfg(cfg).test()
        self._barrier()
        info = {}
        if self._is_main():
            pset = ProposalSet.load(osp.join(rd, 'proposals.json'))
            with open(scores_file) as f:
                rows = json.load(f)['proposals']
            s_c = {(r['key'], int(r['index'])): float(r['s_c']) for r in rows}
            missing = [p for p in pset if (p.key, p.index) not in s_c]
            if missing:
                raise RuntimeError(f'{scores_file}: the LPC scored {len(s_c)} proposals; '
                                   f'{len(missing)} lack a score, e.g. {missing[0].key} '
                                   f'#{missing[0].index}')
            for p in pset:
                p.s_c = s_c[(p.key, p.index)]
            pset.meta.update(lpc=osp.join(rd, 'lpc.pth'))
            pset.save(osp.join(rd, 'proposals_scored.json'))
            info = dict(scored=len(pset))
        self._barrier()
        return ['proposals_scored.json'], info

    # ------------------------------------------------------------------ step 6
    def _step_select(self, i: int, rd: str):
        from mmlesion.evaluation.detection_io import save_lh_boxes_3d, save_lh_detections
        s = self.settings
        info: Dict[str, Any] = {}
        if self._is_main():
            pset = ProposalSet.load(osp.join(rd, 'proposals_scored.json'))
            pools = split_pools(pset.proposals, self.sets.v_m_keys)
            calibration = self._calibration(pools.h_rest)
            thr = (harvest_threshold(pools.m_r, pools.m_neg, s.precision) if calibration is None
                   else calibration.pop('threshold'))
            positives = select_positives(pools.h_rest, thr)
            negatives = select_hard_negatives(pools.h_rest, positives, s.hard_negative_s_g,
                                              s.hard_negative_top_k)
            if thr is None:
                _log(f'round {i}: no threshold reaches {s.precision:.0%} precision on V_M; '
                     'nothing is harvested this round')
            # LH detection files; a positive's slice scores are scaled by s_c so that its
            # tracklet score (the max) is the lesion score s_g * s_c
            save_lh_detections({k: [] for k in self.sets.v_h_keys} | {
                k: [_tracklet_rows(p, p.s_c) for p in positives if p.key == k]
                for k in {p.key for p in positives}}, osp.join(rd, 'harvested_positives.pkl'))
            save_lh_detections({k: [] for k in self.sets.v_h_keys} | {
                k: [_tracklet_rows(p) for p in negatives if p.key == k]
                for k in {p.key for p in negatives}}, osp.join(rd, 'hard_negatives.pkl'))
            marked = pools.m_r + pools.h_r
            save_lh_boxes_3d({k: np.array([p.box3d for p in marked if p.key == k])
                              for k in {p.key for p in marked}},
                             osp.join(rd, 'recist_3d_boxes.pkl'))
            entries = []
            for pool, props, neg, source in (('P_M^R', pools.m_r, False, 'mined_3d'),
                                             ('P_H^R', pools.h_r, False, 'mined_3d'),
                                             ('P_H^+', positives, False, 'harvested'),
                                             ('P_M^-', pools.m_neg, True, 'harvested'),
                                             ('P_H^-', negatives, True, 'harvested')):
                score = lesion_scores(props) if pool == 'P_H^+' else [p.s_g for p in props]
                entries += [ProposalBox(p.key, p.best_z, tuple(p.best_box[:4]), neg, source,
                                        float(sc), pool, i) for p, sc in zip(props, score)]
            with open(osp.join(rd, 'lpg_train.json')) as f:
                base = json.load(f)
            nxt, counts = add_proposal_boxes(
                base, entries, pset.volumes,
                description=f'harvest round {i + 1} training set (after round {i})')
            atomic_dump_json(nxt, osp.join(rd, 'next_train.json'))
            for name, pool in (('harvested_positives.json', 'P_H^+'),
                               ('hard_negatives.json', 'P_H^-')):
                atomic_dump_json(_pool_subset(nxt, pool, i), osp.join(rd, name))
            s_vm = lesion_scores(pools.m_r + pools.m_neg)
            y_vm = np.r_[np.ones(len(pools.m_r)), np.zeros(len(pools.m_neg))]
            prec_vm = (float(y_vm[s_vm >= thr].mean()) if thr is not None and
                       (s_vm >= thr).any() else None)
            info = dict(threshold=thr, precision_target=s.precision, precision_on_V_M=prec_vm,
                        harvested=len(positives), hard_negatives=len(negatives),
                        recist_3d_boxes=len(marked), **pools.counts(), next_train=counts)
            if calibration is not None:
                info['calibration'] = calibration
                where = (f'V_M^cal precision {calibration["precision"]} on '
                         f'{calibration["candidates"]} held-out candidates; V_M {prec_vm}')
            else:
                where = f'V_M precision {prec_vm}'
            _log(f'round {i}: threshold {thr} ({where}); harvested '
                 f'{len(positives)} lesions, {len(negatives)} hard negatives')
        self._barrier()
        return ['harvested_positives.pkl', 'hard_negatives.pkl', 'harvested_positives.json',
                'hard_negatives.json', 'recist_3d_boxes.pkl', 'next_train.json'], info

    def _calibration(self, h_rest: Sequence[Proposal]) -> Optional[dict]:
        """With V_M^cal held out (``harvest.v_m_holdout``): the threshold at the target
        precision on its harvest candidates, with what it was measured on; None without."""
        cal = self.sets.v_m_cal
        if cal is None:
            return None
        cands = [p for p in h_rest if p.key in cal.volumes]
        hits = candidate_hits(cal.boxes_2d, [p.key for p in cands], [p.tracklet for p in cands])
        correct = hits >= 0
        thr = holdout_threshold(cands, correct, self.settings.precision)
        keep = (lesion_scores(cands) >= thr if thr is not None and cands else
                np.zeros(len(cands), bool))
        return dict(threshold=thr, volumes=len(cal.volumes), lesions=cal.num_boxes,
                    candidates=len(cands), correct_candidates=int(correct.sum()),
                    above_threshold=int(keep.sum()),
                    precision=float(correct[keep].mean()) if keep.any() else None)

    # ------------------------------------------------------------------ step 7
    def _table1(self, i: int) -> dict:
        """Table I rows of rounds 1..i on V_H^test (docs/method.md#harvest-table1)."""
        sets = self.sets
        gt = {k: sets.v_h_test.boxes_2d[k] for k in sets.v_h_test.volumes}
        marks = {k: sets.train.boxes_2d.get(k, np.zeros((0, 5))) for k in gt}
        r_hits = mark_hits(gt, marks)
        n_marks = int(sum(len(m) for m in marks.values()))
        per_round, thresholds = [], []
        for k in range(1, i + 1):
            rdk = round_dir(self.work_dir, k)
            pset = ProposalSet.load(osp.join(rdk, 'proposals_scored.json'))
            rest = [p for p in pset if p.key in gt and p.label != LABEL_POSITIVE]
            hits = candidate_hits(gt, [p.key for p in rest], [p.tracklet for p in rest])
            per_round.append(dict(
                s_g=HarvestCandidates(np.array([p.s_g for p in rest], np.float64), hits),
                s=HarvestCandidates(lesion_scores(rest), hits)))
            sel = RoundState(rdk).info('select')
            thresholds.append((sel.get('threshold'), 'V_M^cal' if sel.get('calibration') else
                               'V_M'))
        curves = {'R ∪ P_H,1': harvest_curve(r_hits, n_marks, per_round[0]['s_g'])}
        for k in range(1, i + 1):
            name = 'R ∪ ' + ' ∪ '.join(f'P_H,{j}^+' for j in range(1, k + 1))
            pooled = cumulative_candidates(
                [(per_round[j]['s'], thresholds[j][0]) for j in range(k - 1)],
                per_round[k - 1]['s'])
            curves[name] = harvest_curve(r_hits, n_marks, pooled)
        rows = {'R': dict(recall=float(r_hits.mean()) if r_hits.size else float('nan'),
                          precision=1.0)}
        for name, c in curves.items():
            rows[name] = recall_at_precisions(c)
        # the harvest as chosen: P_H,k^+ at round k's V_M threshold
        chosen = []
        for k, (thr, chosen_on) in enumerate(thresholds, start=1):
            cand = per_round[k - 1]['s']
            keep = cand.scores >= thr if thr is not None else np.zeros(len(cand.scores), bool)
            n, ok = int(keep.sum()), int((cand.gt[keep] >= 0).sum())
            chosen.append(dict(round=k, threshold=thr, chosen_on=chosen_on, harvested=n,
                               correct=ok, precision=ok / n if n else None))
        return dict(rows=rows, curves=curves, chosen=chosen, num_gt=int(r_hits.size),
                    num_marks=n_marks)

    def _table2(self, rd: str) -> Optional[dict]:
        """The round's LPG on the test split: P3D FROC and AP (Table II layout)."""
        from mmlesion.evaluation.annotation_set import load_annotation_set
        from mmlesion.evaluation.functional.p3d import evaluate_p3d
        if not self.settings.test_ann:
            return None
        test = load_annotation_set(self.settings.test_ann)
        model = self._detector(rd)
        pset = self._scan(model, list(test.volumes.values()), osp.join(rd, 'test_scan_records'),
                          'Table II scan of the test split')
        if pset is None:
            return None
        dets = {k: [p.tracklet for p in v] for k, v in pset.by_volume().items()}
        res = evaluate_p3d(test.boxes_2d, dets, fp_points=TABLE2_FPS)
        return dict(ap=float(res.ap), fps=list(TABLE2_FPS),
                    sensitivity=[float(v) for v in res.sensitivity], n_gt=int(res.n_gt),
                    volumes=int(res.n_images), ann=self.settings.test_ann)

    def _step_report(self, i: int, rd: str):
        from mmlesion.visualization.harvest_plot import plot_harvest_curves
        table2 = self._table2(rd)
        if not self._is_main():
            self._barrier()
            return [], {}
        t1 = self._table1(i)
        state = RoundState(rd)
        previous = []
        for k in range(1, i):
            with open(osp.join(round_dir(self.work_dir, k), 'report.json')) as f:
                previous.append(json.load(f)['table2']['rounds'][-1])
        report = dict(
            round=i, sets=self.sets.counts(),
            steps={s: dict(seconds=state.steps.get(s, {}).get('seconds'), **state.info(s))
                   for s in STEPS if s in state.steps},
            table1=dict(rows=t1['rows'], harvested_at_V_M_threshold=t1['chosen'],
                        num_gt=t1['num_gt'], num_marks=t1['num_marks'],
                        precisions=list(TABLE1_PRECISIONS)),
            table2=dict(rounds=previous + [table2]))
        text = format_tables(report)
        plot_harvest_curves(t1['curves'], osp.join(rd, 'table1_pr.png'),
                            title=f'harvesting on V_H^test, rounds 1-{i}')
        atomic_write_text(osp.join(rd, 'tables.txt'), text)
        atomic_dump_json(report, osp.join(rd, 'report.json'), indent=1)
        print(text, flush=True)
        self._barrier()
        return ['report.json', 'tables.txt', 'table1_pr.png'], dict(table1=t1['rows'])


def _pool_subset(coco: dict, pool: str, round_index: int) -> dict:
    """The annotations of one pool and round of a training JSON, with their images only."""
    anns = [a for a in coco['annotations']
            if a.get('harvest_pool') == pool and a.get('harvest_round') == round_index]
    ids = {a['image_id'] for a in anns}
    keys = {im['volume_id'] for im in coco['images'] if im['id'] in ids}
    out = dict(coco, images=[im for im in coco['images'] if im['id'] in ids],
               annotations=anns, volumes=[v for v in coco.get('volumes', []) if v['id'] in keys])
    out['info'] = dict(coco.get('info', {}), description=f'{pool} of harvest round {round_index}')
    return out


def format_tables(report: dict) -> str:
    """Table I and Table II of a round's report as text."""
    t1 = report['table1']
    ps = t1['precisions']
    lines = [f'Table I (V_H^test: {t1["num_gt"]} lesions, {t1["num_marks"]} RECIST marks): '
             'recall at precision']
    lines.append('label set'.ljust(44) + ''.join(f'R@{int(round(p * 100))}P'.rjust(9)
                                                  for p in ps))
    for name, row in t1['rows'].items():
        if name == 'R':
            lines.append('R'.ljust(44) + f'{row["recall"]:.3f}@100P'.rjust(9))
            continue
        lines.append(name.ljust(44) + ''.join(f'{row[f"recall@{p:g}"]:9.3f}' for p in ps))
    target = report['steps'].get('select', {}).get('precision_target', 0.95)
    for c in t1['harvested_at_V_M_threshold']:
        thr = 'none' if c['threshold'] is None else f'{c["threshold"]:.4f}'
        prec = 'n/a' if c['precision'] is None else f'{c["precision"]:.3f}'
        lines.append(f'round {c["round"]}: {c.get("chosen_on", "V_M")} threshold {thr}: '
                     f'{c["harvested"]} harvested on '
                     f'V_H^test, precision {prec} (target {target:.2f})')
    rounds = [r for r in report['table2']['rounds'] if r]
    if rounds:
        fps = rounds[0]['fps']
        lines.append('')
        lines.append('Table II (LPG, P3D on the test split): recall at FPs per volume')
        lines.append('round'.ljust(8) + ''.join(f'{f:g}'.rjust(7) for f in fps) + 'AP'.rjust(8))
        for k, r in enumerate(report['table2']['rounds'], start=1):
            if r:
                lines.append(str(k).ljust(8) + ''.join(f'{v:7.3f}' for v in r['sensitivity']) +
                             f'{r["ap"]:8.3f}')
    return '\n'.join(lines) + '\n'
