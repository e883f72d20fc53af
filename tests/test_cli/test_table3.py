"""tools/benchmarks/table3.py: the rows and their configs, the paper's layout and orderings on
hand-made results, and one row end to end (train one epoch, P3D by the scan, reused on rerun)."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from mmlesion.cli.table3 import (
    FPS,
    PAPER_TABLE3,
    ROWS,
    format_table,
    main,
    ordering_report,
    row_config,
    select_rows,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _result(ap, recall=None):
    return dict(ap=ap, recall=recall or [ap / 2] * len(FPS))


def test_rows_name_paper_rows_and_existing_configs():
    for row in ROWS:
        # every row is the paper's but the seeds' M3DCF-style detector (issue 14)
        assert (row.name in PAPER_TABLE3) == (row.name != 'M3DCF-style')
        for path in (row.synthetic, row.deeplesion):
            assert osp.isfile(osp.join(REPO, path)), path
    assert PAPER_TABLE3['MSCN w/ HNSL'] == (
        (19.86, 27.11, 36.21, 46.82, 56.89, 66.82, 74.73), 51.9)
    assert [PAPER_TABLE3[n][1] for n in ('Faster R-CNN', 'w/ OBHS', 'w/ OBSS', 'w/ M-OBHS')] == \
        [34.2, 17.3, 36.3, 38.3]


def test_select_rows_needs_the_harvest_file_for_harvested_rows():
    names = [r.name for r in select_rows(None, harvested=False)]
    assert names == ['Faster R-CNN', 'w/ OBHS', 'w/ OBSS', 'w/ M-OBHS', 'CenterNet 3-slice',
                     'MSCN', 'M3DCF-style']
    assert len(select_rows(None, harvested=True)) == len(ROWS)
    assert [r.name for r in select_rows(['MSCN', 'w/ OBHS'], False)] == ['w/ OBHS', 'MSCN']
    with pytest.raises(SystemExit, match='--harvest-train'):
        select_rows(['MSCN w/ HNSL'], harvested=False)
    with pytest.raises(SystemExit, match="unknown Table III rows \\['MSCN-HNSL'\\]"):
        select_rows(['MSCN-HNSL'], harvested=True)


def test_row_config_points_at_the_data_and_the_harvest_file(tmp_path):
    hnsl = next(r for r in ROWS if r.name == 'MSCN w/ HNSL')
    cfg = row_config(hnsl, 'synthetic', str(tmp_path / 'w'), data_root='/data/x',
                     harvest_train='/h/next_train.json', epochs=3)
    assert cfg.train_dataloader.dataset.ann_file == '/h/next_train.json'
    assert not cfg.train_dataloader.dataset.get('drop_hard_negatives', False)
    for loader in ('train_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == '/data/x/'
    assert cfg.train_cfg.max_epochs == 3 and cfg.param_scheduler[1].end == 3
    assert cfg.val_dataloader is None and cfg.work_dir == str(tmp_path / 'w')
    frcnn = next(r for r in ROWS if r.name == 'w/ M-OBHS')
    cfg = row_config(frcnn, 'deeplesion', str(tmp_path), cfg_options={'train_cfg.max_epochs': 2})
    assert cfg.model.train_cfg.rcnn.sampler.type == 'OverlapBandWeightSampler'
    assert cfg.train_dataloader.dataset.ann_file == 'annotations/train.json'
    assert cfg.train_cfg.max_epochs == 2
    with pytest.raises(ValueError, match='harvest round'):
        row_config(hnsl, 'synthetic', str(tmp_path))


def test_written_row_config_keeps_obhs_negative_band_a_tuple(tmp_path):
    """The row's config.py is what tools/train.py reads: OBHS's (0.1, 0.5) must stay a tuple
    (mmdet's assigner treats a list as neither a float nor a band: no negatives at all)."""
    obhs = next(r for r in ROWS if r.name == 'w/ OBHS')
    path = tmp_path / 'config.py'
    path.write_text(row_config(obhs, 'synthetic', str(tmp_path), data_root='/d').pretty_text)
    assigner = Config.fromfile(str(path)).model.train_cfg.rcnn.assigner
    assert isinstance(assigner.neg_iou_thr, tuple) and assigner.neg_iou_thr == (0.1, 0.5)


def test_table_layout_and_orderings_on_hand_made_results():
    results = {'Faster R-CNN': _result(0.30, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
               'w/ OBHS': _result(0.35), 'w/ OBSS': _result(0.40), 'MSCN w/ HNSL': _result(0.5)}
    text = format_table(results, 'synthetic')
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith('Faster R-CNN'))
    assert row.split('|')[1].split() == ['10.00', '20.00', '30.00', '40.00', '50.00', '60.00',
                                         '70.00']
    assert row.split('|')[2].strip() == '30.00'
    paper = lines[lines.index(row) + 1]
    assert paper.split('|')[1].split()[0] == '7.20' and paper.split('|')[2].strip() == '34.20'
    hnsl = next(line for line in lines if line.startswith('MSCN w/ HNSL'))
    assert hnsl.split('|')[0].split()[-4:] == ['9', '✓', '✓', '✓']
    order = ordering_report(results)
    # neighbours of the paper's order that ran: OBHS < Faster R-CNN < OBSS < MSCN w/ HNSL
    assert order == [
        'w/ OBHS < Faster R-CNN: ours 35.0 vs 30.0 AP -- does not match the paper (17.3 < 34.2)',
        'Faster R-CNN < w/ OBSS: ours 30.0 vs 40.0 AP -- matches the paper (34.2 < 36.3)',
        'w/ OBSS < MSCN w/ HNSL: ours 40.0 vs 50.0 AP -- matches the paper (36.3 < 51.9)']


def test_one_row_end_to_end_and_reused(synthetic_converted, tmp_path, one_torch_thread, capsys):
    args = ['--data-root', str(synthetic_converted), '--work-dir', str(tmp_path), '--epochs',
            '1', '--rows', 'w/ OBSS']
    summary = main(args)
    row = summary['rows']['w/ OBSS']
    assert len(row['recall']) == len(FPS) and 0.0 <= row['ap'] <= 1.0
    assert all(0.0 <= r <= 1.0 for r in row['recall'])
    with open(tmp_path / 'w__obss' / 'result.json') as f:
        assert json.load(f)['ap'] == row['ap']
    cfg_text = (tmp_path / 'w__obss' / 'config.py').read_text()
    assert 'OverlapSoftSampler' in cfg_text and 'max_epochs=1' in cfg_text
    text = (tmp_path / 'table3.txt').read_text()
    assert text.startswith('Table III (synthetic)') and 'w/ OBSS' in text
    capsys.readouterr()
    again = main(args)  # same config, same data: the row is reused, not retrained
    assert 'reusing' in capsys.readouterr().out
    assert again['rows']['w/ OBSS']['ap'] == row['ap']


def test_a_row_without_paper_figures_prints_ours_only():
    lines = format_table({'MSCN': _result(0.4), 'M3DCF-style': _result(0.5)},
                         'synthetic').splitlines()
    m3dcf = lines.index(next(line for line in lines if line.startswith('M3DCF-style')))
    assert lines[m3dcf].split('|')[2].strip() == '50.00'
    assert m3dcf == len(lines) - 1  # no "paper" line under it
    assert lines[m3dcf - 1].startswith('  paper')  # MSCN's
