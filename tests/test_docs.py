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
    # DIP: a catalogue id or region, or a region's DIP side (dip:REGION, dip_REGION)
    dip_regions = set(shipped.catalogue_regions())
    known |= set(shipped.catalogues) | {f"dip{sep}{r}" for r in dip_regions for sep in ":_"}
    text = _readme()
    quick = text[text.index("## Quick start") : text.index("## Grouping")]
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


def test_every_dip_reason_is_documented_in_the_dip_section() -> None:
    text = _readme()
    section = text[text.index("## DIP (按病种分值付费)") : text.index("## Settlement")]
    for code in drgkit.DIP_REASONS:
        if code:
            assert f"`{code}`" in section, code
    assert "drgkit/catalogue/FORMAT.md" in section
    assert (REPO / "drgkit" / "catalogue" / "FORMAT.md").is_file()


def test_every_documented_subcommand_exists() -> None:
    """`drgkit GROUP SUB` in the README (dip build, catalogues show, rulesets list, …) is a
    real command; a plain `drgkit CMD` is one too."""
    import click

    from drgkit.cli import cli

    text = _readme()
    # commands: lines of the sh blocks, and inline code spans, that start with `drgkit `
    lines = [
        line for block in re.findall(r"```sh\n(.*?)```", text, re.S) for line in block.splitlines()
    ] + re.findall(r"`(drgkit [^`]+)`", text)
    found = [
        m.groups()
        for line in lines
        for m in [re.match(r"\s*drgkit ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", line)]
        if m
    ]
    checked = 0
    for name, sub in found:
        command = cli.commands.get(name)
        assert command is not None, name
        if isinstance(command, click.Group) and sub:
            assert sub in command.commands, (name, sub)
            checked += 1
    assert checked >= 8  # rulesets list/show/validate, dip build/validate/list/candidates, …
    for name, sub in (
        ("dip", "build"),
        ("dip", "validate"),
        ("dip", "list"),
        ("dip", "candidates"),
        ("catalogues", "list"),
        ("catalogues", "show"),
    ):
        assert (name, sub) in found, (name, sub)


def test_readme_dip_commands_that_need_no_file_run() -> None:
    from click.testing import CliRunner

    from drgkit.cli import cli

    text = _readme()
    section = text[text.index("## DIP (按病种分值付费)") : text.index("## Settlement")]
    ran = 0
    for line in section.splitlines():
        line = line.split("  #")[0].strip()
        if re.match(r"drgkit (explain -r dip|catalogues (list|show))", line):
            result = CliRunner().invoke(cli, line.split()[1:])
            assert result.exit_code == 0, (line, result.output)
            ran += 1
    assert ran == 3


def test_plugin_fixtures_are_documented() -> None:
    text = _readme()
    section = text[text.index("### Rulesets, versions and plugins") : text.index("## Settlement")]
    from drgkit import testing

    for name in testing.__all__:
        assert f"`{name}" in section, name
    assert "pytest11" in section and "PluginRegistry" in section


def test_docs_hold_no_machine_specific_paths() -> None:
    for doc in (REPO / "README.md", REPO / "benchmarks" / "README.md"):
        found = re.findall(
            r"(?<![\w.])/(?:work|home|Users|root|tmp|opt)/\S*", doc.read_text(encoding="utf-8")
        )
        assert not found, (doc, found)
