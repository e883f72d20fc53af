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


def _tiny_config(path, tiny_detector_cfg):
    path.write_text(
        "default_scope = 'mmdet'\n"
        f'model = {pprint.pformat(tiny_detector_cfg)}\n'
        'test_pipeline = [\n'
        "    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,\n"
        "         window_hu=[(-1024, 3071), (-160, 240)]),\n"
        "    dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),\n"
        "    dict(type='PackLesionInputs'),\n"
        ']\n')
    return path


def test_bench_scan_smoke(synthetic_converted, tiny_detector_cfg, tmp_path, capsys,
                          one_torch_thread):
    root = synthetic_converted
    cfg = _tiny_config(tmp_path / 'tiny_scan.py', tiny_detector_cfg)
    out = _bench_scan().main([str(cfg), '--data-root', str(root),
                              '--ann', str(root / 'annotations' / 'test.json'),
                              '--max-volumes', '1', '--repeat', '1', '--score-thr', '0.0',
                              '--variants', 'fp32,bf16+cl+xv'])
    printed = capsys.readouterr().out
    assert out['identical'] is True
    n = out['times']['a'][0]
    assert n > 5 and all(out['times'][k][0] == n for k in (
        'b', 'b0', 'c', 'd', 'c:fp32', 'e:fp32', 'c:bf16+cl+xv', 'e:bf16+cl+xv'))
    assert out['times']['c'] == out['times']['c:fp32']
    for stage in ('(a)  PNG decode', '(b)  input side', '(b0) pre-issue-15',
                  '(c)  full scan fp32', '(e)  prepared fp32', '(c)  full scan bf16+cl+xv',
                  '(e)  prepared bf16+cl+xv', "identical to fp32's",
                  '(d)  stacking', 'b/a = ', 'c/b = ', 'random init', '928K h'):
        assert stage in printed


def test_bench_scan_variants():
    bench = _bench_scan()

    def variants(*argv):
        return bench.parse_variants(bench.parse_args(['cfg', '--data-root', '.', '--ann', 'a',
                                                      *argv]))

    assert variants() == [('fp32', dict(fp16=False, amp_dtype=None, channels_last=False,
                                        cross_volume=False, pin_memory=None))]
    assert variants('--amp-dtype', 'bf16', '--channels-last', '--no-pin-memory')[0][0] == \
        'bf16+cl+nopin'
    assert variants('--variants', 'fp32, fp16+cl+xv, bf16+tc') == [
        ('fp32', dict(amp_dtype=None, channels_last=False, cross_volume=False, compile=False,
                      pin_memory=None)),
        ('fp16+cl+xv', dict(amp_dtype='fp16', channels_last=True, cross_volume=True,
                            compile=False, pin_memory=None)),
        ('bf16+tc', dict(amp_dtype='bf16', channels_last=False, cross_volume=False,
                         compile=True, pin_memory=None))]
    import pytest
    for bad in ('bf16+fp16', 'fp32+xl', ','):
        with pytest.raises(SystemExit, match='--variants'):
            variants('--variants', bad)


def test_gpu_check_runs_on_the_cpu(synthetic_converted, tiny_detector_cfg, tmp_path):
    """gpu_check.sh end to end with DEVICE=cpu on given data (bench_train skipped): the
    preflight, bench_scan with two variants, and the summary."""
    import os
    import shutil
    import subprocess

    import pytest
    if shutil.which('bash') is None:
        pytest.skip('no bash')
    env = dict(os.environ, DEVICE='cpu', SKIP_TRAIN='1', BATCH='4', REPEAT='1',
               VARIANTS='fp32,bf16+xv', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               CONFIG=str(_tiny_config(tmp_path / 'tiny_scan.py', tiny_detector_cfg)))
    run = subprocess.run([osp.join(REPO, 'tools', 'benchmarks', 'gpu_check.sh'),
                          str(synthetic_converted), '0', '1'], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for text in ('== cpu; torch', '(c)  full scan fp32', '(e)  prepared bf16+xv',
                 '[bench_scan: ', 'exit 0]', '== gpu_check done in'):
        assert text in run.stdout


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
