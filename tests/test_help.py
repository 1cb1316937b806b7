"""``--help`` of every command: each option and positional says what it does, and its default where it has one."""

import argparse
import contextlib
import io
import re

import pytest

from ganzoo import hookimpl
from ganzoo.cli import _HelpFormatter, _Parser, build_parser, main

#: Commands the bundled plugins register; the walk below must reach them, or it would prove nothing about them.
PLUGIN_COMMANDS = {
    "eval",
    "metrics",
    "generate",
    "score",
    "translate",
    "import-reference",
    "export-reference",
    "upscale",
    "sr-eval",
}


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(command path, parser)`` for ``parser`` and every subcommand below it, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def arguments(parser: argparse.ArgumentParser):
    """The options and positionals a user types (not the subcommand choosers)."""
    return [a for a in parser._actions if not isinstance(a, argparse._SubParsersAction)]


def name_of(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or action.metavar or action.dest


def help_of(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """What ``ganzoo ARGV --help`` prints, at 100 columns, and that it exits 0."""
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0, argv
    return out.getvalue()


@pytest.fixture(scope="module")
def tree():
    return list(parsers(build_parser()))


def test_the_walk_reaches_nested_and_plugin_commands(tree):
    commands = {path for path, _ in tree}
    assert {("data", "show"), ("data", "export"), ("data", "download"), ("train",), ("sample",)} <= commands
    assert {(c,) for c in PLUGIN_COMMANDS} <= commands


def test_every_option_and_positional_of_every_command_has_help(tree):
    missing = [
        f"ganzoo {' '.join(path)} {name_of(a)}"
        for path, p in tree
        for a in arguments(p)
        if a.help is not argparse.SUPPRESS and not (a.help or "").strip()
    ]
    assert not missing, "arguments without help text:\n" + "\n".join(missing)


def test_every_parser_uses_the_formatter_that_shows_defaults(tree):
    plain = [" ".join(path) or "ganzoo" for path, p in tree if p.formatter_class is not _HelpFormatter]
    assert not plain, plain


def test_every_command_help_exits_0_and_shows_no_empty_default(tree, monkeypatch):
    for path, _ in tree:
        text = help_of(list(path), monkeypatch)
        assert text.startswith(f"usage: ganzoo {' '.join(path)}".rstrip()), path
        for bad in ("(default: None)", "(default: False)", "(default: [])", "(default: ==SUPPRESS==)"):
            assert bad not in text, (path, bad)


def test_sample_help_shows_each_default_once(monkeypatch):
    text = " ".join(help_of(["sample"], monkeypatch).split())  # undo the wrapping
    assert "the noise's seed: same seed and options, same images (default: 0)" in text
    assert "(default: samples.png)" in text
    assert "where the model runs: auto, cpu, cuda or cuda:N (default: cpu)" in text
    assert "samples, at most 4096 (default: 64; with --interpolate, walks: 4)" in text
    # --class states its default in its own words: no second one appended
    assert "(repeatable or 0,2,5; default: all)" in text and "default: all) (default" not in text
    assert "--trust-unverified" in text and "regardless (default" not in text


def test_a_help_that_already_states_its_default_gets_no_second_one(tree):
    fmt = _HelpFormatter("ganzoo")
    stated = [(path, a) for path, p in tree for a in arguments(p) if a.help and "default" in a.help.lower()]
    assert len(stated) > 20  # the check below must have material
    for path, a in stated:
        assert fmt._get_help_string(a) == a.help, (path, name_of(a))
    # upscale's --max-memory names %(default)s itself: one default in its help, the real one
    text = " ".join(" ".join(p.format_help().split()) for path, p in tree if path == ("upscale",))
    assert len(re.findall(r"\(default: 2048\)", text)) == 1 and "(default: 2048) (default" not in text


def test_the_formatter_appends_only_meaningful_defaults():
    p = _Parser(prog="t")
    p.add_argument("req", help="a required positional")
    p.add_argument("opt", nargs="?", default="x.png", help="an optional positional")
    p.add_argument("--zero", type=int, default=0, help="zero is a real value")
    p.add_argument("--none", help="no default")
    p.add_argument("--flag", action="store_true", help="a switch")
    p.add_argument("--many", action="append", default=[], help="repeatable")
    p.add_argument("--empty", default="", help="empty text")
    p.add_argument("--stated", type=int, default=3, help="three unless told (default: 3)")
    p.add_argument("--hidden", default=argparse.SUPPRESS, help="absent unless given")
    p.add_argument("--pct", type=float, default=0.5, help="a share, 50%% by default")
    fmt = _HelpFormatter("t")
    got = {name_of(a): fmt._get_help_string(a) for a in p._actions}
    assert got["req"] == "a required positional"
    assert got["opt"] == "an optional positional (default: %(default)s)"
    assert got["--zero"] == "zero is a real value (default: %(default)s)"
    for plain in ("--none", "--flag", "--many", "--empty", "--stated", "--hidden", "--pct", "-h/--help"):
        assert "(default: %(default)s)" not in got[plain], plain
    text = " ".join(p.format_help().split())
    assert "an optional positional (default: x.png)" in text
    assert "(default: 0)" in text and "three unless told (default: 3)" in text and "(default: 3) (default" not in text


def test_the_formatter_keeps_argparse_wrapping(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    p = _Parser(prog="t")
    p.add_argument("--long", default="somewhere.png", help="a help text long enough to need several lines " * 3)
    lines = p.format_help().splitlines()
    assert all(len(line) <= 60 for line in lines), lines
    assert "(default: somewhere.png)" in " ".join(" ".join(lines).split())


class _ToyCommand:
    @hookimpl
    def ganzoo_register_commands(self, register):
        def configure(p):
            p.add_argument("model", help="a model")
            p.add_argument("--steps", type=int, default=7, help="how many")

        register("toy-help", "a plugin command", configure, print, tasks=("unconditional",))


def test_a_plugin_command_inherits_the_formatter(monkeypatch):
    from ganzoo.plugins import register_plugin, unregister_plugin

    register_plugin(_ToyCommand(), "toy-help")
    try:
        text = " ".join(help_of(["toy-help"], monkeypatch).split())
    finally:
        unregister_plugin("toy-help")
    assert "how many (default: 7)" in text
