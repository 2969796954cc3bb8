"""drgkit's built-in plugin: the DRG and DIP payment schemes, the shipped demo rulesets and DIP
catalogue, the policies, the standard layouts.

It registers through the same hooks as any third-party plugin.
"""

from __future__ import annotations

from pathlib import Path

from .hookspecs import PluginRegistry, hookimpl
from .schema import LAYOUTS


@hookimpl
def drgkit_register_schemes(registry: PluginRegistry) -> None:
    from ._schemes import DIP, DRG

    registry.add_scheme(DRG)  # first: a bare name known to both schemes means DRG
    registry.add_scheme(DIP)


def shipped_rulesets_dir() -> Path:
    """The ``rulesets`` folder shipped with drgkit.

    Installed from a wheel it lives inside the package (``drgkit/_rulesets``); in a source
    checkout or an editable install it is the repository's top-level ``rulesets`` folder.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "_rulesets", here.parent / "rulesets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"drgkit's shipped rulesets are missing (looked in {here / '_rulesets'}"
                            f" and {here.parent / 'rulesets'}); reinstall drgkit")


@hookimpl
def drgkit_register_rulesets(registry: PluginRegistry) -> None:
    root = shipped_rulesets_dir()
    for region_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for version_dir in sorted(p for p in region_dir.iterdir() if p.is_dir()):
            if (version_dir / "meta.csv").is_file():
                registry.add_ruleset(version_dir)


def shipped_catalogues_dir() -> Path:
    """The ``catalogues`` folder shipped with drgkit (demo DIP catalogue), like the rulesets."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_catalogues", here.parent / "catalogues"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"drgkit's shipped DIP catalogues are missing (looked in "
                            f"{here / '_catalogues'} and {here.parent / 'catalogues'})")


@hookimpl
def drgkit_register_catalogues(registry) -> None:
    root = shipped_catalogues_dir()
    for region_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for version_dir in sorted(p for p in region_dir.iterdir() if p.is_dir()):
            if (version_dir / "meta.csv").is_file():
                registry.add_catalogue(version_dir)


def shipped_policies_dir() -> Path:
    return Path(__file__).resolve().parent / "policies"


@hookimpl
def drgkit_register_policies(registry: PluginRegistry) -> None:
    root = shipped_policies_dir()
    for path in sorted(root.glob("*.toml")):
        registry.add_policy(path)


@hookimpl
def drgkit_register_layouts(registry: PluginRegistry) -> None:
    for layout in LAYOUTS.values():
        registry.add_layout(layout)
