"""The layout holds: imports point down the layers and form no cycle (imports inside functions
included), nothing below `service/` loads the web, queue or database stack, and the README's
architecture map names every package and nothing that is not there.

Imports are read with `ast` from the source files, so a lazy import counts as much as one at the
top of a module.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = {
    "unified": set(),
    "llm": {"unified"},
    "generators": {"llm", "unified"},
    "verifiers": {"llm", "unified"},
    "trainer": {"verifiers", "llm", "unified"},
    "service": {"trainer", "verifiers", "generators", "llm", "unified", "templates"},
    "templates": set(),
}
"""Which packages each package may import: the layers of the README's architecture section.
generators and verifiers stand side by side and never import each other."""

SERVICE_ONLY = ("fastapi", "starlette", "celery", "kombu", "sqlalchemy", "alembic", "uvicorn")
"""Third-party stacks that only `service/` may import."""

MAP_DEPTH = 2
"""The README's map names every package down to this depth (service/pipeline/ is depth 2)."""


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every module of the project's packages."""
    modules: dict[str, Path] = {}
    for package in ALLOWED:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported module or `module.name`, line) for every import in the file, at any depth."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return found


def project_edges(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Module -> {project module it imports: line of the first such import}."""
    edges: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        targets: dict[str, int] = {}
        for name, line in imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.setdefault(name, line)
        edges[module] = targets
    return edges


def wrong_way(
    edges: dict[str, dict[str, int]], modules: dict[str, Path], root: Path = ROOT
) -> list[str]:
    """Each import of a package its layer may not import, as `file:line: a -> b`."""
    found = []
    for module, targets in edges.items():
        own = module.split(".")[0]
        for target, line in targets.items():
            other = target.split(".")[0]
            if other != own and other not in ALLOWED[own]:
                where = modules[module].relative_to(root).as_posix()
                found.append(f"{where}:{line}: {own} imports {other} ({module} -> {target})")
    return found


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def architecture_map(readme: str) -> list[str]:
    """The paths the README's architecture map names: the first code block under
    `## Architecture`, one entry per line (`path  description`), nested entries indented by
    two spaces under their folder; description lines are indented further."""
    section = readme.split("\n## Architecture", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    entry = re.compile(r"^(?P<indent>(?:  ){0,3})(?P<path>[\w.-]+/?)(?:\s{2,}|$)")
    paths: list[str] = []
    parents: list[str] = []
    for line in block.splitlines()[1:]:
        match = entry.match(line)
        if match is None:
            continue
        depth = len(match["indent"]) // 2
        parents = parents[:depth]
        if len(parents) < depth:
            continue  # a description line that happens to start like a path
        path = "".join(parents) + match["path"]
        paths.append(path)
        if path.endswith("/"):
            parents.append(match["path"])
    return paths


def code_packages(root: Path = ROOT) -> list[str]:
    """Every package folder of the project down to MAP_DEPTH, as `a/b/`."""
    packages = []
    for top in ALLOWED:
        for init in (root / top).rglob("__init__.py"):
            folder = init.parent.relative_to(root)
            if len(folder.parts) <= MAP_DEPTH:
                packages.append(f"{folder.as_posix()}/")
    return sorted(packages)


def test_every_package_the_distribution_ships_has_a_layer() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    included = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(pattern.rstrip("*") for pattern in included) == sorted(ALLOWED)


def test_imports_point_down_the_layers() -> None:
    modules = source_modules()
    assert not wrong_way(project_edges(modules), modules)


def test_no_import_cycle_lazy_imports_included() -> None:
    assert cycles(project_edges(source_modules())) == []


def test_nothing_below_service_loads_the_web_queue_or_database_stack() -> None:
    found = []
    for module, path in source_modules().items():
        if module.split(".")[0] == "service":
            continue
        for name, line in imported_names(module, path):
            if name.split(".")[0] in SERVICE_ONLY:
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert found == []


def test_the_readme_map_names_every_package_and_only_what_exists() -> None:
    named = architecture_map((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [path for path in named if not (ROOT / path).exists()] == []
    assert [package for package in code_packages() if package not in named] == []


# The checks must be able to fail: each is shown a tree that breaks it.


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for package in ALLOWED:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


def test_a_lazy_import_up_the_layers_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "verifiers/judge.py": "def f():\n    from generators.base import X\n",
            "generators/base.py": "X = 1\n",
        },
    )
    modules = source_modules(root)
    assert wrong_way(project_edges(modules), modules, root) == [
        "verifiers/judge.py:2: verifiers imports generators (verifiers.judge -> generators.base)"
    ]


def test_a_cycle_through_a_relative_lazy_import_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "service/a.py": "from service import b\n",
            "service/b.py": "def f():\n    from .a import g\n",
        },
    )
    assert cycles(project_edges(source_modules(root))) == [["service.a", "service.b"]]


def test_a_map_entry_that_does_not_exist_and_a_missing_package_are_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"service/pipeline/__init__.py": ""})
    readme = (
        "# X\n\n## Architecture\n\n```\nservice/      the service\n"
        "  gone/       not there any more\n              a description line\n```\n\n## Next\n"
    )
    named = architecture_map(readme)
    assert named == ["service/", "service/gone/"]
    assert [path for path in named if not (root / path).exists()] == ["service/gone/"]
    assert "service/pipeline/" in [p for p in code_packages(root) if p not in named]
