"""The layering of ARCHITECTURE.md, checked on the source (parsed with ast; nothing is imported).

Every import of a modeformer_jax module runs down the layers; packages of one layer do not import each other;
no modules import each other in a circle; commands/ is imported by cli.py only (experiments, bench and tests use
the library).

`python tests/test_architecture.py [ROOT]` prints the package import graph of a checkout (ARCHITECTURE.md's).
"""

from __future__ import annotations

import ast
import collections
import os
import sys

import pytest

pytestmark = pytest.mark.unit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "modeformer_jax"
# Bottom to top; a unit is a top-level module or package of modeformer_jax, or a folder of scripts beside it
# (UNITS joins some).
LAYERS = (
    ("base", ("errors", "atomic", "offsets", "cpu_cores")),
    ("runtime", ("runtime",)),
    ("models", ("models", "loss")),
    ("media", ("media",)),
    ("config", ("config",)),
    ("data", ("data",)),
    ("weights", ("weights",)),
    ("inference", ("inference",)),
    ("uses of a model", ("evaluation", "sync", "export")),
    ("train", ("train",)),
    ("commands", ("commands",)),
    ("scripts", ("experiments", "bench")),
)
LAYER = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}
# Modules that make one unit with others: the config defaults, their loader and the configs; the entry point and
# the subcommands it runs.
UNITS = {"config_defaults": "config", "config_loading": "config", "configs": "config", "cli": "commands"}


def source_files(root: str) -> dict[str, str]:
  """Dotted module name -> file, for the package (configs/ through its link, or beside it in older trees),
  experiments/, bench/ and tests/."""
  out = {}
  for top in (PACKAGE, "configs", "experiments", "bench", "tests"):
    for folder, _, files in os.walk(os.path.join(root, top), followlinks=True):
      for name in files:
        if name.endswith(".py"):
          path = os.path.join(folder, name)
          module = os.path.relpath(path, root)[:-3].replace(os.sep, ".").removesuffix(".__init__")
          out.setdefault(module, path)
  if f"{PACKAGE}.configs" in out:  # the link and its target are one folder
    out = {m: p for m, p in out.items() if m.split(".")[0] != "configs"}
  return out


def imports(path: str, modules: set[str]) -> list[tuple[str, str | None, int]]:
  """(module imported, name imported from it or None, line) of every modeformer_jax import in the file, at any
  depth (function-level and TYPE_CHECKING imports count: they are dependencies too)."""
  out = []
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
    if isinstance(node, ast.Import):
      out += [(alias.name, None, node.lineno) for alias in node.names if alias.name.split(".")[0] == PACKAGE]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
      for alias in node.names:
        full = f"{node.module}.{alias.name}"
        out.append((full, None, node.lineno) if full in modules else (node.module, alias.name, node.lineno))
  return out


def resolve(name: str, modules: set[str]) -> str:
  """The deepest module of a dotted name (import a.b.c binds a, runs a.b.c)."""
  while name not in modules and "." in name:
    name = name.rpartition(".")[0]
  return name


def unit(module: str) -> str:
  parts = module.split(".")
  if parts == [PACKAGE]:
    return PACKAGE
  name = parts[1] if parts[0] == PACKAGE else parts[0]
  return UNITS.get(name, name)


def module_graph(root: str = REPO) -> tuple[dict[str, set[str]], list[tuple[str, str, str | None, int]]]:
  """(module -> modules it imports, every import as (importer, imported module, name or None, line))."""
  files = source_files(root)
  names = set(files)
  graph, edges = collections.defaultdict(set), []
  for module, path in files.items():
    for target, name, line in imports(path, names):
      target = resolve(target, names)
      edges.append((module, target, name, line))
      if target != module:
        graph[module].add(target)
  return graph, edges


def package_graph(root: str = REPO) -> dict[str, set[str]]:
  """unit -> the other units it imports (tests left out)."""
  graph, _ = module_graph(root)
  out = collections.defaultdict(set)
  for a, targets in graph.items():
    for b in targets:
      if unit(a) != unit(b) and unit(a) != "tests":
        out[unit(a)].add(unit(b))
  return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


def test_every_unit_has_a_layer():
  units = {unit(m) for m in source_files(REPO)} - {PACKAGE, "tests"}
  assert units <= set(LAYER), f"add to LAYERS (and ARCHITECTURE.md): {sorted(units - set(LAYER))}"


def test_imports_run_down_the_layers():
  _, edges = module_graph()
  wrong = [f"{a}:{line} imports {b} ({LAYERS[LAYER[unit(a)]][0]} -> {LAYERS[LAYER[unit(b)]][0]})"
           for a, b, _, line in edges
           if unit(a) in LAYER and unit(b) in LAYER and unit(a) != unit(b) and LAYER[unit(b)] >= LAYER[unit(a)]]
  assert not wrong, "imports up or across a layer:\n" + "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle():
  graph, _ = module_graph()
  assert not cycles(graph), cycles(graph)


def test_only_cli_imports_the_commands():
  _, edges = module_graph()
  wrong = [f"{a}:{line} imports {b}" for a, b, _, line in edges
           if b.startswith(f"{PACKAGE}.commands") and unit(a) != "commands"]
  assert not wrong, "commands/ parse and print; use the library instead:\n" + "\n".join(wrong)


def test_architecture_md_shows_the_current_graph():
  with open(os.path.join(REPO, "ARCHITECTURE.md")) as f:
    after = f.read().split("\nAfter:\n", 1)[1]
  assert format_graph(package_graph()) in after, "update ARCHITECTURE.md: python tests/test_architecture.py"


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path):
  for path, text in {"modeformer_jax/__init__.py": "", "modeformer_jax/media/__init__.py": "",
                     "modeformer_jax/media/a.py": "from modeformer_jax.train import b\n",
                     "modeformer_jax/train/__init__.py": "",
                     "modeformer_jax/train/b.py": "def f():\n  from modeformer_jax.media import a\n"}.items():
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(text)
  graph, edges = module_graph(str(tmp_path))
  assert cycles(graph) == [["modeformer_jax.media.a", "modeformer_jax.train.b"]]
  assert ("modeformer_jax.media.a", "modeformer_jax.train.b", None, 1) in edges
  assert package_graph(str(tmp_path)) == {"media": {"train"}, "train": {"media"}}


def format_graph(graph: dict[str, set[str]]) -> str:
  """The package graph as a table, bottom layer first."""
  order = sorted(set(graph) | {u for us in graph.values() for u in us}, key=lambda u: (LAYER.get(u, -1), u))
  lines = ["| layer | package | imports |", "|---|---|---|"]
  for u in order:
    layer = LAYERS[LAYER[u]][0] if u in LAYER else "?"
    imported = sorted(graph.get(u, ()), key=lambda v: (LAYER.get(v, -1), v))
    lines.append(f"| {layer} | {u} | {', '.join(imported) or '-'} |")
  return "\n".join(lines)


if __name__ == "__main__":
  print(format_graph(package_graph(sys.argv[1] if len(sys.argv) > 1 else REPO)))
