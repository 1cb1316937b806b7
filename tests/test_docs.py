"""Meta-tests in the style of datasette's: every hook is documented and tested; the docs name real things; the
documentation site (mkdocs.yml) builds with ``--strict``, so a broken link or cross-reference fails here."""

import dataclasses
import html
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ganzoo
from ganzoo import hookspecs
from ganzoo.data.base import DataRequest

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("ganzoo_")]
API_PAGES = sorted(p.stem for p in (ROOT / "docs" / "api").glob("*.md") if p.stem != "index")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built once for this module, the way ``make docs`` builds it."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def page_text(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text()


def test_there_are_hooks():
    assert len(HOOKS) >= 6


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    doc = (ROOT / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### {hook}$", doc, re.M), f"docs/plugins.md has no section for {hook}"
    assert f"[ganzoo.hookspecs.{hook}]" in doc, f"docs/plugins.md does not link {hook} to its API reference"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_names_every_argument(hook):
    func = getattr(hookspecs, hook)
    doc = inspect.getdoc(func) or ""
    assert doc.strip(), f"{hook} has no docstring"
    documented = re.findall(r"^:param (\w+):", doc, re.M)
    arguments = list(inspect.signature(func).parameters)
    assert documented == arguments, f"{hook}: :param: entries {documented} do not match its arguments {arguments}"


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
    assert re.search(r"^docs:.*\n\t.*mkdocs build --strict", makefile, re.M)


def test_relative_links_in_the_docs_resolve():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_every_doc_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    skip = {"plugin-template"}
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    missing = [
        p for p in pages if p.split("/")[0] not in skip and not re.search(rf"^\s*-\s.*\b{re.escape(p)}$", nav, re.M)
    ]
    assert not missing, f"pages missing from the nav of mkdocs.yml: {missing}"


def test_plugin_guide_links_every_api_page_and_not_the_source():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    unlinked = [p for p in API_PAGES if f"](api/{p}.md" not in guide]
    assert not unlinked, f"docs/plugins.md links no API page {unlinked}"
    sources = re.findall(r"ganzoo/[\w/]+\.py", guide)
    assert not sources, f"docs/plugins.md sends authors to source files instead of the API reference: {sources}"


def test_plugin_guide_matches_the_template():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    template = ROOT / "docs" / "plugin-template"
    table = guide[guide.index("The template's files") : guide.index("## How hooks work here")]
    files = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert files, "docs/plugins.md has no table of the template's files"
    missing = [f for f in files if not (template / f).is_file()]
    assert not missing, f"docs/plugins.md describes template files that do not exist: {missing}"
    for entry_point in re.findall(r"`\[project\.entry-points\.ganzoo\] ([^`]+)`", guide):
        assert entry_point in (template / "pyproject.toml").read_text(), f"the template declares no {entry_point}"
    code = "\n".join(p.read_text() for p in template.rglob("*.py") if "build" not in p.parts)
    for hook in re.findall(r"@hookimpl\s+def (\w+)", code):
        assert hook in HOOKS and re.search(rf"^### {hook}$", guide, re.M), f"the template's {hook} is not in the guide"


def test_site_builds_strict_with_the_api_reference(site):
    hooks = page_text(site, "api/hooks")
    for hook in HOOKS:
        assert f'id="ganzoo.hookspecs.{hook}"' in hooks, f"the hook reference has no entry for {hook}"
    for page in API_PAGES:
        assert (site / "api" / page / "index.html").is_file(), f"API page {page} was not built"
    # the docstrings' Sphinx roles become links, never literal ":class:" text
    role = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):<code>")
    leftovers = [p.parent.name for p in (site / "api").rglob("index.html") if role.search(p.read_text())]
    assert not leftovers, f"unrendered Sphinx roles on {leftovers}"
    # config fields declared with ganzoo.config.help show their default and their help text, not the call
    trainer = page_text(site, "api/trainer")
    assert "help(" not in trainer
    for f in dataclasses.fields(ganzoo.TrainConfig):
        assert f'id="ganzoo.TrainConfig.{f.name}"' in trainer, f"TrainConfig.{f.name} is not in the reference"
        assert html.escape(f.metadata["help"], quote=False) in trainer, f"the help of TrainConfig.{f.name} is not shown"
    # a help text written as an f-string shows its interpolated values, as `ganzoo info` prints them
    from ganzoo.variant_config import TranslationConfig

    config = page_text(site, "api/config")
    net_g = next(f for f in dataclasses.fields(TranslationConfig) if f.name == "netG").metadata["help"]
    assert "{" not in net_g and html.escape(net_g, quote=False) in config


def test_api_reference_shows_every_member_of_the_variant_contract(site):
    variant = page_text(site, "api/variant")
    expected = ["GANVariant", "Stage", "Phase", "StepState", "Task"]
    expected += [f"GANVariant.{n}" for n in vars(ganzoo.GANVariant) if not n.startswith("_")]
    expected += [f"{cls.__name__}.{f.name}" for cls in (ganzoo.Phase, ganzoo.Stage) for f in dataclasses.fields(cls)]
    expected += [f"Task.{member.name}" for member in ganzoo.Task]
    missing = [n for n in expected if f'id="ganzoo.{n}"' not in variant]
    assert not missing, f"api/variant has no entry for {missing}"
    data = page_text(site, "api/data")
    missing = [
        f.name for f in dataclasses.fields(DataRequest) if f'id="ganzoo.data.base.DataRequest.{f.name}"' not in data
    ]
    assert not missing, f"api/data has no entry for the DataRequest fields {missing}"


def test_plugin_guide_links_resolve_into_the_api_reference(site):
    guide = page_text(site, "plugins")
    assert 'href="../api/variant/#ganzoo.GANVariant"' in guide
    for hook in HOOKS:
        assert f'href="../api/hooks/#ganzoo.hookspecs.{hook}"' in guide, f"the guide's link to {hook} is missing"
