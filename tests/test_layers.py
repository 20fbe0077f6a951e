"""The package's layers, read from its import statements (an AST walk, nothing imported):
imports point one way and never form a cycle.

    adapters (api, cli, mkdocs_plugin, pelican)       may import anything below
    build/   audit/                                    never each other
    images/  pages/  sitefiles/                        never each other
    base (errors, formats, policy, contract, settings, fsutil, walk, version)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ssg_dmi"
RANK = {
    "errors": 0,
    "formats": 0,
    "policy": 0,
    "contract": 0,
    "settings": 0,
    "fsutil": 0,
    "walk": 0,
    "version": 0,
    "images": 1,
    "pages": 1,
    "sitefiles": 1,
    "build": 2,
    "audit": 2,
    "api": 3,
    "cli": 3,
    "mkdocs_plugin": 3,
    "pelican": 3,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported ssg_dmi module, line, at module level) of every import in ``path``."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                as_module = PACKAGE.parent / full.replace(".", "/")
                is_module = as_module.with_suffix(".py").is_file() or as_module.is_dir()
                out.append((full if is_module else target, node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top) for a in node.names]
    return [(t, line, top_level) for t, line, top_level in out if t.startswith("ssg_dmi")]


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ssg_dmi"


SOURCES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {module_name(p): imports(p) for p in SOURCES}


def test_every_module_has_a_layer() -> None:
    assert {layer(m) for m in GRAPH} - {"ssg_dmi"} <= set(RANK)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_point_down(path: Path) -> None:
    here = module_name(path)
    if here == "ssg_dmi":
        return  # the package itself re-exports the API
    bad = []
    for target, line, _ in GRAPH[here]:
        if target == "ssg_dmi":
            bad.append(f"{here}:{line} imports the package root (use ssg_dmi.version)")
            continue
        mine, theirs = layer(here), layer(target)
        if mine == theirs:
            continue
        if RANK[theirs] >= RANK[mine] and RANK[mine] > 0:
            bad.append(f"{here}:{line} -> {target} ({mine} may not import {theirs})")
        elif RANK[mine] == 0 and RANK[theirs] > 0:
            bad.append(f"{here}:{line} -> {target} (a base module imports {theirs})")
    assert bad == []


def test_no_import_cycle_at_module_level() -> None:
    edges = {
        m: {t for t, _, top in deps if top and t in GRAPH and t != m} for m, deps in GRAPH.items()
    }
    # A package's __init__ importing its own modules is how it re-exports, not a cycle.
    for m in edges:
        edges[m] = {t for t in edges[m] if not (m in GRAPH and t.startswith(m + "."))}
    edges.pop("ssg_dmi", None)
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if seen.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for start in sorted(edges):
        if start not in seen:
            visit(start, [start])
    assert cycles == []


def test_function_level_imports_only_for_start_up_time() -> None:
    # The CLI and the plugins import the heavy build/audit code only when a command runs
    # (`ssg-dmi --version`, a disabled plugin), and the package root its API on first use
    # (`python -m ssg_dmi.cli` imports the root first); nothing else imports inside a function.
    lazy = {
        (m, t)
        for m, deps in GRAPH.items()
        for t, _, top in deps
        if not top and layer(m) not in ("cli", "mkdocs_plugin", "pelican", "ssg_dmi")
    }
    # The build's driver loads the image libraries only when a job runs or a watermark is
    # set: a rebuild with nothing to do never imports Pillow.
    deferred = {
        ("ssg_dmi.build.pipeline", "ssg_dmi.build.job"),
        ("ssg_dmi.build.pipeline", "ssg_dmi.images.watermark"),
        # Nor the scale-out code (and multiprocessing through it) without an executor, a
        # shard or a scheduler, nor the page rewriter when every page is as it leaves it.
        ("ssg_dmi.build.pipeline", "ssg_dmi.build.remote"),
        ("ssg_dmi.build.site", "ssg_dmi.build.remote"),
        ("ssg_dmi.build.site", "ssg_dmi.pages.rewrite"),
        ("ssg_dmi.build.site", "ssg_dmi.pages.head"),
    }
    assert lazy - deferred == set()
