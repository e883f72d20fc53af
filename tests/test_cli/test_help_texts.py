"""Every option of every tool says what it does: the argparse parser of each ``mmlesion/cli``
module, of the converters behind ``tools/convert_deeplesion.py`` and
``tools/import_annotations.py``, and of the tools that build their own (publish_checkpoint,
benchmarks, misc) is built without running anything, and each of its options has a help text."""
import argparse
import importlib
import importlib.util
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'mmlesion', 'cli')


def _is_program(path):
    """A module with a command line (``def main``); helpers such as cli/errors.py have none."""
    with open(path) as f:
        return '\ndef main(' in f.read()


MODULES = sorted('mmlesion.cli.' + f[:-3] for f in os.listdir(CLI)
                 if f.endswith('.py') and f != '__init__.py' and _is_program(osp.join(CLI, f)))
MODULES += ['mmlesion.datasets.converters.deeplesion',
            'mmlesion.datasets.converters.annotation_release']
SCRIPTS = ['tools/publish_checkpoint.py']
SCRIPTS += sorted(osp.join('tools', sub, f) for sub in ('benchmarks', 'misc')
                  for f in os.listdir(osp.join(REPO, 'tools', sub)) if f.endswith('.py'))


class _Built(Exception):
    def __init__(self, parser):
        super().__init__('parser built')
        self.parser = parser


def _load(name):
    if not name.endswith('.py'):
        return importlib.import_module(name)
    path = osp.join(REPO, name)
    spec = importlib.util.spec_from_file_location(
        '_help_' + name.replace('/', '_')[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parser_of(name, monkeypatch):
    """The parser ``parse_args`` / ``main`` builds, stopped at its ``parse_args`` call."""
    monkeypatch.syspath_prepend(osp.join(REPO, 'tools'))  # tools/_interpreter.py

    def stop(self, args=None, namespace=None):
        raise _Built(self)

    module = _load(name)
    entry = getattr(module, 'parse_args', None) or module.main
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', stop)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', stop)
    monkeypatch.setattr(sys, 'argv', [name])
    with pytest.raises(_Built) as built:
        entry([]) if entry.__code__.co_argcount else entry()
    return built.value.parser


@pytest.mark.parametrize('name', MODULES + SCRIPTS)
def test_every_option_has_help(name, monkeypatch):
    parser = _parser_of(name, monkeypatch)
    assert (parser.description or '').strip(), f'{name}: no description'
    missing = [a.option_strings or [a.dest] for a in parser._actions
               if not isinstance(a, argparse._HelpAction) and not (a.help or '').strip()]
    assert not missing, f'{name}: options without help: {missing}'
