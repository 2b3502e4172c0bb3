"""The package's import graph: no cycle between its modules, function-level imports counted
(an import inside a function is a dependency all the same, only hidden)."""
import ast
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _modules():
    mods = {}
    for d, _, files in os.walk(osp.join(ROOT, 'parc_mm')):
        for f in files:
            if f.endswith('.py'):
                path = osp.join(d, f)
                name = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                mods[name[:-len('.__init__')] if name.endswith('.__init__') else name] = path
    return mods


def _edges(mods):
    """module -> the parc_mm modules its import statements name (``from pkg import sub``:
    the submodule, not the package)."""
    edges = {m: set() for m in mods}
    for m, path in mods.items():
        pkg = m if path.endswith('__init__.py') else m.rsplit('.', 1)[0]
        for node in ast.walk(ast.parse(open(path).read())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parts = pkg.split('.')
                    up = '.'.join(parts[:len(parts) - node.level + 1])
                    base = up + ('.' + node.module if node.module else '')
                subs = [f'{base}.{a.name}' for a in node.names if f'{base}.{a.name}' in mods]
                names = subs if len(subs) == len(node.names) else [base] + subs
            for n in names:
                while n and n not in mods:
                    n = n.rsplit('.', 1)[0] if '.' in n else ''
                if n and n != m:
                    edges[m].add(n)
    return edges


def _cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_the_package():
    edges = _edges(_modules())
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_one():
    """(The check above can fail: a two-module loop through a function-level import.)"""
    assert _cycles({'a': {'b'}, 'b': {'a'}, 'c': set()}) == [['a', 'b']]


# The package's layers, bottom up: a module imports from its own layer or below. ``compat``
# imports nothing of ours at module level (its patches reach down into utils / ops when they
# run); ``engine`` (hooks) sits below ``models``, which registers them.
LAYERS = [
    ('parc_mm.version', 'parc_mm.registry', 'parc_mm.utils'),
    ('parc_mm.ops', ),
    ('parc_mm.compat', 'parc_mm.engine'),
    ('parc_mm.models', 'parc_mm.datasets'),
    ('parc_mm.apis', ),
    ('parc_mm.deploy', ),
    ('parc_mm.analysis', 'parc_mm.testing'),
]


def _layer(module):
    if module == 'parc_mm':
        return len(LAYERS)  # the package itself is the top
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + '.') for n in names):
            return i
    raise AssertionError(f'{module} is in no layer of tests/test_imports.py::LAYERS')


def _back_up(edges):
    return sorted((a, b) for a, bs in edges.items() for b in bs if _layer(b) > _layer(a))


def test_at_most_one_import_runs_back_up():
    """Inference runs exports through the deploy wing (its one way back up); nothing else
    imports from a layer above its own, function-level imports included."""
    assert _back_up(_edges(_modules())) == [('parc_mm.apis.inference', 'parc_mm.deploy.ort')]


def test_compat_imports_nothing_of_ours_at_module_level():
    tree = ast.parse(open(osp.join(ROOT, 'parc_mm', 'compat.py')).read())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    ours = [ast.unparse(n) for n in top if 'parc_mm' in ast.unparse(n) or
            (isinstance(n, ast.ImportFrom) and n.level)]
    assert ours == []


def test_the_layer_check_finds_an_import_back_up():
    assert _back_up({'parc_mm.ops.x': {'parc_mm.models.y'}, 'parc_mm.models.y': set()}) == [
        ('parc_mm.ops.x', 'parc_mm.models.y')]
