"""The import structure of ``partwise``: no import cycle, and data flowing one way through the layers of the README
(``vocab -> data -> eval/models -> train/infer``, ``view``/``api``/``cli`` on top).

Every module is found with :func:`pkgutil.walk_packages` and read with :mod:`ast` (nothing is imported but the
packages themselves). Each import statement becomes an edge, of one of three kinds:

- ``module``: runs while the importing module itself is imported (module body, class bodies, module-level ``try`` /
  ``if``). A cycle through these edges fails: it is the kind that breaks (a partially initialised module) or works
  only by the order modules happen to be imported in.
- ``lazy``: inside a function (run on first use, after both modules finished loading). A cycle closed only by lazy
  edges cannot break an import, so it does not fail the cycle test; it is listed in the failure message of the
  cycle test and by ``python tests/test_imports.py``. Lazy edges obey the layer rule like the others: deferring an
  import changes when a dependency is paid for, not which way it points.
- ``dynamic``: in a module that calls ``import_module``, a string constant naming a partwise module (the tables it
  reads: the CLI's command groups, the format and model-family tables); treated as lazy.

``from partwise.x import y`` is an edge to the submodule ``partwise.x.y`` when there is one, else to ``partwise.x``;
relative imports are resolved against the importing module's package. The implicit import of parent packages is not
an edge: a package ``__init__`` that re-exports its submodules, imported by a submodule, is the usual facade and
cannot break an import. Imports under ``if TYPE_CHECKING:`` never run and are skipped.

Layers, lowest first; a module may import its own layer's package and any lower layer, never a higher layer or a
sibling package of its own layer (eval and models are independent consumers of data, as are train and infer). The
command-line modules (``partwise.cli``, ``partwise.<package>.cli`` and ``*_cli``) sit on top with the API: each
package's subcommand lives next to it, but nothing below may import one.
"""
from __future__ import annotations

import ast
import functools
import pkgutil
from dataclasses import dataclass
from pathlib import Path

import partwise

ROOT = Path(partwise.__file__).parent

#: the layers, lowest first: (name, top-level components of partwise). ``partwise`` itself is the package facade
#: (it imports the API on first attribute access), so it sits on top.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors", ("errors",)),
    ("foundation", ("io", "progress", "clihelp", "memory", "distributed")),
    ("vocab/ops", ("vocab", "ops")),
    ("data", ("data",)),
    ("eval/models/synth", ("eval", "models", "synth")),
    ("train/infer", ("train", "infer")),
    ("view/api/cli", ("view", "api", "cli", "__main__", "<cli>", "<root>")),
)
_LAYER_OF = {component: i for i, (_, components) in enumerate(LAYERS) for component in components}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported partwise module
    line: int
    kind: str  # module | lazy | dynamic

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({module_path(self.source)}:{self.line}, {self.kind})"


def discover() -> dict[str, Path]:
    """Every module of partwise: dotted name -> source file."""
    modules = {"partwise": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], "partwise."):
        parts = info.name.split(".")[1:]
        modules[info.name] = ROOT.joinpath(*parts, "__init__.py") if info.ispkg else \
            ROOT.joinpath(*parts[:-1], parts[-1] + ".py")
    return modules


def module_path(name: str) -> str:
    path = all_modules().get(name)
    return str(path.relative_to(ROOT.parent)) if path is not None else name


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, source: str, modules: set[str] | dict, is_package: bool = False) -> list[Edge]:
    """The partwise imports of module ``name`` (source text ``source``) as edges; ``modules``: every known module."""
    package = name if is_package else name.rpartition(".")[0]
    edges: list[Edge] = []
    tree = ast.parse(source)
    dynamic = any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) == "import_module"
                  for n in ast.walk(tree))

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(ast.Module(body=[other], type_ignores=[]), lazy)
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            kind = "lazy" if lazy else "module"
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == "partwise" or alias.name.startswith("partwise."):
                        edges.append(Edge(name, alias.name, child.lineno, kind))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    if child.level > 1:
                        base = base[:-(child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                if module == "partwise" or module.startswith("partwise."):
                    for alias in child.names:
                        sub = f"{module}.{alias.name}"
                        edges.append(Edge(name, sub if sub in modules else module, child.lineno, kind))
            elif dynamic and isinstance(child, ast.Constant) and isinstance(child.value, str) \
                    and child.value in modules and child.value != name and "." in child.value:
                edges.append(Edge(name, child.value, child.lineno, "dynamic"))
            visit(child, inner)

    visit(tree, False)
    return edges


@functools.cache
def all_modules() -> dict[str, Path]:
    return discover()


@functools.cache
def import_graph() -> tuple[Edge, ...]:
    modules = all_modules()
    edges: list[Edge] = []
    for name, path in sorted(modules.items()):
        edges += imports_of(name, path.read_text(encoding="utf-8"), modules, is_package=path.name == "__init__.py")
    return tuple(edges)


def find_cycles(edges) -> list[list[Edge]]:
    """One shortest cycle per strongly connected component with a cycle (Tarjan, iterative), each as its edges,
    starting at the component's smallest module name."""
    graph: dict[str, list[Edge]] = {}
    for e in edges:
        graph.setdefault(e.source, []).append(e)
        graph.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            outs = graph[node]
            if i < len(outs):
                work.append((node, i + 1))
                nxt = outs[i].target
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles = []
    for component in components:
        members = set(component)
        first = min(component)
        if len(component) == 1 and not any(e.target == first for e in graph[first]):
            continue
        # breadth-first from `first` back to itself inside the component: the shortest cycle through it
        previous: dict[str, Edge] = {}
        queue, seen, found = [first], {first}, None
        while queue and found is None:
            node = queue.pop(0)
            for e in graph[node]:
                if e.target == first:
                    found = e
                    break
                if e.target in members and e.target not in seen:
                    seen.add(e.target)
                    previous[e.target] = e
                    queue.append(e.target)
        path = [found]
        while path[0].source != first:
            path.insert(0, previous[path[0].source])
        cycles.append(path)
    return sorted(cycles, key=lambda c: c[0].source)


def format_cycle(cycle: list[Edge]) -> str:
    return " -> ".join([cycle[0].source] + [f"{e.target} [{module_path(e.source)}:{e.line}]" for e in cycle])


def component(module: str) -> str:
    """The layer component of a module: its top-level package, ``<cli>`` for command-line modules, ``<root>``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "<root>"
    if parts[-1] == "cli" or parts[-1].endswith("_cli"):
        return "<cli>" if len(parts) > 2 else "cli"
    return parts[1]


def layer_violations(edges) -> list[str]:
    """Edges pointing up a layer or across to a sibling package of the same layer, as ``file:line: message``."""
    out = []
    for e in sorted(set(edges), key=lambda e: (e.source, e.line, e.target)):
        a, b = component(e.source), component(e.target)
        if a == b:
            continue
        la, lb = _LAYER_OF[a], _LAYER_OF[b]
        if lb > la or (lb == la and la != len(LAYERS) - 1):
            where = "above" if lb > la else "beside"
            out.append(f"{module_path(e.source)}:{e.line}: {e.source} imports {e.target} ({e.kind}); "
                       f"{b} ({LAYERS[lb][0]}) is {where} {a} ({LAYERS[la][0]})")
    return out


# ---------------------------------------------------------------------------------------------------------------
# the checker itself: each of these would fail on a broken scanner


def test_walk_finds_every_module():
    modules = all_modules()
    # every .py file whose folders up to partwise/ are all packages is a module the walk must report
    def in_packages(path: Path) -> bool:
        parts = path.relative_to(ROOT).parts
        return all((ROOT.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(len(parts)))

    packaged = {p for p in ROOT.rglob("*.py") if in_packages(p)}
    assert packaged <= set(modules.values()), sorted(map(str, packaged - set(modules.values())))[:5]
    assert {"partwise.train.tasks", "partwise.train.base", "partwise.data.formats"} <= set(modules)


def test_edges_resolve_relative_submodule_and_lazy_imports():
    modules = {"partwise", "partwise.a", "partwise.a.b", "partwise.a.c", "partwise.d"}
    source = (
        "import os\n"
        "from . import c\n"                      # relative -> submodule partwise.a.c
        "from .c import thing\n"                 # relative module -> partwise.a.c
        "from .. import d\n"                     # two levels up -> partwise.d
        "from partwise.a import helper\n"        # an attribute of the package -> partwise.a
        "import partwise.d\n"
        "class K:\n"
        "    from partwise.a import c\n"         # class body: runs at import
        "if TYPE_CHECKING:\n"
        "    from partwise import d\n"           # never runs
        "def f():\n"
        "    from partwise.a import c\n"         # lazy
        "TABLE = {'x': 'partwise.d', 'y': 'not.a.module'}\n"
        "importlib.import_module(TABLE['x'])\n"
    )
    got = {(e.target, e.line, e.kind) for e in imports_of("partwise.a.b", source, modules)}
    assert got == {("partwise.a.c", 2, "module"), ("partwise.a.c", 3, "module"), ("partwise.d", 4, "module"),
                   ("partwise.a", 5, "module"), ("partwise.d", 6, "module"), ("partwise.a.c", 8, "module"),
                   ("partwise.a.c", 12, "lazy"), ("partwise.d", 13, "dynamic")}
    # in a package's __init__, "." is the package itself
    got = {e.target for e in imports_of("partwise.a", "from .b import x\n", modules, is_package=True)}
    assert got == {"partwise.a.b"}
    # a module name in a string is an edge only where the module imports by name (resources.files is no import)
    assert imports_of("partwise.a.b", "resources.files('partwise.d')\n", modules) == []


def test_cycle_finder_names_the_cycle():
    edges = [Edge("m.a", "m.b", 1, "module"), Edge("m.b", "m.c", 2, "module"), Edge("m.c", "m.a", 3, "module"),
             Edge("m.c", "m.d", 4, "module"), Edge("m.e", "m.e", 5, "module")]
    cycles = find_cycles(edges)
    assert [[e.source for e in c] for c in cycles] == [["m.a", "m.b", "m.c"], ["m.e"]]
    assert find_cycles(edges[:2] + edges[3:4]) == []


def test_layer_rule_flags_upward_and_sibling_imports():
    edges = [Edge("partwise.data.x", "partwise.train.y", 1, "lazy"),  # up
             Edge("partwise.eval.x", "partwise.models.y", 2, "module"),  # sibling
             Edge("partwise.train.x", "partwise.data.y", 3, "module"),  # down: fine
             Edge("partwise.infer.cli", "partwise.api", 4, "lazy"),  # the cli layer: fine
             Edge("partwise.data.x", "partwise.data.cli", 5, "module")]  # up into the cli layer
    assert sorted(v.split(": ")[0].rsplit(":", 1)[1] for v in layer_violations(edges)) == ["1", "2", "5"]


# ---------------------------------------------------------------------------------------------------------------
# the package


def test_no_import_cycle():
    edges = import_graph()
    cycles = find_cycles([e for e in edges if e.kind == "module"])
    lazy = find_cycles(edges)
    assert not cycles, ("import cycles through module-level imports:\n  " + "\n  ".join(map(format_cycle, cycles))
                        + "\n(cycles closed only by function-level imports, not failing:\n  "
                        + "\n  ".join(map(format_cycle, lazy)) + ")")


def test_layers_point_one_way():
    violations = layer_violations(import_graph())
    assert not violations, "imports against the layer order:\n  " + "\n  ".join(violations)


def test_train_tasks_import_only_the_base():
    """The task modules subclass :mod:`partwise.train.base`; only :mod:`partwise.train.tasks` imports them (its
    explicit table), so nothing in ``partwise.train`` imports ``tasks`` but the command line."""
    import importlib
    import inspect

    from partwise.train.base import Task
    from partwise.train.tasks import TASKS

    assert all(name == runner.name for name, runner in TASKS.items())
    # every runner the train package defines is in the table: none is left to be found by importing its module
    for module in (m for m in all_modules() if m.startswith("partwise.train.")):
        for obj in vars(importlib.import_module(module)).values():
            if inspect.isclass(obj) and issubclass(obj, Task) and obj.__module__ == module and obj.name:
                assert TASKS.get(obj.name) is obj, f"{module}.{obj.__name__} ({obj.name!r}) is not in TASKS"
    task_modules = {runner.__module__ for runner in TASKS.values()}
    assert "partwise.train.base" not in task_modules
    for e in import_graph():
        if e.target == "partwise.train.tasks" and e.source.startswith("partwise.train."):
            assert e.source == "partwise.train.cli", f"{e}: within partwise.train only the command line uses the table"
        if e.source in task_modules | {"partwise.train.base"} and e.target.startswith("partwise.train."):
            assert e.target not in task_modules | {"partwise.train.tasks"}, f"{e}: a task module imports another"


def report() -> str:
    edges = import_graph()
    kinds = {k: sum(e.kind == k for e in edges) for k in ("module", "lazy", "dynamic")}
    lines = [f"{len(all_modules())} modules; imports: " + ", ".join(f"{n} {k}" for k, n in kinds.items())]
    for title, selected in (("module-level cycles", [e for e in edges if e.kind == "module"]),
                            ("cycles with lazy/dynamic imports", edges)):
        cycles = find_cycles(selected)
        lines.append(f"{title}: {len(cycles)}")
        lines += ["  " + format_cycle(c) for c in cycles]
    violations = layer_violations(edges)
    lines.append(f"layer violations: {len(violations)}")
    lines += ["  " + v for v in violations]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
