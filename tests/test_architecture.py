"""The package's shape: no import cycle, no upward import across the layers of
docs/architecture.md, a public surface that resolves, the data-model page generated from
the registry."""

import ast
from pathlib import Path

import pytest

import xdl4
from xdl4.schema import variables_table

PACKAGE = Path(__file__).resolve().parents[1] / "xdl4"  # the sources, also when installed
DOCS = PACKAGE.parent / "docs"

#: the layers of docs/architecture.md, lowest first; a module imports only from its own
#: layer or below ("beside" modules may import anything, nothing imports them)
LAYERS = {
    "contract": ["errors", "schema", "axes", "skymath", "files", "cache"],
    "grids": ["sky", "gti", "masks", "validation"],
    "core": ["stats", "psf", "edisp", "irf", "models", "forward", "reduce", "stack", "resample",
             "spatial", "region", "gammapy_float32"],
    "kinds": ["kinds"],
    "fit": ["fitting", "estimators", "plot"],
    "beside": ["io", "accessor", "cli", "streaming", "constructors", "examples", "testing",
               "runs", "summaries", "__init__"],
}
RANK = {top: i for i, tops in enumerate(LAYERS.values()) for top in tops}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.Module):
    """Import nodes, skipping ``if TYPE_CHECKING:`` blocks (not executed)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert _cycles(import_graph()) == []


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return RANK[top]


def test_no_upward_import():
    graph = import_graph()
    beside = RANK["io"]
    bad = [f"{m} -> {d}" for m, deps in graph.items() for d in deps
           if _layer(m) < beside and (_layer(d) > _layer(m) or _layer(d) == beside)]
    assert not bad, "\n".join(sorted(bad))


def test_every_module_has_a_layer():
    for name in import_graph():
        _layer(name)  # KeyError: a new top-level module needs a layer here and in the docs


@pytest.mark.parametrize("name", xdl4.__all__)
def test_public_names_resolve(name):
    assert getattr(xdl4, name) is not None


def test_missing_name_raises():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        xdl4.nonexistent  # noqa: B018


def test_all_lists_every_lazy_name():
    from xdl4 import _LAZY, _SUBMODULES

    assert set(xdl4.__all__) == {*_LAZY, *_SUBMODULES, "open_dataset"}
    # reachable as attributes without an import of their own: in a fresh interpreter, as
    # the test modules here import most of them already
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "import xdl4; assert all(getattr(xdl4, n).__name__"
                    " == 'xdl4.' + n for n in xdl4._SUBMODULES)"], check=True)


def test_py_typed_ships():
    assert (Path(xdl4.__file__).parent / "py.typed").exists()  # in the installed package


def test_data_model_variable_table_is_the_registry():
    """docs/data-model.md holds the table that ``xdl4.schema.variables_table()`` makes."""
    assert variables_table() in (DOCS / "data-model.md").read_text()


#: the one plain ValueError left, caught and typed by its caller (with the file it
#: concerns)
UNTYPED_RAISES = {"io/fitsutil.py": 1}


def test_errors_raised_on_purpose_are_typed():
    """Bad input gets an xdl4.DL4Error subclass: no module raises a bare ValueError or
    RuntimeError (TypeError for wrong argument types and KeyError for look-ups by name
    stay Python's own)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            exc = node.exc.func if isinstance(node, ast.Raise) and \
                isinstance(node.exc, ast.Call) else getattr(node, "exc", None)
            if isinstance(node, ast.Raise) and \
                    getattr(exc, "id", None) in ("ValueError", "RuntimeError"):
                key = path.relative_to(PACKAGE).as_posix()
                found[key] = found.get(key, 0) + 1
    assert found == UNTYPED_RAISES


@pytest.mark.parametrize("call, error, match", [
    (lambda ds: xdl4.Region.parse("circle(1,2,3)"), "GridError", "must start with a frame"),
    (lambda ds: ds.dl4.downsample(7), "GridError", "not divisible"),
    (lambda ds: ds.dl4.excess_map("0.1 deg", selection_optional=["nope"]), "ArgumentError",
     "unknown selection_optional"),
    (lambda ds: xdl4.flux_points(ds, xdl4.Models([]), "nope", [1, 10]), "ModelError",
     "no sky model named 'nope'"),
    (lambda ds: ds.dl4.resample_energy([0.3, 0.5]), "ArgumentError", "not a subset"),
    (lambda ds: xdl4.stats.alpha(1.0, 0.0, no_off="nope"), "ArgumentError", "no_off"),
    # the parsers of what users type: angles, times, regions, energies
    (lambda ds: ds.dl4.excess_map("1 TeV"), "ArgumentError", "not an angle: '1 TeV'"),
    (lambda ds: ds.dl4.plot.image(smooth="abc"), "ArgumentError", "not an angle"),
    (lambda ds: ds.dl4.select_time("nonsense"), "ArgumentError", "not a time: 'nonsense'"),
    (lambda ds: xdl4.Region.parse("icrs;circle(1,2,x)"), "GridError", "must be numbers"),
    (lambda ds: xdl4.create("spectrum", [1, "10 TeV"], counts=[1.0], exposure=1e10),
     "ArgumentError", "a unit or none"),
])
def test_bad_arguments_get_typed_errors(call, error, match):
    ds = xdl4.examples.map_dataset()
    with pytest.raises(getattr(xdl4, error), match=match):
        call(ds)
