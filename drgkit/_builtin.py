"""drgkit's built-in plugin: the DRG and DIP payment schemes, the shipped demo rulesets and DIP
catalogue, the policies, the standard layouts.

It registers through the same hooks as any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .hookspecs import PluginRegistry, hookimpl
from .schema import LAYOUTS


@hookimpl
def drgkit_register_schemes(registry: PluginRegistry) -> None:
    from ._schemes import DIP, DRG

    registry.add_scheme(DRG)  # first: a bare name known to both schemes means DRG
    registry.add_scheme(DIP)


def _shipped_dir(name: str, what: str) -> Path:
    """A data folder shipped with drgkit: ``drgkit/_<name>`` when installed from a wheel, the
    repository's top-level ``<name>`` in a source checkout or an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / f"_{name}", here.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"drgkit's shipped {what} are missing (looked in {here / f'_{name}'}"
        f" and {here.parent / name}); reinstall drgkit"
    )


def _version_folders(root: Path) -> Iterator[Path]:
    """``root/REGION/VERSION`` folders that have a ``meta.csv``, in name order."""
    for region_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for version_dir in sorted(p for p in region_dir.iterdir() if p.is_dir()):
            if (version_dir / "meta.csv").is_file():
                yield version_dir


def shipped_rulesets_dir() -> Path:
    """The ``rulesets`` folder shipped with drgkit.

    Installed from a wheel it lives inside the package (``drgkit/_rulesets``); in a source
    checkout or an editable install it is the repository's top-level ``rulesets`` folder.
    """
    return _shipped_dir("rulesets", "rulesets")


@hookimpl
def drgkit_register_rulesets(registry: PluginRegistry) -> None:
    for folder in _version_folders(shipped_rulesets_dir()):
        registry.add_ruleset(folder)


def shipped_catalogues_dir() -> Path:
    """The ``catalogues`` folder shipped with drgkit (demo DIP catalogue), like the rulesets."""
    return _shipped_dir("catalogues", "DIP catalogues")


@hookimpl
def drgkit_register_catalogues(registry) -> None:
    for folder in _version_folders(shipped_catalogues_dir()):
        registry.add_catalogue(folder)


@hookimpl
def drgkit_register_alliance_models(registry) -> None:
    # the shipped example models (drgkit/alliances/*.toml), registered like a plugin's
    for path in sorted((Path(__file__).resolve().parent / "alliances").glob("*.toml")):
        registry.add_alliance_model(path, id=path.stem)


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
