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


def test_readme_ruleset_examples_work_after_the_quick_start(monkeypatch) -> None:
    """Every `drgkit group/explain -r X` in the README either names a ruleset drgkit ships, a
    folder, or says it needs the refdata plugin (which the quick start shows how to set up)."""
    from drgkit.registry import Registry, plugin_manager

    monkeypatch.delenv("DRGKIT_DISABLE_PLUGINS", raising=False)
    shipped = Registry.from_plugins(plugin_manager(entry_points=False))
    known = set(shipped.rulesets) | set(shipped.regions())
    text = _readme()
    quick = text[text.index("## Quick start"):text.index("## Grouping")]
    assert "plugins/drgkit-refdata" in quick and "DRGKIT_REFDATA" in quick
    checked = 0
    for line in text.splitlines():
        match = re.match(r"\s*drgkit (group|explain)\b.*?\s-r\s+(\S+)", line)
        if not match:
            continue
        checked += 1
        spec = match.group(2)
        assert spec in known or "/" in spec or "refdata" in line, line
    for match in re.finditer(r"drgkit\.(?:group|group_file|explain)\((.*?)\)", text, re.S):
        spec = re.findall(r"\"([^\"]+)\"", match.group(1))[-1]
        assert spec in known or "/" in spec, match.group(0)
        checked += 1
    assert checked >= 6


def test_plugin_fixtures_are_documented() -> None:
    text = _readme()
    section = text[text.index("### Rulesets, versions and plugins"):text.index("## Settlement")]
    from drgkit import testing

    for name in testing.__all__:
        assert f"`{name}" in section, name
    assert "pytest11" in section and "PluginRegistry" in section


def test_docs_hold_no_machine_specific_paths() -> None:
    for doc in (REPO / "README.md", REPO / "benchmarks" / "README.md"):
        found = re.findall(r"(?<![\w.])/(?:work|home|Users|root|tmp|opt)/\S*", doc.read_text(
            encoding="utf-8"))
        assert not found, (doc, found)
