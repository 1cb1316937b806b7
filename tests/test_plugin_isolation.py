"""No built-in plugin imports another plugin: what two variants share lives in the core (``ganzoo.nn``,
``ganzoo.data``, ``ganzoo.schedules``, ``ganzoo.utils`` ...), so each plugin can be installed, replaced or removed on
its own, as a third-party plugin would be."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
PACKAGES = sorted(p.name for p in PLUGINS.glob("ganzoo_*") if (p / "__init__.py").is_file())


def foreign_imports(source: str, own: str, packages: list[str], depth: int = 0) -> list[str]:
    """What a module of plugin package ``own`` imports from other plugin packages, at any nesting: ``import x``,
    ``from x import y``, ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name, and any
    relative import that climbs above ``own`` (reported with its dots).

    :param depth: how many sub-packages below ``own`` the module sits (0 for ``plugins/ganzoo_x/variant.py``).
    """
    others = {p for p in packages if p != own}
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > depth + 1:
                found.append("." * node.level + (node.module or ""))
            elif node.level == 0:
                names = [node.module or ""]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [n for n in names if n.split(".")[0] in others]
    return sorted(found)


def _modules() -> list[tuple[str, Path]]:
    return [(pkg, f) for pkg in PACKAGES for f in sorted((PLUGINS / pkg).rglob("*.py"))]


def test_the_builtin_plugins_are_found():
    assert {"ganzoo_pix2pix", "ganzoo_cyclegan", "ganzoo_dcgan", "ganzoo_srgan"} <= set(PACKAGES)


@pytest.mark.parametrize(("package", "path"), _modules(), ids=[str(f.relative_to(PLUGINS)) for _, f in _modules()])
def test_no_plugin_imports_another(package, path):
    depth = len(path.relative_to(PLUGINS / package).parts) - 1
    bad = foreign_imports(path.read_text(encoding="utf-8"), package, PACKAGES, depth)
    assert not bad, f"{path.relative_to(PLUGINS)} imports {', '.join(bad)}; move what plugins share into ganzoo/"


def test_the_check_sees_every_form_of_import():
    packages = ["ganzoo_a", "ganzoo_b"]
    source = """
import ganzoo_b
import ganzoo_b.model as m
from ganzoo_b.variant import Config
import importlib


def later():
    from ganzoo_b import helpers
    importlib.import_module("ganzoo_b.data")
    __import__("ganzoo_b")
    from .. import elsewhere


from ganzoo_a.model import Net
from . import variant
from .sub import thing
import ganzoo
from ganzoo.nn import build_generator
"""
    assert foreign_imports(source, "ganzoo_a", packages) == sorted(
        ["..", "ganzoo_b", "ganzoo_b", "ganzoo_b", "ganzoo_b.data", "ganzoo_b.model", "ganzoo_b.variant"]
    )
    # One level down, ".." is still inside the plugin.
    assert foreign_imports("from .. import variant\n", "ganzoo_a", packages, depth=1) == []
    assert foreign_imports("import ganzoo\nfrom ganzoo.nn import x\n", "ganzoo_a", packages) == []
