"""tools/benchmarks/bench_scan.py runs end to end on a tiny synthetic dataset: every stage is
timed on the same slices and the input side's model inputs equal the pre-issue-15 reference's."""
import importlib.util
import os.path as osp
import pprint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _bench_scan():
    path = osp.join(REPO, 'tools', 'benchmarks', 'bench_scan.py')
    spec = importlib.util.spec_from_file_location('_bench_scan', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_scan_smoke(synthetic_converted, tiny_detector_cfg, tmp_path, capsys,
                          one_torch_thread):
    root = synthetic_converted
    cfg = tmp_path / 'tiny_scan.py'
    cfg.write_text(
        "default_scope = 'mmdet'\n"
        f'model = {pprint.pformat(tiny_detector_cfg)}\n'
        'test_pipeline = [\n'
        "    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,\n"
        "         window_hu=[(-1024, 3071), (-160, 240)]),\n"
        "    dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),\n"
        "    dict(type='PackLesionInputs'),\n"
        ']\n')
    out = _bench_scan().main([str(cfg), '--data-root', str(root),
                              '--ann', str(root / 'annotations' / 'test.json'),
                              '--max-volumes', '1', '--repeat', '1', '--score-thr', '0.0'])
    printed = capsys.readouterr().out
    assert out['identical'] is True
    n = out['times']['a'][0]
    assert n > 5 and all(out['times'][k][0] == n for k in ('b', 'b0', 'c', 'd'))
    for stage in ('(a)  PNG decode', '(b)  input side', '(b0) pre-issue-15', '(c)  full scan',
                  '(d)  stacking', 'b/a = ', 'c/b = ', 'random init'):
        assert stage in printed


def test_gpu_check_script_is_valid_bash():
    """``tools/benchmarks/gpu_check.sh`` needs a GPU to run; here: executable, and bash parses
    it (``bash -n``)."""
    import os
    import shutil
    import subprocess

    import pytest
    path = osp.join(REPO, 'tools', 'benchmarks', 'gpu_check.sh')
    assert os.access(path, os.X_OK)
    if shutil.which('bash') is None:
        pytest.skip('no bash')
    subprocess.run(['bash', '-n', path], check=True)
