"""The package's import structure: no import cycle, and every data module importable on its own.

(a) Static: every module of ``mmlesion`` is parsed with :mod:`ast`; the imports it makes at module
level (class bodies and ``if``/``try`` blocks included, function bodies excluded: those run
later, when every module is loaded) give a graph of intra-package imports, relative imports
resolved and ``from pkg import name`` counted as importing ``pkg.name`` when that is a submodule.
The graph must have no cycle.  Importing a module also runs its parent packages'
``__init__``; those implicit edges are not counted (every module would then "import"
``mmlesion``), as in other import-cycle checkers.  No module imports another module's private
(underscore) names, anywhere in its body: what two modules share has a public home.

(b) Dynamic: each module of ``mmlesion.datasets`` and ``mmlesion.synthetic`` is imported first
in a fresh process, so that none works only because another module happened to be imported
before it.  One driver process imports the third-party libraries (torch, mmdet, ...) once and
forks a child per module, two at a time; a child starts with no ``mmlesion`` module loaded.  The
third-party modules to load first are those a probe child loads while importing every module.
A new interpreter per module would spend most of a minute re-importing torch.
"""
import ast
import os
import subprocess
import sys
import textwrap
from typing import Dict, List, Set

import mmlesion

PACKAGE_DIR = os.path.dirname(os.path.abspath(mmlesion.__file__))
ROOT = 'mmlesion'
DYNAMIC_PACKAGES = ('mmlesion.datasets', 'mmlesion.synthetic')


def package_modules() -> Dict[str, str]:
    """``{dotted module name: file}`` of every module under the package (packages by their
    ``__init__``)."""
    out = {}
    for dirpath, dirnames, files in os.walk(PACKAGE_DIR):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(('.', '__')))
        rel = os.path.relpath(dirpath, PACKAGE_DIR)
        prefix = ROOT if rel == '.' else ROOT + '.' + rel.replace(os.sep, '.')
        if '__init__.py' not in files:
            continue
        for f in sorted(files):
            if not f.endswith('.py'):
                continue
            name = prefix if f == '__init__.py' else f'{prefix}.{f[:-3]}'
            out[name] = os.path.join(dirpath, f)
    return out


def _module_level_imports(tree: ast.AST):
    """Import nodes executed at import time: not inside a function (or lambda) body."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(modules: Dict[str, str]) -> Dict[str, Set[str]]:
    """``{module: {intra-package modules it imports at module level}}``."""
    graph = {}
    for name, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        is_pkg = os.path.basename(path) == '__init__.py'
        package = name if is_pkg else name.rpartition('.')[0]
        targets = set()
        for node in _module_level_imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets.add(alias.name)
                continue
            if node.level:
                base = package.split('.')
                base = base[:len(base) - (node.level - 1)]
                src = '.'.join(base + ([node.module] if node.module else []))
            else:
                src = node.module
            for alias in node.names:
                sub = f'{src}.{alias.name}'
                targets.add(sub if sub in modules else src)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component with more than one
    module (Tarjan's algorithm, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    components.append(set(comp))
    return [_cycle_in(graph, comp) for comp in components]


def _cycle_in(graph: Dict[str, Set[str]], comp: Set[str]) -> List[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    start = min(comp)
    parent = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & comp):
            if child == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1] + [start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return sorted(comp)


def test_cycle_finder_on_a_known_graph():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a', 'd'}, 'd': set(), 'e': set()}
    assert find_cycles(graph) == [['a', 'b', 'c', 'a']]
    assert find_cycles({'a': {'b'}, 'b': set()}) == []


def test_relative_and_submodule_imports_are_resolved(tmp_path):
    modules = {'mmlesion': 'x/__init__.py', 'mmlesion.pkg': 'x/pkg/__init__.py',
               'mmlesion.pkg.a': 'x/pkg/a.py', 'mmlesion.pkg.b': 'x/pkg/b.py',
               'mmlesion.other': 'x/other.py'}
    sources = {
        'mmlesion': 'from . import pkg\n',
        'mmlesion.pkg': 'from .a import thing\nfrom . import b\n',
        'mmlesion.pkg.a': 'import os\nfrom ..other import f\ndef g():\n    from . import b\n',
        'mmlesion.pkg.b': 'from mmlesion.pkg import a\nclass C:\n    import mmlesion.other\n',
        'mmlesion.other': 'try:\n    from mmlesion import pkg\nexcept ImportError:\n    pass\n',
    }
    files = {}
    for name, src in sources.items():
        path = tmp_path / modules[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(src)
        files[name] = str(path)
    graph = import_graph(files)
    assert graph == {
        'mmlesion': {'mmlesion.pkg'},
        'mmlesion.pkg': {'mmlesion.pkg.a', 'mmlesion.pkg.b'},
        'mmlesion.pkg.a': {'mmlesion.other'},  # the import inside g() does not count
        'mmlesion.pkg.b': {'mmlesion.pkg.a', 'mmlesion.other'},
        'mmlesion.other': {'mmlesion.pkg'},
    }
    assert find_cycles(graph) == [['mmlesion.other', 'mmlesion.pkg', 'mmlesion.pkg.a',
                                   'mmlesion.other']]


def test_no_import_cycle_in_the_package():
    modules = package_modules()
    assert 'mmlesion.synthetic.generator' in modules and 'mmlesion.datasets.png_codec' in modules
    cycles = find_cycles(import_graph(modules))
    assert not cycles, 'import cycles:\n' + '\n'.join(' -> '.join(c) for c in cycles)


def test_no_private_name_is_imported_across_modules():
    found = []
    for name, path in package_modules().items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if not node.level and not (node.module or '').split('.')[0] == ROOT:
                continue
            found += [f'{name}:{node.lineno} imports {alias.name}' for alias in node.names
                      if alias.name.startswith('_') and not alias.name.startswith('__')]
    assert not found, '\n'.join(found)


_DRIVER = textwrap.dedent('''
    import importlib, json, os, sys, traceback

    def third_party_modules(names):
        # a probe child imports every module; the third-party modules it loads come back
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            before = set(sys.modules)
            for name in names:
                try:
                    importlib.import_module(name)
                except BaseException:
                    pass
            loaded = [m for m in sys.modules
                      if m not in before and m.split('.')[0] != 'mmlesion']
            with os.fdopen(write, 'w') as f:
                json.dump(loaded, f)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as f:
            loaded = json.load(f)
        os.waitpid(pid, 0)
        return loaded

    names = sys.argv[1:]
    # the third-party libraries once, before the forks; no mmlesion module is loaded here
    for lib in third_party_modules(names):
        try:
            importlib.import_module(lib)
        except BaseException:
            pass
    for m in [m for m in sys.modules if m.split('.')[0] == 'mmlesion']:
        del sys.modules[m]  # a library that imported mmlesion back (a plugin hook) must not count

    def child(name):
        try:
            importlib.import_module(name)
            if name == 'mmlesion':  # registering must not pull in the data generator
                loaded = sorted(m for m in sys.modules if m.startswith('mmlesion.synthetic'))
                assert not loaded, f'import mmlesion loaded {loaded}'
        except BaseException:
            sys.stderr.write(f'FAILED import {name}\\n' + traceback.format_exc())
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)

    running, failed = {}, []
    while names or running:
        while names and len(running) < 2:
            name = names.pop(0)
            pid = os.fork()
            if pid == 0:
                child(name)
            running[pid] = name
        pid, status = os.wait()
        if status != 0:
            failed.append(running[pid])
        del running[pid]
    print('FAILED: ' + ' '.join(sorted(failed)) if failed else 'all imported')
    sys.exit(1 if failed else 0)
''')


def test_each_data_module_imports_on_its_own():
    names = ['mmlesion'] + sorted(n for n in package_modules()
                                  if n.startswith(DYNAMIC_PACKAGES))
    assert len(names) > 20
    env = dict(os.environ)
    # the package under test, wherever it was imported from (checkout or installed copy)
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(PACKAGE_DIR)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                                          if p])
    r = subprocess.run([sys.executable, '-c', _DRIVER, *names], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-6000:]
