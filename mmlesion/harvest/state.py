"""What each step of a harvest round has done, so that a rerun resumes where it stopped.

``<round dir>/state.json`` records, per finished step, the SHA-256 of every file it consumed and
wrote and a fingerprint of the settings it used.  A step is done when its record exists, its
outputs still hash to the recorded values and its inputs and settings are unchanged; the first
step that is not done is run again from its start, and every later step with it.  The file is
rewritten atomically after each step, so an interruption (even ``kill -9``) loses at most the
step that was running.
"""
import hashlib
import json
import os
import os.path as osp
import time
from typing import Any, Dict, Iterable, Mapping, Optional

from mmlesion.utils.fileio import atomic_dump_json, file_sha256

__all__ = ['RoundState', 'file_sha256', 'settings_fingerprint', 'STATE_FILE']

STATE_FILE = 'state.json'


def settings_fingerprint(settings: Any) -> str:
    """SHA-256 of the canonical JSON of ``settings`` (dicts with sorted keys)."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()


class RoundState:
    """The step records of one round directory.

    Args:
        round_dir: ``<work dir>/round_{i}``.
    """

    def __init__(self, round_dir: str) -> None:
        self.round_dir = round_dir
        self.path = osp.join(round_dir, STATE_FILE)
        self.steps: Dict[str, dict] = {}
        if osp.isfile(self.path):
            try:
                with open(self.path) as f:
                    self.steps = dict(json.load(f).get('steps', {}))
            except (OSError, ValueError) as e:
                raise ValueError(f'{self.path}: unreadable harvest state ({e}); move it away to '
                                 'redo the round from its first step') from None

    def _abs(self, path: str) -> str:
        return path if osp.isabs(path) else osp.join(self.round_dir, path)

    def _hashes(self, paths: Iterable[str]) -> Optional[Dict[str, str]]:
        out = {}
        for p in paths:
            full = self._abs(p)
            if not osp.isfile(full):
                return None
            out[p] = file_sha256(full)
        return out

    def is_done(self, step: str, inputs: Iterable[str] = (), settings: Any = None) -> bool:
        """True when ``step`` finished with these inputs and settings and its outputs are
        intact."""
        rec = self.steps.get(step)
        if rec is None:
            return False
        if rec.get('settings') != settings_fingerprint(settings):
            return False
        if self._hashes(inputs) != rec.get('inputs'):
            return False
        outputs = rec.get('outputs', {})
        return self._hashes(outputs) == outputs

    def record(self, step: str, inputs: Iterable[str], outputs: Iterable[str],
               settings: Any = None, info: Optional[Mapping[str, Any]] = None,
               seconds: Optional[float] = None) -> None:
        """Mark ``step`` finished and write the state file (atomically)."""
        ins, outs = self._hashes(inputs), self._hashes(outputs)
        if ins is None or outs is None:
            raise FileNotFoundError(f'{self.round_dir}: step {step!r} finished without all of '
                                    'its files')
        self.steps[step] = dict(inputs=ins, outputs=outs, settings=settings_fingerprint(settings),
                                info=dict(info or {}), seconds=seconds,
                                finished=time.strftime('%Y-%m-%dT%H:%M:%S'))
        self.save()

    def forget_from(self, step: str, order: Iterable[str]) -> None:
        """Drop the records of ``step`` and every step after it in ``order``."""
        order = list(order)
        for s in order[order.index(step):]:
            self.steps.pop(s, None)
        self.save()

    def info(self, step: str) -> dict:
        return dict(self.steps.get(step, {}).get('info', {}))

    def save(self) -> None:
        os.makedirs(self.round_dir, exist_ok=True)
        atomic_dump_json(dict(steps=self.steps), self.path, indent=1)
