"""The README's promises: its commands exist and the documented API is the real one."""

from __future__ import annotations

import re

from conftest import REPO

import drgkit
from drgkit import hookspecs


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_has_the_two_commands() -> None:
    text = _readme()
    assert "pip install -e . && drgkit demo" in text
    match = re.search(r"<!-- test-command -->\s*```[a-z]*\n(.*?)\n```", text, re.S)
    assert match and "pytest" in match.group(1)
    assert (REPO / ".ci" / "run").stat().st_mode & 0o111


def test_every_hook_is_documented_in_the_readme() -> None:
    text = _readme()
    for name in dir(hookspecs):
        if name.startswith("drgkit_"):
            assert name in text, name


def test_every_reason_code_is_documented_in_the_readme() -> None:
    text = _readme()
    for code in drgkit.REASONS:
        if code:
            assert f"`{code}`" in text, code


def test_public_api_is_exported() -> None:
    for name in drgkit.__all__:
        assert hasattr(drgkit, name), name


def test_every_cli_command_is_named_in_the_readme() -> None:
    from drgkit.cli import cli

    text = _readme()
    for name in cli.commands:
        if name not in ("layouts", "warmup"):
            assert f"`{name}`" in text or f"drgkit {name}" in text, name


def test_every_alliance_link_kind_is_documented() -> None:
    import drgkit.alliance
    from drgkit.alliance._split import LINKS

    doc = drgkit.alliance.__doc__ or ""
    for kind in LINKS:
        assert f"``{kind}``" in doc, kind
