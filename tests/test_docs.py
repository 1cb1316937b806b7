"""Meta-tests in the style of datasette's: every hook is documented and tested; the docs name real things."""

import inspect
import re
from pathlib import Path

import pytest

import ganzoo
from ganzoo import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("ganzoo_")]


def test_there_are_hooks():
    assert len(HOOKS) >= 6


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    doc = (ROOT / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### {hook}$", doc, re.M), f"docs/plugins.md has no section for {hook}"
    assert getattr(hookspecs, hook).__doc__.strip(), f"{hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tests = [p for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_docs.py"]
    assert any(hook in p.read_text() for p in tests), f"no test exercises {hook}"


@pytest.mark.parametrize("name", ganzoo.list_variants(tags=False))
def test_every_variant_has_a_page(name):
    page = ROOT / "docs" / "variants" / f"{name}.md"
    assert page.is_file(), f"docs/variants/{name}.md is missing"


def test_readme_commands_exist():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_relative_links_in_the_docs_resolve():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
