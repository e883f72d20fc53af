"""Long scans survive: an interrupted scan resumes at volume granularity with the results of an
uninterrupted one, a changed model starts afresh, and unreadable files fail a slice or a volume,
not the run (strict=True restores fail-fast)."""
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import mmlesion  # noqa: F401
from mmlesion.engine.volume_scan import VolumeScanTestLoop


def _config(volume_scan_config, root, work_dir, model, ann, det_out, **loop):
    cfg = volume_scan_config(root, work_dir, copy.deepcopy(model),
                             dict(type='P3DMetric', det_out=str(det_out)), ann_file=ann,
                             score_thr=0.05, **loop)
    cfg['randomness'] = dict(seed=0)  # the same weights in every run: the same fingerprint
    return cfg


def _scan(cfg):
    runner = Runner.from_cfg(Config(copy.deepcopy(cfg)))
    metrics = runner.test()
    return runner.test_loop, metrics


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


def test_interrupted_scan_resumes_with_identical_results(
        synthetic_converted, tmp_path, volume_scan_config, complete_gt_pickle, tiny_detector_cfg,
        monkeypatch):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    whole = _config(volume_scan_config, root, tmp_path / 'whole', tiny_detector_cfg, ann,
                    tmp_path / 'whole.pkl', volumes=keys[:3])
    loop, metrics = _scan(whole)
    decodes_all = loop.num_decoded
    assert len(os.listdir(loop.records_dir)) == 3

    # the same scan, interrupted by an error after 1 volume
    cfg = _config(volume_scan_config, root, tmp_path / 'cut', tiny_detector_cfg, ann,
                  tmp_path / 'cut.pkl', volumes=keys[:3])
    real_scan = VolumeScanTestLoop.scan_item
    calls = []

    def failing(self, item):
        if len(calls) == 1:
            raise RuntimeError('interrupted')
        calls.append(item['volume'].key)
        return real_scan(self, item)

    monkeypatch.setattr(VolumeScanTestLoop, 'scan_item', failing)
    with pytest.raises(RuntimeError, match='interrupted'):
        _scan(cfg)
    monkeypatch.setattr(VolumeScanTestLoop, 'scan_item', real_scan)
    loop2, metrics2 = _scan(cfg)
    assert metrics2 == metrics
    assert _read(tmp_path / 'cut.pkl') == _read(tmp_path / 'whole.pkl')
    # the finished volume was not decoded again
    assert len(loop2.inputs) == 2 and 0 < loop2.num_decoded < decodes_all

    # other weights (another seed): another fingerprint, a fresh scan beside the old records
    other = copy.deepcopy(cfg)
    other['randomness'] = dict(seed=1)
    loop3, _ = _scan(other)
    assert len(loop3.inputs) == 3 and loop3.records_dir != loop2.records_dir

    # resume=False scans everything and writes nothing
    off = copy.deepcopy(cfg)
    off['test_cfg']['resume'] = False
    off['work_dir'] = str(tmp_path / 'off')
    loop4, metrics4 = _scan(off)
    assert len(loop4.inputs) == 3 and metrics4 == metrics
    assert not os.path.exists(tmp_path / 'off' / 'volume_scan')


KILL_SCRIPT = """
import json, sys, time
from mmengine.config import Config
from mmengine.runner import Runner
import mmlesion
from mmlesion.engine.volume_scan import VolumeScanTestLoop
real = VolumeScanTestLoop.scan_item
def slow(self, item):
    time.sleep(0.5)  # time for the parent to kill between two volumes
    return real(self, item)
VolumeScanTestLoop.scan_item = slow
cfg = json.load(open(sys.argv[1]))
Runner.from_cfg(Config(cfg)).test()
"""


def test_kill_9_mid_scan_then_resume(synthetic_converted, tmp_path, volume_scan_config,
                                     complete_gt_pickle, tiny_detector_cfg):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    whole = _config(volume_scan_config, root, tmp_path / 'whole', tiny_detector_cfg, ann,
                    tmp_path / 'whole.pkl', volumes=keys[:4])
    _scan(whole)
    cfg = _config(volume_scan_config, root, tmp_path / 'cut', tiny_detector_cfg, ann,
                  tmp_path / 'cut.pkl', volumes=keys[:4])
    cfg_file = tmp_path / 'cfg.json'
    cfg_file.write_text(json.dumps(cfg))
    script = tmp_path / 'scan.py'
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(cfg_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / 'cut' / 'volume_scan'
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            done = [f for d in records.glob('*') for f in d.glob('*.npz')] \
                if records.exists() else []
            if len(done) >= 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, 'the scan finished before it could be killed'
    assert not (tmp_path / 'cut.pkl').exists()
    # no half-written record: every file left behind loads
    loop, _ = _scan(cfg)
    assert 0 < len(loop.inputs) < 4
    assert _read(tmp_path / 'cut.pkl') == _read(tmp_path / 'whole.pkl')


def _corrupt(path, keep=300):
    with open(path, 'rb') as f:
        head = f.read(keep)
    with open(path, 'wb') as f:
        f.write(head)


def test_unreadable_files_fail_a_slice_or_a_volume(synthetic_converted, tmp_path,
                                                   volume_scan_config, complete_gt_pickle):
    src = synthetic_converted
    root = tmp_path / 'data'
    shutil.copytree(src, root, ignore=shutil.ignore_patterns('annotations'))
    shutil.copytree(src / 'annotations', root / 'annotations')
    ann, keys = complete_gt_pickle
    by_series = {}
    for k in keys:  # three volumes of three different series
        by_series.setdefault(k[:12], k)
    k_mid, k_first, k_gone = list(by_series.values())[:3]
    scanned = [k for k in keys if k[:12] in {k_mid[:12], k_first[:12], k_gone[:12]}]

    def slice_path(key, offset):
        first, last = int(key[13:16]), int(key[17:20])
        z = (first + last) // 2 if offset == 'mid' else first
        return root / 'Images_png' / key[:12] / f'{z:03d}.png'

    _corrupt(slice_path(k_mid, 'mid'))
    _corrupt(slice_path(k_first, 'first'))
    shutil.rmtree(root / 'Images_png' / k_gone[:12])
    oracle = dict(type='OracleLesionDetector',
                  truth_file=str(src / 'ground_truth' / 'truth.json'))
    cfg = volume_scan_config(root, tmp_path / 'work', oracle, dict(type='P3DMetric'),
                             ann_file=ann, volumes=scanned)
    loop, metrics = _scan(cfg)
    bad = sorted(os.path.basename(os.path.dirname(p)) + '/' + os.path.basename(p)
                 for p, _ in loop.bad_slices)
    assert bad == sorted(f'{p.parent.name}/{p.name}' for p in
                         (slice_path(k_mid, 'mid'), slice_path(k_first, 'first')))
    assert set(loop.failed) == {k for k in scanned if k[:12] == k_gone[:12]}
    assert all('not found' in r for r in loop.failed.values())
    assert metrics['p3d/AP'] > 0  # the readable volumes were scanned and scored

    # strict: the first unreadable file ends the run, naming it
    strict = copy.deepcopy(cfg)
    strict['test_cfg']['strict'] = True
    strict['work_dir'] = str(tmp_path / 'strict')
    with pytest.raises(FileNotFoundError, match=k_gone[:12]):
        _scan(strict)
    shutil.copytree(src / 'Images_png' / k_gone[:12], root / 'Images_png' / k_gone[:12])
    with pytest.raises(ValueError, match='could not decode'):
        _scan(strict)
