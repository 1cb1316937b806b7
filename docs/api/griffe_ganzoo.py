"""Griffe extensions that let the API reference read ganzoo's code as its authors write it.

* :class:`SphinxRoles`: the docstrings are Sphinx-style (``:param x:``, ``:class:`ganzoo.Task```); mkdocstrings
  parses the fields but leaves inline roles as text. Each role becomes an *optional* mkdocs-autorefs
  cross-reference: a link where the target is rendered somewhere on the site, plain code where it is not, so a role
  naming something the reference does not show never fails ``mkdocs build --strict``.
* :class:`HelpFields`: config dataclasses declare each field as ``name: type = help("text", default)``
  (``ganzoo.config.help``). Griffe sees the call, so the reference would show ``help(...)`` as every default and no
  description; this gives each such field its help text as docstring and its real default.
* :class:`SphinxRoles` also turns ``.. code-block:: LANG`` directives into fenced code blocks.
* :class:`AttributeComments`: an attribute documented Sphinx's way, by ``#:`` comment lines right above it, gets
  them as its docstring.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from collections.abc import Iterator
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:class|meth|func|attr|mod|exc|data|obj|const):`(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?`"
)


def _objects(obj: griffe.Object, seen: set[str] | None = None) -> Iterator[griffe.Object]:
    """``obj`` and every object defined under it (aliases are skipped: their targets are visited where defined)."""
    seen = set() if seen is None else seen
    if obj.path in seen:
        return
    seen.add(obj.path)
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member, seen)


def _canonical(loader: griffe.GriffeLoader, obj: griffe.Object, target: str) -> str | None:
    """The canonical path of ``target`` as written in the docstring of ``obj``, or None when it resolves nowhere.

    A name that cannot be resolved (a typo, a cyclic or dangling alias) is not this extension's error to report: it
    becomes plain code, and the strict build goes on.
    """
    head = target.split(".")[0]
    candidates: list[str] = []
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            candidates.append(scope.resolve(head) + target[len(head) :])
        except (griffe.GriffeError, AttributeError, KeyError):
            pass
        scope = scope.parent
    candidates.append(target)
    for path in candidates:
        try:
            found = loader.modules_collection.get_member(path)
            return found.final_target.canonical_path if found.is_alias else found.canonical_path
        except (griffe.GriffeError, AttributeError, KeyError, ValueError):
            continue
    return None


CODE_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>[\w+-]*)[ \t]*$")


def _fence_code_blocks(text: str) -> str:
    """Turn each ``.. code-block:: LANG`` directive and the indented block under it into a fenced code block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = CODE_BLOCK.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match["indent"])
        i += 1
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        cut = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        pad = match["indent"]
        out += [f"{pad}```{match['lang']}", *(pad + b[cut:] if b.strip() else "" for b in body), f"{pad}```", ""]
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Rewrite ``:class:`X``` (and ``:meth:``, ``:func:``, ``:attr:``, ...) in every docstring of a package, and
    its ``.. code-block::`` directives."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                value = _fence_code_blocks(obj.docstring.value)
                obj.docstring.value = ROLE.sub(lambda m, o=obj: self._link(m, o, loader), value)

    @staticmethod
    def _link(match: re.Match[str], obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
        target = match["target"]
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        path = _canonical(loader, obj, target)
        if path is None:
            return f"`{shown}`"
        return f'<autoref identifier="{path}" optional><code>{shown}</code></autoref>'


def _help_call(value: Any) -> tuple[str, str | None] | None:
    """``(text, default source)`` when ``value`` is the expression ``help("text"[, default])``, else None."""
    if value is None or not str(value).startswith("help("):
        return None
    try:
        call = ast.parse(str(value), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "help" and call.args):
        return None
    text = call.args[0]
    if isinstance(text, ast.JoinedStr):  # help(f"generator: {NAMES}") shows the interpolated name as written
        text = ast.Constant(
            "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}" for v in text.values)
        )
    if not (isinstance(text, ast.Constant) and isinstance(text.value, str)):
        return None
    default = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "default"), None)
    return text.value, (ast.unparse(default) if default is not None else None)


class HelpFields(griffe.Extension):
    """Give every ``field = help("text", default)`` of a class its help text as docstring and its real default."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.is_class:
                self._fix_class(obj)

    @staticmethod
    def _runtime_help(cls: griffe.Object) -> dict[str, str]:
        """The help texts as the running code has them (an f-string help names its interpolated values), or {}
        when the class cannot be imported."""
        try:
            obj = getattr(importlib.import_module(cls.module.path), cls.name)
            return {f.name: f.metadata["help"] for f in dataclasses.fields(obj) if "help" in f.metadata}
        except Exception:  # noqa: BLE001 - a class that does not import keeps the text as written
            return {}

    @classmethod
    def _fix_class(cls_, cls: griffe.Object) -> None:
        defaults: dict[str, str | None] = {}
        runtime: dict[str, str] | None = None
        for name, member in cls.members.items():
            if member.is_alias or not member.is_attribute:
                continue
            found = _help_call(member.value)
            if found is None:
                continue
            text, default = found
            if "{" in text:  # from an f-string: take the interpolated text
                runtime = cls_._runtime_help(cls) if runtime is None else runtime
                text = runtime.get(name, text)
            if member.docstring is None:
                member.docstring = griffe.Docstring(text, parent=member)
            member.value = default
            defaults[name] = default
        init = cls.members.get("__init__")
        if defaults and init is not None and not init.is_alias and init.is_function:
            for param in init.parameters:
                if param.name in defaults:
                    param.default = defaults[param.name]


class AttributeComments(griffe.Extension):
    """Use the ``#:`` comment lines right above an attribute as its docstring (Sphinx's attribute comments)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if not obj.is_attribute or obj.docstring is not None or not obj.lineno:
                continue
            try:
                lines = obj.module.lines
            except (griffe.GriffeError, AttributeError, ValueError):
                continue
            comment: list[str] = []
            row = obj.lineno - 2  # 0-based index of the line above the attribute
            while row >= 0 and lines[row].strip().startswith("#:"):
                comment.insert(0, lines[row].strip()[2:].strip())
                row -= 1
            if comment:
                obj.docstring = griffe.Docstring("\n".join(comment), parent=obj)
