"""Convert DeepLesion's ``DL_info.csv`` (+ a scan of ``Images_png/``) to mmlesion's COCO-style JSON.

Writes ``train.json``, ``val.json``, ``test.json`` (schema: ``docs/data_format.md``) and
``summary.json`` into the output folder, atomically.  One image per key slice (rows sharing a key
slice become several annotations on one image), one volume per released sub-volume
(``Slice_range``).  Output is deterministic: images sorted by (volume, slice), annotations by
(image, CSV row), ids 1.. per file, no timestamps, so two runs give byte-identical files.

Frames: the CSV is 1-based in x, y; the JSON is 0-based (``bbox`` and ``recist`` are the CSV values
minus 1).  Slice indices stay absolute.  The image folder is only listed (one ``os.scandir`` per
series folder), never decoded, so the full 32,735-row CSV converts in seconds.

Usage::

    python tools/convert_deeplesion.py --data-root DIR --out-dir OUT
"""
import argparse
import json
import math
import os
import re
import sys
import time
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Sequence, Set, Tuple

from mmlesion.datasets.converters.dl_info import DLInfoError, DLInfoRow, DLInfoTable, read_dl_info
from mmlesion.structures.volume_key import slice_file_name
from mmlesion.utils.fileio import atomic_write_text
from mmlesion.version import __version__

SPLITS = ('train', 'val', 'test')
CATEGORIES = [{'id': 1, 'name': 'lesion'}]
COORDINATE_FRAME = '0-based pixels; absolute slice indices'
_PNG_RE = re.compile(r'^(\d+)\.png$')
_ROUND_DIGITS = 9


def _num(v: float):
    """Integral floats as int (windows ``-175``), others unchanged; JSON stays compact."""
    return int(v) if float(v).is_integer() else v


def _spacing_json(row: DLInfoRow) -> List[Optional[float]]:
    x, y, z = row.spacing_mm
    return [x, y, None if math.isnan(z) else z]


def _same_spacing(a: Tuple[float, ...], b: Tuple[float, ...]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def scan_series_folders(image_dir: str, series: Sequence[str]) -> Dict[str, Optional[Set[int]]]:
    """List the slice PNGs of each series folder; no image is opened.

    Args:
        image_dir: the ``Images_png`` folder.
        series: series folder names ``PPPPPP_SS_RR``.

    Returns:
        series -> set of absolute slice indices with a ``KKK.png`` file, or None where the
        series folder itself is absent.
    """
    found = {}
    for s in series:
        try:
            with os.scandir(os.path.join(image_dir, s)) as it:
                found[s] = {int(m.group(1)) for m in (_PNG_RE.match(e.name) for e in it) if m}
        except (FileNotFoundError, NotADirectoryError):
            found[s] = None
    return found


def _check_row_against(row: DLInfoRow, ref: DLInfoRow, what: str, path: str) -> None:
    """Rows of one sub-volume / key slice must agree on the per-series facts."""
    if row.split != ref.split:
        raise DLInfoError(path, row.csv_row, row.line, 'Train_Val_Test',
                          f'{what} {ref.volume_id} is {ref.split!r} in row {ref.csv_row}, got '
                          f'{row.split!r}')
    if not _same_spacing(row.spacing_mm, ref.spacing_mm):
        raise DLInfoError(path, row.csv_row, row.line, 'Spacing_mm_px_',
                          f'expected the spacing of {what} {ref.volume_id} given in row '
                          f'{ref.csv_row} {ref.spacing_mm}, got {row.spacing_mm}')
    if row.image_size != ref.image_size:
        raise DLInfoError(path, row.csv_row, row.line, 'Image_size',
                          f'expected the image size of {what} {ref.volume_id} given in row '
                          f'{ref.csv_row} {ref.image_size}, got {row.image_size}')


def build_coco(table: DLInfoTable,
               image_dir: Optional[str] = None,
               slices_found: Optional[Dict[str, Optional[Set[int]]]] = None,
               keep_noisy: bool = True,
               skip_invalid: bool = False) -> Tuple[Dict[str, dict], dict]:
    """Group validated rows into images / annotations / volumes per split.

    Args:
        table: the parsed CSV (:func:`read_dl_info`); x, y 1-based.
        image_dir: recorded in the summary only.
        slices_found: :func:`scan_series_folders` output, or None when images were not checked.
        keep_noisy: keep ``Possibly_noisy`` rows as annotations with ``noisy: true``; otherwise
            leave them out (counted as skipped).
        skip_invalid: rows inconsistent with an earlier row of the same sub-volume are skipped
            and reported instead of raising.

    Returns:
        ``({'train': coco, 'val': coco, 'test': coco}, summary)``; coco dicts are 0-based.
    """
    path = table.path
    skipped = [{'csv_row': r, 'line': ln, 'reason': reason} for r, ln, reason in table.skipped]
    volumes: 'OrderedDict[str, DLInfoRow]' = OrderedDict()
    images: Dict[Tuple[str, int], List[DLInfoRow]] = {}
    noisy_dropped = 0
    for row in table.rows:
        if row.noisy and not keep_noisy:
            noisy_dropped += 1
            skipped.append({'csv_row': row.csv_row, 'line': row.line,
                            'reason': 'Possibly_noisy = 1 (dropped: --drop-noisy)'})
            continue
        try:
            ref = volumes.get(row.volume_id)
            if ref is not None:
                _check_row_against(row, ref, 'sub-volume', path)
        except DLInfoError as e:
            if not skip_invalid:
                raise
            skipped.append({'csv_row': row.csv_row, 'line': row.line, 'reason': str(e)})
            continue
        volumes.setdefault(row.volume_id, row)
        images.setdefault((row.volume_id, row.key_slice_index), []).append(row)

    outputs = {}
    counts = {k: Counter() for k in ('rows', 'key_slices', 'lesions', 'volumes')}
    for split in SPLITS:
        coco = OrderedDict(
            info=OrderedDict(description=f'DeepLesion {split} split converted by mmlesion',
                             version=__version__, source='DL_info.csv',
                             coordinate_frame=COORDINATE_FRAME),
            categories=CATEGORIES, images=[], annotations=[], volumes=[])
        outputs[split] = coco

    for key in sorted(images):
        rows = sorted(images[key], key=lambda r: r.csv_row)
        first = rows[0]
        coco = outputs[first.split]
        image_id = len(coco['images']) + 1
        w, h = first.image_size
        coco['images'].append(OrderedDict(
            id=image_id, file_name=slice_file_name(first.series, first.key_slice_index),
            width=w, height=h, volume_id=first.volume_id, series=first.series,
            slice_index=first.key_slice_index, slice_range=list(first.slice_range),
            spacing=_spacing_json(first), slice_interval=first.slice_interval_mm,
            dicom_window=[_num(v) for v in first.dicom_window], split=first.split,
            patient_index=first.patient_index, study_index=first.study_index,
            series_id=first.series_id, gender=first.gender, age=first.age))
        counts['key_slices'][first.split] += 1
        for row in rows:
            x1, y1, x2, y2 = row.bbox_xyxy_0based
            bw, bh = round(x2 - x1, _ROUND_DIGITS), round(y2 - y1, _ROUND_DIGITS)
            coco['annotations'].append(OrderedDict(
                id=len(coco['annotations']) + 1, image_id=image_id, category_id=1,
                bbox=[x1, y1, bw, bh], area=round(bw * bh, _ROUND_DIGITS), iscrowd=0,
                recist=list(row.recist_0based), diameters_px=list(row.lesion_diameters_px),
                lesion_type=row.lesion_type, noisy=row.noisy, source='recist',
                hard_negative=False, csv_row=row.csv_row))
            counts['lesions'][row.split] += 1
            counts['rows'][row.split] += 1

    missing_total = 0
    volumes_with_missing = 0
    for vid in sorted(volumes):
        row = volumes[vid]
        entry = OrderedDict(id=vid, series=row.series, slice_range=list(row.slice_range),
                            spacing=_spacing_json(row), split=row.split, complete=False)
        if slices_found is not None:
            present = slices_found.get(row.series) or set()
            first, last = row.slice_range
            missing = [z for z in range(first, last + 1) if z not in present]
            entry['missing_slices'] = missing
            missing_total += len(missing)
            volumes_with_missing += bool(missing)
        outputs[row.split]['volumes'].append(entry)
        counts['volumes'][row.split] += 1

    # Quirk counters over the rows that made it into the output.
    used = [r for rows in images.values() for r in rows]
    key_firsts = [sorted(rows, key=lambda r: r.csv_row)[0] for rows in images.values()]
    sizes = Counter(f'{r.image_size[0]}x{r.image_size[1]}' for r in key_firsts)
    window_conflicts = sum(len({r.dicom_window for r in rows}) > 1 for rows in images.values())
    missing_pngs = []
    series_missing = []
    if slices_found is not None:
        for (vid, z), rows in sorted(images.items()):
            present = slices_found.get(rows[0].series)
            if present is None or z not in present:
                missing_pngs.append(slice_file_name(rows[0].series, z))
        series_missing = sorted({r.series for r in key_firsts
                                 if slices_found.get(r.series) is None})
    vol_rows = list(volumes.values())
    summary = OrderedDict(
        csv=path,
        image_dir=image_dir,
        images_checked=slices_found is not None,
        rows_read=table.num_rows_read,
        rows_used=len(used),
        rows_per_split={s: counts['rows'][s] for s in SPLITS},
        key_slices=sum(counts['key_slices'].values()),
        key_slices_per_split={s: counts['key_slices'][s] for s in SPLITS},
        key_slices_with_several_lesions=sum(len(rows) > 1 for rows in images.values()),
        lesions=sum(counts['lesions'].values()),
        lesions_per_split={s: counts['lesions'][s] for s in SPLITS},
        volumes=len(volumes),
        volumes_per_split={s: counts['volumes'][s] for s in SPLITS},
        series=len({r.series for r in vol_rows}),
        noisy_rows=sum(r.noisy for r in table.rows),
        noisy_rows_kept=sum(r.noisy for r in used),
        rows_empty_age=sum(r.age is None for r in table.rows),
        rows_empty_gender=sum(r.gender is None for r in table.rows),
        key_slices_not_512=sum(n for s, n in sizes.items() if s != '512x512'),
        key_slice_sizes=OrderedDict(sorted(sizes.items())),
        boxes_crossing_border=sum('box_crosses_border' in r.warnings for r in used),
        key_slices_with_window_conflict=window_conflicts,
        slice_interval_zero_rows=sum(r.spacing_mm[2] == 0 for r in used),
        slice_interval_nan_rows=sum(math.isnan(r.spacing_mm[2]) for r in used),
        slice_interval_zero_volumes=sum(r.spacing_mm[2] == 0 for r in vol_rows),
        slice_interval_nan_volumes=sum(math.isnan(r.spacing_mm[2]) for r in vol_rows),
        volumes_with_missing_slices=volumes_with_missing if slices_found is not None else None,
        missing_slices=missing_total if slices_found is not None else None,
        series_folders_missing=len(series_missing) if slices_found is not None else None,
        key_slices_missing_png=len(missing_pngs) if slices_found is not None else None,
        key_slice_pngs_missing=missing_pngs,
        rows_skipped=len(skipped),
        noisy_rows_dropped=noisy_dropped,
        skipped=sorted(skipped, key=lambda d: d['csv_row']),
    )
    return outputs, summary


def convert_deeplesion(data_root: Optional[str],
                       out_dir: str,
                       csv_path: Optional[str] = None,
                       image_dir: Optional[str] = None,
                       keep_noisy: bool = True,
                       check_images: bool = True,
                       skip_invalid: bool = False,
                       decode_images: bool = False,
                       workers: int = 2,
                       log=print) -> dict:
    """Convert ``DL_info.csv`` to ``OUT/{train,val,test}.json`` and ``OUT/summary.json``.

    Args:
        data_root: DeepLesion folder holding ``DL_info.csv`` and ``Images_png/``.
        out_dir: output folder (created).
        csv_path: defaults to ``data_root/DL_info.csv``.
        image_dir: defaults to ``data_root/Images_png``.
        keep_noisy: keep noisy rows flagged ``noisy: true`` (the dataset drops them at load time
            by default); False leaves them out of the JSON.
        check_images: list the series folders to find missing slices.  An absent image folder
            is reported loudly, not fatal: the annotations are still written.
        skip_invalid: skip and report malformed rows instead of raising :class:`DLInfoError`.
        decode_images: decode every key slice and the neighbours its 9-slice window uses
            (:func:`mmlesion.datasets.image_check.check_images`, ``workers`` processes) and list
            the unreadable files in the summary (``unreadable_images``), so that training does
            not meet them hours in.
        workers: processes decoding images.
        log: where the human-readable summary goes.

    Returns:
        The summary dict (also written to ``summary.json``).
    """
    t0 = time.time()
    if csv_path is None:
        if data_root is None:
            raise ValueError('give data_root or csv_path')
        csv_path = os.path.join(data_root, 'DL_info.csv')
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f'DL_info.csv not found: {csv_path} (expected DeepLesion\'s '
                                'annotation table; pass --data-root DIR holding DL_info.csv)')
    if image_dir is None:
        image_dir = os.path.join(data_root if data_root is not None else
                                 os.path.dirname(os.path.abspath(csv_path)), 'Images_png')
    table = read_dl_info(csv_path, skip_invalid=skip_invalid)

    slices_found = None
    image_dir_missing = False
    if check_images:
        if image_dir is not None and os.path.isdir(image_dir):
            slices_found = scan_series_folders(
                image_dir, sorted({r.series for r in table.rows}))
        else:
            image_dir_missing = True
    outputs, summary = build_coco(table, image_dir=image_dir, slices_found=slices_found,
                                  keep_noisy=keep_noisy, skip_invalid=skip_invalid)
    summary['image_dir_missing'] = image_dir_missing
    if decode_images and not image_dir_missing:
        from mmlesion.datasets.image_check import check_images
        images = [im for split in SPLITS for im in outputs[split]['images']]
        checked = check_images(images, image_dir, workers=workers, progress=log is not None)
        summary['images_decoded'] = checked['checked']
        summary['unreadable_images'] = [list(b) for b in checked['unreadable']]
    os.makedirs(out_dir, exist_ok=True)
    # json.dumps (C encoder) rather than json.dump to a file (pure-Python chunked encoder): 4x
    # faster on the full CSV.  allow_nan=False: NaN intervals must have become null, never NaN.
    for split in SPLITS:
        atomic_write_text(os.path.join(out_dir, f'{split}.json'),
                          json.dumps(outputs[split], allow_nan=False))
    atomic_write_text(os.path.join(out_dir, 'summary.json'), json.dumps(summary, indent=1))
    if log is not None:
        log(format_summary(summary))
        bad = summary.get('unreadable_images') or []
        if 'images_decoded' in summary:
            log(f'decoded {summary["images_decoded"]} slice PNGs (key slices and their window '
                f'neighbours): {len(bad)} unreadable')
        for path, reason in bad[:50]:
            log(f'  unreadable: {path}: {reason}')
        if len(bad) > 50:
            log(f'  ... and {len(bad) - 50} more (summary.json lists them all)')
        log(f'wrote {", ".join(s + ".json" for s in SPLITS)} and summary.json to {out_dir} '
            f'in {time.time() - t0:.2f} s')
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable lines for the conversion summary."""
    s = summary

    def per(d):
        return ' / '.join(f'{d[k]} {k}' for k in SPLITS)

    lines = [
        f'DL_info.csv: {s["csv"]}',
        f'rows read: {s["rows_read"]}, used: {s["rows_used"]} ({per(s["rows_per_split"])}), '
        f'skipped: {s["rows_skipped"]}',
        f'key slices (images): {s["key_slices"]} ({per(s["key_slices_per_split"])}); '
        f'{s["key_slices_with_several_lesions"]} with several lesions',
        f'lesions (annotations): {s["lesions"]}',
        f'sub-volumes: {s["volumes"]} ({per(s["volumes_per_split"])}) in {s["series"]} series',
        f'noisy rows: {s["noisy_rows"]} (kept, flagged noisy: {s["noisy_rows_kept"]}; '
        f'dropped: {s["noisy_rows_dropped"]})',
        f'rows with empty age: {s["rows_empty_age"]}, empty gender: {s["rows_empty_gender"]}',
        f'key slices not 512x512: {s["key_slices_not_512"]} (sizes: '
        + ', '.join(f'{k}: {v}' for k, v in s['key_slice_sizes'].items()) + ')',
        f'slice interval 0: {s["slice_interval_zero_rows"]} rows / '
        f'{s["slice_interval_zero_volumes"]} volumes; NaN: {s["slice_interval_nan_rows"]} rows / '
        f'{s["slice_interval_nan_volumes"]} volumes (kept as 0 / null)',
        f'boxes crossing the image border (RECIST padding): {s["boxes_crossing_border"]}; '
        f'key slices whose rows disagree on DICOM window: '
        f'{s["key_slices_with_window_conflict"]} (first row kept)',
    ]
    if s['images_checked']:
        lines += [
            f'images: {s["image_dir"]}: {s["volumes_with_missing_slices"]} sub-volumes with '
            f'missing slices ({s["missing_slices"]} slices missing); series folders missing: '
            f'{s["series_folders_missing"]}; key slices whose PNG is missing: '
            f'{s["key_slices_missing_png"]}'
            + (' e.g. ' + ', '.join(s['key_slice_pngs_missing'][:5])
               if s['key_slice_pngs_missing'] else '')]
    elif s.get('image_dir_missing'):
        lines += [
            '!' * 78,
            f'WARNING: image folder not found: {s["image_dir"]}',
            'WARNING: annotations were written, but the IMAGES ARE MISSING; missing slices were '
            'not checked and training/inference will fail until Images_png/ is in place.',
            '!' * 78]
    else:
        lines += ['images: not checked (--no-image-check)']
    for d in s['skipped'][:20]:
        lines.append(f'  skipped row {d["csv_row"]} (line {d["line"]}): {d["reason"]}')
    if len(s['skipped']) > 20:
        lines.append(f'  ... {len(s["skipped"]) - 20} more skipped rows in summary.json')
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Convert DeepLesion DL_info.csv to mmlesion COCO-style JSON '
        '(train/val/test.json + summary.json). CSV x/y are 1-based; the JSON is 0-based.')
    p.add_argument('--data-root', default=None,
                   help='DeepLesion folder with DL_info.csv and Images_png/ (required unless '
                   '--csv is given)')
    p.add_argument('--out-dir', required=True, help='output folder for the JSON files')
    p.add_argument('--csv', default=None, help='DL_info.csv (default: DATA_ROOT/DL_info.csv)')
    p.add_argument('--image-dir', default=None,
                   help='slice PNG folder (default: DATA_ROOT/Images_png)')
    noisy = p.add_mutually_exclusive_group()
    noisy.add_argument('--keep-noisy', dest='keep_noisy', action='store_true', default=True,
                       help='keep Possibly_noisy rows, flagged "noisy": true (default; the '
                       'dataset drops them at load time unless told otherwise)')
    noisy.add_argument('--drop-noisy', dest='keep_noisy', action='store_false',
                       help='leave Possibly_noisy rows out of the JSON (reported as skipped)')
    p.add_argument('--no-image-check', action='store_true',
                   help='do not list the image folder (no missing-slice report)')
    p.add_argument('--check-images', action='store_true',
                   help='decode every key slice and the neighbours its 9-slice window uses and '
                   'list unreadable PNGs (exit status 1 if any), before any training meets them')
    p.add_argument('--workers', type=int, default=2,
                   help='processes decoding PNGs for --check-images (default 2)')
    p.add_argument('--skip-invalid', action='store_true',
                   help='skip malformed rows and report them instead of stopping at the first')
    args = p.parse_args(argv)
    if args.data_root is None and args.csv is None:
        p.error('give --data-root DIR (holding DL_info.csv and Images_png/) or --csv FILE')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        summary = convert_deeplesion(args.data_root, args.out_dir, csv_path=args.csv,
                                     image_dir=args.image_dir, keep_noisy=args.keep_noisy,
                                     check_images=not args.no_image_check,
                                     skip_invalid=args.skip_invalid,
                                     decode_images=args.check_images, workers=args.workers)
    except (DLInfoError, FileNotFoundError) as e:
        hint = '' if args.skip_invalid or not isinstance(e, DLInfoError) or e.row is None \
            else ' (use --skip-invalid to skip and report malformed rows)'
        print(f'error: {e}{hint}', file=sys.stderr)
        return 1
    if summary.get('unreadable_images'):
        print(f'error: {len(summary["unreadable_images"])} unreadable slice PNG(s), listed above '
              'and in summary.json; replace them (or delete them: a missing slice is handled) '
              'before training', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
