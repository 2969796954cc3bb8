"""``drgkit demo`` (end to end on generated cases, DRG and then DIP) and ``drgkit warmup``."""

from __future__ import annotations

import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from .. import registry as _registry
from ._common import (
    indent,
    print_dip_summary,
    print_group_summary,
    print_settle_summary,
    render_table,
)


@click.group("demo", invoke_without_command=True)
@click.option(
    "--cases",
    "n",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="How many demo cases.",
)
@click.option(
    "--out",
    "out_dir",
    default="drgkit-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo files.",
)
@click.option("--seed", default=20231, show_default=True, help="Random seed of the generator.")
@click.option(
    "--dip-cases",
    "dip_n",
    type=click.IntRange(min=100),
    default=1500,
    show_default=True,
    help="DIP part: cases per year of history (three years) and of this year.",
)
@click.pass_context
def demo(ctx: click.Context, n: int, out_dir: Path, seed: int, dip_n: int) -> None:
    """Run drgkit end to end on generated cases: DRG with the shipped demo rulesets, then DIP
    with a catalogue built from three generated years of history.

    `drgkit demo generate` writes a national-scale dataset of generated cases instead."""
    if ctx.invoked_subcommand is not None:
        return
    run_demo(n, out_dir, seed, dip_n)


def run_demo(n: int, out_dir: Path, seed: int, dip_n: int) -> None:
    """The demo itself (``drgkit demo`` without a subcommand)."""
    import pyarrow.parquet as pq

    from .. import _demo
    from ..alliance import load_model, split
    from ..grouping import group_file
    from ..grouping._explain import explain
    from ..settlement import settle_file
    from ..settlement._settle import read_settled

    out_dir.mkdir(parents=True, exist_ok=True)
    cases = _demo.generate_cases(n, seed=seed)
    cases_path = out_dir / "cases.parquet"
    pq.write_table(cases, cases_path)
    click.echo(
        f"1. generated {cases.num_rows:,} demo cases at 8 hospitals (about 2% deliberately "
        f"bad; costs around each group's price, some hospitals above it, some below) → "
        f"{cases_path}"
    )
    series = _registry.default_registry().resolve("demo")
    click.echo(
        f"2. ruleset region 'demo': {', '.join(v.id for v in series.ordered())} — each "
        "case is grouped by the version in force on its discharge date"
    )
    # numba compiles the kernels on the very first run (seconds); timed apart, so that the
    # grouping and settlement figures below are what every later run gets
    compiling = time.perf_counter()
    _warm_up(series, cases.slice(0, 1), settle_policy="demo")
    click.echo(
        f"   kernels ready in {time.perf_counter() - compiling:.2f} s (compiled on the "
        "first run, then cached; `drgkit warmup` does it ahead)"
    )
    grouped_path = out_dir / "grouped.csv"
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = group_file(
            cases_path, grouped_path, series, keep=["hospital_id", "discharge_date"]
        )
    click.echo(f"3. grouped → {grouped_path}")
    print_group_summary(summary, time.perf_counter() - started)
    click.echo(
        "   most frequent DRGs: "
        + ", ".join(f"{drg} {count:,}" for drg, count in summary.by_drg.most_common(8))
    )
    settled_path = out_dir / "settled.csv"
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settle_summary = settle_file(
            cases_path, settled_path, "demo", series, keep=["referral_from"]
        )
    click.echo(f"   settled under policy 'demo' (rate method) → {settled_path}")
    print_settle_summary(settle_summary, time.perf_counter() - started)
    click.echo("   " + break_even_line(settle_summary.hospitals))
    alliance_dir = out_dir / "alliance"
    result = split(read_settled(settled_path), load_model("demo"))
    result.write(alliance_dir)
    click.echo(
        f"   split the packages of the demo alliances (model 'demo': up-transfers paid "
        f"once and split 30/70, down-transfer surplus 50/50, shared costs by "
        f"coefficient × volume) → {alliance_dir}/"
    )
    click.echo(
        indent(
            render_table(
                result.members.select(
                    [
                        "alliance_id",
                        "hospital_id",
                        "claims",
                        "package_adjustment",
                        "shared_costs",
                        "joint_revenue",
                        "cost_increase",
                        "net",
                    ]
                )
            ),
            "   ",
        )
    )
    # explain a case with a complication, as a coder would look at it
    import pyarrow.csv as pacsv

    grouped = pacsv.read_csv(
        grouped_path,
        convert_options=pacsv.ConvertOptions(column_types={"drg": "string", "case_id": "string"}),
    )
    pick = None
    for case_id, drg, status in zip(
        grouped["case_id"].to_pylist(),
        grouped["drg"].to_pylist(),
        grouped["status"].to_pylist(),
        strict=True,
    ):
        if status == "ok" and drg.endswith("3"):
            pick = case_id
            break
    if pick is not None:
        click.echo(
            f"4. why did case {pick} group to its DRG?  (drgkit explain "
            f"{cases_path} -r demo --case {pick})"
        )
        click.echo("")
        explanation = explain(cases_path, series, case_id=pick)
        click.echo(indent(explanation.render(), "   "))
    click.echo("")
    _dip_demo(out_dir / "dip", dip_n, seed)
    finish_demo(out_dir)


def finish_demo(out_dir: Path) -> None:
    """Hook point: the last step of ``drgkit demo``, after the DRG and DIP parts have written
    their files under ``out_dir`` (cases.parquet, grouped.csv, settled.csv, alliance/, dip/).
    The report step is added here."""
    from .report import demo_report

    demo_report(out_dir)


def _dip_demo(out_dir: Path, n: int, seed: int) -> None:
    """The DIP half of the demo: history → built catalogue → this year's cases grouped →
    one case explained with its candidates → settled when a DIP policy is registered."""
    import pyarrow.parquet as pq

    from .. import _demo_dip
    from .._schemes import resolve_target
    from ..catalogue._build import build_catalogue
    from ..catalogue._build_options import BuildOptions
    from ..grouping._dip_explain import candidates, explain_dip
    from .group import render_candidates

    out_dir.mkdir(parents=True, exist_ok=True)
    data = _demo_dip.generate(n, n, seed=seed)
    history_path, cases_path = out_dir / "history.parquet", out_dir / "cases.parquet"
    pq.write_table(data.history, history_path)
    pq.write_table(data.current, cases_path)
    levels = ", ".join(f"{h} (level {lv})" for h, lv, _e in _demo_dip.HOSPITALS)
    click.echo(
        f"DIP (按病种分值付费): {data.history.num_rows:,} cases of "
        f"{'–'.join(map(str, _demo_dip.HISTORY_YEARS[::2]))} from {levels} → "
        f"{history_path}"
    )
    result = build_catalogue(
        history_path, BuildOptions(procedure_attributes=_demo_dip.PROCEDURE_ATTRIBUTES)
    )
    folder = result.write(
        out_dir / "catalogue",
        catalogue="dip_demo_local",
        name="demo local DIP catalogue",
        version=str(_demo_dip.CURRENT_YEAR),
        effective_from=f"{_demo_dip.CURRENT_YEAR}-01-01",
    )
    r = result.report
    click.echo(f"5. built a local catalogue (drgkit dip build {history_path} {folder}) → {folder}/")
    click.echo(
        f"   threshold n = {r.threshold}; {r.core_packets} core packets hold "
        f"{float(r.coverage) * 100:.1f}% of the cases, {r.comprehensive_packets} "
        f"comprehensive packets {r.comprehensive_cases:,}, blank packet "
        f"{r.blank_cases:,}; score base {r.score_base / 100:,.2f} yuan "
        f"(report: {folder}/build/report.md)"
    )
    scheme, catalogue = resolve_target(str(folder))
    grouped_path = out_dir / "grouped.csv"
    started = time.perf_counter()
    summary = scheme.group_file(
        cases_path, grouped_path, catalogue, keep=["hospital_id", "hospital_level"]
    )
    click.echo(
        f"6. grouped {data.current.num_rows:,} cases of {_demo_dip.CURRENT_YEAR} with it "
        f"(drgkit group {cases_path} -r {folder}) → {grouped_path}"
    )
    print_dip_summary(summary, time.perf_counter() - started, top=8)
    pick = _dip_case_to_explain(data.current, grouped_path)
    if pick is not None:
        case = {
            k: v
            for k, v in pick.items()
            if k in ("case_id", "diagnoses", "procedures", "age", "leaving_type")
        }
        click.echo(
            f"7. why did case {case['case_id']} land in its packet, and what else was "
            f"within reach?  (drgkit explain {cases_path} -r {folder} --case "
            f"{case['case_id']} --candidates)"
        )
        click.echo(indent(str(explain_dip(case, catalogue)), "   "))
        click.echo(indent(render_candidates(candidates(case, catalogue)), "   "))
    _dip_settle(cases_path, catalogue, out_dir)


def _dip_case_to_explain(cases, grouped_path: Path) -> dict | None:
    """A case with a procedure that grouped to a core packet (the interesting kind)."""
    import pyarrow.csv as pacsv

    grouped = pacsv.read_csv(
        grouped_path,
        convert_options=pacsv.ConvertOptions(
            column_types={"case_id": "string", "packet": "string"}
        ),
    )
    core = {
        c
        for c, kind in zip(
            grouped["case_id"].to_pylist(), grouped["packet_kind"].to_pylist(), strict=True
        )
        if kind == "core"
    }
    for row in cases.to_pylist():
        if row["case_id"] in core and len(row["procedures"]) > 1:
            return row
    return None


#: the DIP policy the demo settles under: the national rules (an example policy)
DEMO_DIP_POLICY = "dip-national-1.0"


def _dip_settle(cases_path: Path, catalogue: Any, out_dir: Path) -> None:
    """Settle this year's cases under :data:`DEMO_DIP_POLICY` with a fund derived from the
    data (:func:`drgkit._demo_dip.demo_funds`, given as ``--budget POOL=YUAN``), then show the
    clearing point value, that Σ fund payments of each pool equals its fund to the cent, and
    each hospital against break-even."""
    reg = _registry.default_registry()
    policy_id = (
        DEMO_DIP_POLICY
        if DEMO_DIP_POLICY in reg.policies
        else next((p for p in reg.policies if p.startswith("dip-")), None)
    )
    if policy_id is None:
        click.echo(
            "8. DIP settlement: no DIP policy (dip-*) is registered in this drgkit, so "
            "the point value and each hospital's amount are not computed here"
        )
        return
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from .. import _demo_dip
    from ..settlement import settle_file

    policy = reg.policy(policy_id)
    funds = _demo_dip.demo_funds(
        pq.read_table(cases_path, columns=["insurance_type", "total_cost"]), policy
    )
    budget = " ".join(f"--budget {k}={v}" for k, v in funds.items())
    settled_path = out_dir / "settled.csv"
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = settle_file(
            cases_path,
            settled_path,
            policy_id,
            catalogue,
            overrides={f"points.budget.{k}": str(v) for k, v in funds.items()},
        )
    click.echo(
        f"8. settled under policy {policy_id!r} with a DIP fund of Σ this year's cost × "
        f"fund payment ratio × {_demo_dip.FUND_SHARE} per scheme (drgkit settle "
        f"{cases_path} -p {policy_id} -r {out_dir / 'catalogue'} {budget}) → {settled_path}"
    )
    print_settle_summary(summary, time.perf_counter() - started)
    click.echo(
        "  clearing point value = (fund ÷ fund payment ratio − paid by item) ÷ Σ points, "
        f"shown to {policy.value_decimals} decimals; amounts use the exact value"
    )
    settled = pacsv.read_csv(
        settled_path,
        convert_options=pacsv.ConvertOptions(
            column_types={"insurance_type": "string", "fund_payment": "string", "settled": "bool"}
        ),
    )
    paid: dict[str, Decimal] = {}
    for ok, kind, fund in zip(
        settled["settled"].to_pylist(),
        settled["insurance_type"].to_pylist(),
        settled["fund_payment"].to_pylist(),
        strict=True,
    ):
        if ok:
            scheme = policy.scheme_of(kind)
            pool = scheme if scheme in funds else "all"
            paid[pool] = paid.get(pool, Decimal(0)) + Decimal(fund)
    for pool, fund in funds.items():
        mark = "==" if paid.get(pool, Decimal(0)) == fund else "!="
        click.echo(
            f"  Σ fund payments ({pool}) = {paid.get(pool, Decimal(0)):,} {mark} "
            f"DIP fund {fund:,} (to the cent)"
        )
    hospitals = summary.hospitals.values()
    gain = sum(1 for h in hospitals if h["payment"] > h["total_cost"])
    click.echo(f"  {gain} hospitals paid above their cost, {len(hospitals) - gain} below")


def break_even_line(hospitals: Any) -> str:
    """Break-even of the hospitals from a settlement summary's per-hospital sums."""
    rows = list(hospitals.values())
    gain = sum(1 for h in rows if h["payment"] > h["total_cost"])
    pay = sum(h["payment"] for h in rows)
    cost = sum(h["total_cost"] for h in rows)
    ratio = f"{pay / cost:.3f}" if cost else "n/a"
    return (
        f"break-even: {gain} hospitals with a gain, {len(rows) - gain} with a loss; "
        f"payment ÷ cost over all hospitals = {ratio}"
    )


@demo.command("generate")
@click.option(
    "-n",
    "--cases",
    "n",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="How many cases.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the part files (part-NNNNN.parquet), _hospitals.csv and _generated.json.",
)
@click.option("--seed", default=20231, show_default=True, help="Random seed.")
@click.option(
    "--ruleset",
    "ruleset",
    default=None,
    metavar="NAME|PATH",
    help="Ruleset whose code lists the cases are drawn from: 'demo', a name under the "
    "reference data (DRGKIT_REFDATA), or a ruleset folder. Default: chs_drg_11 when the "
    "reference data is found (priced with the Suzhou 2023 table), else the demo ruleset.",
)
@click.option(
    "--hospitals",
    type=click.IntRange(min=3),
    default=300,
    show_default=True,
    help="How many hospitals (three levels, alliances among them).",
)
@click.option(
    "--rows-per-file",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Cases per part file.",
)
@click.option(
    "--bad-fraction",
    type=click.FloatRange(0, 1),
    default=0.005,
    show_default=True,
    help="Share of deliberately bad rows (unknown codes, missing sex, …).",
)
@click.option("--year", type=int, default=2023, show_default=True, help="Discharge year.")
@click.option(
    "--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Writer threads."
)
def generate(
    n: int,
    out_dir: Path,
    seed: int,
    ruleset: str | None,
    hospitals: int,
    rows_per_file: int,
    bad_fraction: float,
    year: int,
    threads: int,
) -> None:
    """Write N generated inpatient cases as partitioned Parquet (streaming: memory does not
    grow with N). The same seed and options always give the same files."""
    from .. import _generate

    started = time.perf_counter()
    try:
        gen = _generate.national(
            n,
            seed=seed,
            ruleset=ruleset,
            hospitals=hospitals,
            bad_fraction=bad_fraction,
            year=year,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    ready = time.perf_counter() - started
    options = {
        "seed": seed,
        "ruleset": ruleset,
        "hospitals": hospitals,
        "bad_fraction": bad_fraction,
        "year": year,
    }
    with click.progressbar(length=n, label="generating") as bar:
        paths = _generate.write_dataset(
            gen,
            out_dir,
            rows_per_file=rows_per_file,
            threads=threads,
            options=options,
            progress=bar.update,
        )
    wall = time.perf_counter() - started
    size = sum(p.stat().st_size for p in paths)
    h = gen.hospitals
    click.echo(
        f"{n:,} cases in {len(paths)} files → {out_dir}/ ({size / 2**20:,.1f} MiB) in "
        f"{wall:.1f} s ({n / max(wall - ready, 1e-9):,.0f} cases/s after {ready:.1f} s "
        f"preparing {len(gen.pool.kind):,} clinical profiles)"
    )
    click.echo(
        f"hospitals: {len(h)} (level 3: {int((h.level == 3).sum())}, level 2: "
        f"{int((h.level == 2).sum())}, level 1: {int((h.level == 1).sum())}), "
        f"{len({a for a in h.alliance if a})} alliances → {out_dir / _generate.HOSPITALS_FILE}"
    )


@click.command("warmup")
@click.option(
    "-r",
    "--ruleset",
    "rulesets_",
    multiple=True,
    metavar="RULESET|CATALOGUE",
    help="Compile (and cache) these rulesets or DIP catalogues (default: the first "
    "registered of each).",
)
def warmup(rulesets_: tuple[str, ...]) -> None:
    """Compile the numba kernels (and rulesets) ahead of time, so first runs start fast."""
    started = time.perf_counter()
    reg = _registry.default_registry()
    targets = list(rulesets_) or [next(iter(reg.rulesets), None), next(iter(reg.catalogues), None)]
    for spec in targets:
        if spec is None:
            continue
        _warm_up(spec)
        click.echo(f"ready: {spec}")
    click.echo(f"kernels compiled and cached in {time.perf_counter() - started:.1f} s")


def _warm_up(ruleset: Any, case: Any = None, settle_policy: str | None = None) -> None:
    """Group (and settle) one case so that numba compiles and caches the kernels now (a
    ruleset's or a catalogue's: :func:`drgkit.group` tells them apart)."""
    import pyarrow as pa

    from .. import group

    if case is None:
        # dated, so that a region's version is chosen and its kernel really runs
        case = pa.table(
            {
                "case_id": ["w"],
                "diagnoses": ["A00.000"],
                "procedures": [""],
                "sex": ["1"],
                "age": ["30"],
                "discharge_date": ["2024-06-30"],
            }
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a one-case probe lacks optional columns
        group(case, ruleset)
        if settle_policy is not None:
            from ..settlement import settle

            settle(case, settle_policy, ruleset)
