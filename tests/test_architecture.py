"""The dependency direction of §2, enforced by walking every module's imports with `ast`.

    domain        imports nothing of ours (and of third parties only eventsourcing.domain)
    commands      domain only            projections   domain only
    demo          domain and commands (it drives the write side like any client)
    api/consumers never infra, except api/app.py, api/cli.py and process mains (*main*.py)
    infra         never api
    demo is imported only by api/cli.py (`crm demo`), bench and tests
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("domain", "commands", "projections", "consumers", "api", "infra", "demo")
OURS = frozenset({*LAYERS, "bench", "tests"})
# The composition root and process entry points are where infra is wired in.
INFRA_ALLOWED = frozenset({"api/app.py", "api/cli.py"})
# The product modules that may load the demo history (`crm demo`).
DEMO_ALLOWED = frozenset({"api/cli.py"})


@dataclass(frozen=True)
class Import:
    module: str  # e.g. "domain/values.py"
    line: int
    target: str  # the imported module, absolute, e.g. "infra.settings"

    @property
    def top(self) -> str:
        return self.target.split(".")[0]


def imports_of(relative: str, source: str) -> list[Import]:
    """Every import in a module (inside functions and TYPE_CHECKING blocks too)."""
    package = relative.removesuffix(".py").split("/")[:-1]
    found = []
    for node in ast.walk(ast.parse(source, filename=relative)):
        if isinstance(node, ast.Import):
            found.extend(Import(relative, node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append(Import(relative, node.lineno, target))
    return found


def violation(imp: Import) -> str | None:
    """Why this import breaks the dependency direction, or None when it is allowed."""
    layer = imp.module.split("/")[0]
    top = imp.top
    if top == "tests" and layer != "tests":
        return "product code never imports tests"
    if layer == "domain":
        if top in OURS and top != "domain":
            return "domain imports nothing of ours"
        if top not in OURS and top not in sys.stdlib_module_names and not (
                imp.target == "eventsourcing.domain" or top == "__future__"):
            return "domain is pure: stdlib and eventsourcing.domain only"
    if layer in ("commands", "projections") and top in OURS and top not in (layer, "domain"):
        return f"{layer} imports only domain (and itself)"
    if layer == "demo" and top in OURS and top not in ("demo", "domain", "commands"):
        return "demo imports only domain and commands (and itself)"
    if top == "demo" and layer != "demo" and imp.module not in DEMO_ALLOWED:
        return "only api/cli.py, bench and tests may import demo"
    if layer in ("api", "consumers") and top == "infra":
        name = imp.module.rsplit("/", 1)[-1]
        if imp.module not in INFRA_ALLOWED and "main" not in name:
            return "only api/app.py, api/cli.py and process mains may import infra"
    if layer == "infra" and top == "api":
        return "infra never imports api"
    return None


def all_imports() -> list[Import]:
    found = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            found.extend(imports_of(relative, path.read_text(encoding="utf-8")))
    return found


def test_every_layer_respects_the_dependency_direction() -> None:
    broken = [f"{i.module}:{i.line} imports {i.target}: {why}"
              for i in all_imports() if (why := violation(i)) is not None]
    assert not broken, "dependency direction broken:\n" + "\n".join(broken)


def test_the_walk_sees_every_layer_and_their_imports() -> None:
    seen = {(i.module, i.target) for i in all_imports()}
    assert {m.split("/")[0] for m, _t in seen} == set(LAYERS)
    assert ("commands/application.py", "domain.values") in seen
    assert ("api/app.py", "infra.bootstrap") in seen
    assert ("demo/load.py", "commands.application") in seen


@pytest.mark.parametrize(("module", "source", "why"), [
    ("domain/x.py", "import infra.settings", "domain imports nothing of ours"),
    ("domain/x.py", "from commands import base", "domain imports nothing of ours"),
    ("domain/x.py", "import sqlalchemy", "domain is pure: stdlib and eventsourcing.domain only"),
    ("domain/x.py", "def f():\n    from projections.base import metadata",
     "domain imports nothing of ours"),
    ("commands/x.py", "from projections import card", "commands imports only domain (and itself)"),
    ("projections/x.py", "from commands.base import Command",
     "projections imports only domain (and itself)"),
    ("projections/x.py", "from api.deps import require",
     "projections imports only domain (and itself)"),
    ("api/routers/x.py", "from infra.keys import KeyStore",
     "only api/app.py, api/cli.py and process mains may import infra"),
    ("consumers/x.py", "import infra.kafka",
     "only api/app.py, api/cli.py and process mains may import infra"),
    ("infra/x.py", "from api.errors import problem", "infra never imports api"),
    ("demo/x.py", "from infra.bootstrap import build",
     "demo imports only domain and commands (and itself)"),
    ("demo/x.py", "from projections import card",
     "demo imports only domain and commands (and itself)"),
    ("commands/x.py", "from demo import generate", "commands imports only domain (and itself)"),
    ("domain/x.py", "import demo.words", "domain imports nothing of ours"),
    ("consumers/x.py", "from demo.load import Loader",
     "only api/cli.py, bench and tests may import demo"),
    ("infra/x.py", "from demo import generate", "only api/cli.py, bench and tests may import demo"),
    ("api/routers/x.py", "from demo import generate",
     "only api/cli.py, bench and tests may import demo"),
    ("projections/x.py", "import demo", "projections imports only domain (and itself)"),
    ("api/deps.py", "from tests.support import Api", "product code never imports tests"),
    ("api/routers/x.py", "from ..deps import require", None),
    ("api/app.py", "from infra.bootstrap import build", None),
    ("api/cli.py", "from infra.settings import load_settings", None),
    ("consumers/relay_main.py", "from infra.kafka import producer", None),
    ("domain/x.py", "from eventsourcing.domain import Aggregate\nfrom .values import Money",
     None),
    ("commands/x.py", "from domain.values import Meta\nimport pydantic", None),
    ("infra/x.py", "from commands.application import CrmApplication", None),
    ("demo/x.py", "from commands.clients import RegisterClient\nfrom domain.values import Channel"
     "\nfrom .world import Story", None),
    ("api/cli.py", "from demo import generate", None),
])
def test_the_rules_catch_what_they_should(module: str, source: str, why: str | None) -> None:
    verdicts = {violation(i) for i in imports_of(module, source)} - {None}
    assert verdicts == ({why} if why else set())


def test_relative_imports_resolve_within_their_package() -> None:
    found = imports_of("api/routers/x.py", "from ..deps import require\nfrom . import writes")
    assert [i.target for i in found] == ["api.deps", "api.routers"]
