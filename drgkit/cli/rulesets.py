"""``drgkit rulesets list|show|validate|lint|diff`` and ``drgkit layouts``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import registry as _registry
from ._common import data_warnings, write_table
from ._listing import echo_validation, echo_versions

_FORMAT = click.option(
    "--format",
    "format_",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="Human text, or machine-readable JSON or CSV on stdout.",
)


@click.group()
def rulesets() -> None:
    """List, show and validate rulesets."""


def _versions(target):
    from ..ruleset._model import RulesetSeries

    return target.ordered() if isinstance(target, RulesetSeries) else [target]


@rulesets.command("list")
def rulesets_list() -> None:
    """Every registered ruleset version, grouped by region."""
    reg = _registry.default_registry()
    echo_versions(reg.rulesets, reg.regions(), noun="ruleset", region_option="REGION")


@rulesets.command("show")
@click.argument("ruleset")
def rulesets_show(ruleset: str) -> None:
    """Details of one ruleset (id, region or folder)."""
    reg = _registry.default_registry()
    for rs in _versions(reg.resolve(ruleset)):
        info, comp = rs.info, rs.compiled
        names = comp.names
        adrgs = {e[2] for e in names["entries"] if e[1] == "ADRG"}
        click.echo(f"{info.id}: {info.name}")
        click.echo(
            f"  region {info.region or '-'}, version {info.version or '-'}, in force "
            f"{info.effective_from or '…'} – {info.effective_to or '…'}"
        )
        click.echo(f"  folder {info.path}")
        source = reg.registered_by(info.id) if info.id in reg.rulesets else "given as a path"
        click.echo(f"  registered by {source}")
        click.echo(f"  content hash {comp.content_hash}")
        click.echo(
            f"  {len(names['mdcs'])} MDCs, {len(adrgs)} ADRGs, "
            f"{len({s[1] for s in names['steps']})} DRGs, {len(names['lists'])} code "
            f"lists, {len(names['codes'])} codes, {len(names['rules'])} rules"
        )
        click.echo(
            f"  translation maps: dx {'yes' if names['has_dx_map'] else 'no'}, "
            f"px {'yes' if names['has_px_map'] else 'no'}"
        )
        if info.description:
            click.echo(f"  {info.description}")


@rulesets.command("validate")
@click.argument("rulesets_", metavar="RULESET...", nargs=-1, required=True)
def rulesets_validate(rulesets_: tuple[str, ...]) -> None:
    """Check every table of each ruleset; errors name the file, row and column."""
    reg = _registry.default_registry()
    echo_validation(
        (rs for spec in rulesets_ for rs in _versions(reg.resolve(spec))),
        "ruleset",
        lambda notes: ("", notes),
    )


def _csv(table) -> str:
    import io

    import pyarrow.csv as pacsv

    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return buffer.getvalue().decode()


@rulesets.command("lint")
@click.argument("ruleset")
@click.option(
    "-p", "--policy", metavar="POLICY", help="Also check every DRG has a weight in this policy."
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights table of the policy.",
)
@_FORMAT
def rulesets_lint(ruleset: str, policy: str | None, weights: Path | None, format_: str) -> None:
    """Find defects in a RULESET (id or folder): shadowed entries, unreachable DRG steps,
    references to nothing, duplicate or conflicting rows, unknown codes, DRGs without a name
    (or weight). Exit code 1 when there is any error."""
    from ..ruleset._lint import findings_table, lint_ruleset
    from ._common import UserError

    if weights is not None and policy is None:
        raise UserError("--weights is the table of a policy: give the policy with -p")
    pol = None
    if policy is not None:
        pol = _registry.default_registry().policy(policy, weights=weights)
    findings = lint_ruleset(ruleset, pol)
    if format_ == "json":
        click.echo(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=1))
    elif format_ == "csv":
        click.echo(_csv(findings_table(findings)), nl=False)
    else:
        for finding in findings:
            click.echo(str(finding))
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
        click.echo(", ".join(f"{n} {s}(s)" for s, n in counts.items()))
    if any(f.severity == "error" for f in findings):
        raise SystemExit(1)


@rulesets.command("diff")
@click.argument("a")
@click.argument("b")
@click.option(
    "--cases",
    type=click.Path(dir_okay=True, path_type=Path),
    help="Group these cases under A and B: how many change DRG, and where to.",
)
@click.option("-p", "--policy-a", metavar="POLICY", help="Policy of the cases under A.")
@click.option("-P", "--policy-b", metavar="POLICY", help="Policy under B (default: as A).")
@click.option(
    "--weights", type=click.Path(dir_okay=False, path_type=Path), help="Weights table of A."
)
@click.option(
    "--alt-weights", type=click.Path(dir_okay=False, path_type=Path), help="Weights table of B."
)
@click.option(
    "--by",
    default="hospital_id,department,drg",
    show_default=True,
    help="Keys of the payment tables, comma-separated.",
)
@click.option(
    "--top", type=click.IntRange(min=0), default=20, show_default=True, help="Moves to show."
)
@click.option(
    "--rows", type=click.IntRange(min=0), default=20, show_default=True, help="Rows per list."
)
@click.option(
    "--moves-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the from→to move matrix (CSV or .parquet; with --cases).",
)
@_FORMAT
def rulesets_diff(
    a: str,
    b: str,
    cases: Path | None,
    policy_a: str | None,
    policy_b: str | None,
    weights: Path | None,
    alt_weights: Path | None,
    by: str,
    top: int,
    rows: int,
    moves_out: Path | None,
    format_: str,
) -> None:
    """What changed from ruleset A to B (two versions or two regions): codes that moved ADRG
    or MDC, ADRGs and DRGs added, removed or renamed, CC/MCC lists and exclusions. With
    --cases (and -p) the migration impact: DRG moves and the payment change per key."""
    from ..ruleset._diff import diff_rulesets, migration_impact
    from ._common import UserError

    if cases is None and (policy_a or policy_b or moves_out):
        raise UserError("-p/-P/--moves-out are about a migration: give the cases with --cases")
    if policy_b and not policy_a:
        raise UserError("-P (policy under B) needs -p (policy under A)")
    diff = diff_rulesets(a, b)
    migration = None
    if cases is not None:
        keys = tuple(k.strip() for k in by.split(",") if k.strip())
        with data_warnings():
            migration = migration_impact(
                cases,
                a,
                b,
                policy_a=policy_a,
                policy_b=policy_b,
                by=keys,
                top=top,
                weights=weights,
                alt_weights=alt_weights,
            )
    if format_ == "json":
        out: dict = {
            "a": diff.a,
            "b": diff.b,
            "counts": diff.counts(),
            "changes": diff.table.to_pylist(),
        }
        if migration is not None:
            out["migration"] = {
                "cases": migration.cases,
                "changed": migration.changed,
                "status_changed": migration.status_changed,
                "moves": migration.moves,
                "matrix": migration.matrix.to_pylist(),
                "payment": {
                    key: sim.table.to_pylist() for key, sim in migration.simulations.items()
                },
            }
        click.echo(json.dumps(out, ensure_ascii=False, indent=1, default=str))
    elif format_ == "csv":
        click.echo(_csv(diff.table), nl=False)
    else:
        click.echo(diff.render(max_rows=rows))
        if migration is not None:
            click.echo(migration.render(max_rows=rows))
    if migration is not None and moves_out is not None:
        write_table(moves_out, migration.matrix)


@click.command("layouts")
def layouts() -> None:
    """Case file layouts: how each names the case fields."""
    for name, layout in _registry.default_registry().layouts.items():
        click.echo(f"{name}: {layout.description}")
        mapped = ", ".join(f"{f}={c}" for f, c in layout.columns.items())
        click.echo(f"    {mapped}")
