"""Medical alliances (医联体 / 紧密型县域医共体): package payment and exact internal splits.

An alliance is paid as one package and splits it among its members by rules it declares in a
TOML file (:class:`AllianceModel`, format in ``_model.py``). :func:`split` takes settled cases
(the table :func:`drgkit.settlement.settle` returns, with the ``referral_from`` column kept) and
the model, and returns an :class:`AllianceSplit`: what every member earned from its own cases,
gained or gave through referrals, its share of common costs, joint-service revenue, cost
increases and the package surplus or over-spend, with the line items behind each figure.

At scale, :func:`split_dataset` splits a partitioned Parquet dataset of settled cases in this
process or on Dask (``_dataset.py``): per partition the member sums and the narrow table of
cases that refer or are referred to, the links and allocations on the driver, then each
partition's case rows; its files are the single-process result's, byte for byte. Models are
registered by id through the ``drgkit_register_alliance_models`` hook (:func:`load_model`).

Input columns
-------------
``case_id`` (string), ``hospital_id`` (string), ``settled`` (bool), ``payment`` and
``total_cost`` (money, exact cents), ``referral_from`` (string, the case id this case was
referred from; null or empty: none; an absent column means no referrals) and ``rw``
(exact at up to 9 decimals and at most 1000, as ``settle`` writes it; needed only when the
model's ``volume = "rw"``). Every input row comes out in
``AllianceSplit.cases``, in input order.

Rules (all amounts integer cents)
---------------------------------
**Members.** A case belongs to the member whose ``hospital_id`` it carries; a hospital is a
member of at most one alliance. Cases of hospitals in no alliance are listed with alliance
null and take part in nothing. Only *settled* cases carry money (``payment``, ``total_cost``).

**Links.** A case with ``referral_from`` (null or empty: none, link ``none``) is linked to
the case with that id (its *parent*). A case of a hospital in no alliance has link ``outside``
when it names a parent. Otherwise the link's kind is decided in this order:

* ``self`` — the case names itself;
* ``unresolved`` — no input case has that id;  ``ambiguous`` — several input rows have it;
* ``outside`` — the parent is not in the same alliance (another alliance, or none);
* ``same_member`` — the parent was treated by the same member (an internal transfer);
* ``lateral`` — the parent's member has the same ``level``;
* ``not_settled`` — the child case is not settled (there is no payment to split);
* ``up`` (上转) — the child's member has a higher ``level`` than the parent's;
* ``down`` (下转) — a lower ``level``;
* ``conflict`` — an up-link whose parent already has another up-child: of the up-children of
  one parent, the one with the smallest ``case_id`` (binary string order) keeps the link; the
  others become ``conflict``. Repeated case ids are told apart by hospital id, payment and
  cost (a missing cost first), in that order (rows equal in all of these are interchangeable).

Only ``up`` and ``down`` links move money; every other kind is reported and otherwise ignored
(both cases are paid on their own).

**Up-transfers: paid once.** The parent of an ``up`` link is *absorbed*: its own payment is not
paid (``referred_up`` = −payment on its member); the episode is paid once, at the payment of the
last case of the chain (the *paying case*, which is not itself the parent of an up-link). Up
levels strictly increase along a chain, so chains are finite and have no cycles. The paying
case's payment ``P`` is split at each link, walking back from the paying case: the referrer
(the parent's member) receives ``x = split(P, up_referrer_share)`` from the receiver; at the
link before it, the referrer's own referrer receives ``split(x, up_referrer_share)``, and so on.
With 30 %: A→B→C pays C 70 %, B 21 %, A 9 % of C's payment.

**Down-transfers.** For a ``down`` link whose child is paid (settled and not absorbed) and has
a known total cost, the child's surplus ``U = payment − total_cost`` is split: the sender (the
parent's member) receives ``split(U, down_sender_share)`` from the receiver. A zero surplus
is split too (into zeros); a loss (``U < 0``) stays with the receiver unless
``down_share_losses = true``.

**Claims.** A member's claims = its own payments (settled cases) + ``referred_up`` +
``up_received`` + ``up_paid_out`` + ``down_received`` + ``down_paid_out`` (every column of the
members table is signed as it enters the sum: what a member gives is negative).
Σ claims of an alliance = Σ payment of its paid cases (settled, not absorbed): no case is paid
twice.

**Package.** ``basis = "payments"``: the package is the claims, unless the alliance has a
``budget`` (总额预算); ``basis = "capitation"``: the budget is ``enrolled × per_person``. With a
budget ``B``, balance = B − claims; a surplus is kept by the retention bands and an over-spend
shared with the fund by the over-spend bands, both scaled by ``B`` (exactly as in period
settlement, :class:`drgkit.settlement.PeriodRules`); ``package_adjustment = kept −
alliance's part of the over-spend``; ``package = claims + package_adjustment``. The adjustment
is shared among members by ``share_by``: ``"coefficient_volume"`` or ``"claims"`` (a member
whose claims are negative weighs zero).

**Shared costs, joint services, cost increases.** Each common cost is allocated among members
(all, or those listed) by contribution coefficient × service volume (``volume = "cases"``:
settled cases treated; ``"rw"``: their Σ RW). Joint-service revenue goes to the lead by
``lead_share`` and to the other members (or those listed) by coefficient × volume — one
largest-remainder split with weights ``lead_share`` and ``(1 − lead_share)·cv_i/Σcv``; with no
other member the lead takes it all — or by explicit ``shares``. A cost increase is split
between the members (``member_share``) and the suppliers; the members' part is allocated by
coefficient × volume. When every weight of an allocation is zero, the coefficients alone are
the weights.

**Net.** ``net = claims + package_adjustment + shared_costs + joint_revenue + cost_increase``
(costs and increases are negative amounts). Σ net of an alliance = package − Σ shared costs +
Σ joint revenue − members' part of the cost increases.

**Pay for cooperation** (optional model sections). :func:`cooperation_outcome` gives one row
per member (:data:`COOPERATION_SCHEMA`): ``[cooperation]`` (:class:`Cooperation`) pays
``half_up(max(claims, 0) × uplift)`` to a member whose referral rate (its cases in an ``up`` or
``down`` link, as child or parent, ÷ its cases) reaches ``referral_rate_min`` and, when asked,
that shares results; ``[synergy_fund]`` (:class:`SynergyFund`) sets ``half_up(kept × share)`` of
an alliance's kept package surplus aside from the members' positive package adjustments and pays
it out by ``split_by``. :func:`split_dataset` writes the same table (``cooperation``) when the
model has either section.

Rounding: one rule, largest remainder
-------------------------------------
Every split of an amount ``T`` among parties with exact weights ``w_i`` gives each party
``floor(|T|·w_i/Σw)`` and then one more cent to the parties with the largest fractional
remainders, as many as cents are left, ties going to the smaller member id (hospital id, binary
string order); for ``T < 0`` the same is done on ``|T|`` and negated. ``split(T, s)`` is the
two-party case (payee with share ``s``, payer with ``1 − s``); in a cost increase the members
come before the suppliers on a tie. So every allocation adds up exactly, and the result does
not depend on row order or batch size.
"""

from ._allocate import COOPERATION_SCHEMA, cooperation_outcome
from ._model import (
    Alliance,
    AllianceError,
    AllianceModel,
    AllianceRules,
    Cooperation,
    CostIncrease,
    JointService,
    Member,
    SharedCost,
    SynergyFund,
    builtin_models,
    load_model,
)
from ._split import AllianceSplit, largest_remainder, split, split_batches

__all__ = [
    "COOPERATION_SCHEMA",
    "Alliance",
    "AllianceDatasetResult",
    "AllianceError",
    "AllianceModel",
    "AllianceRules",
    "AllianceSplit",
    "Cooperation",
    "CostIncrease",
    "JointService",
    "Member",
    "SharedCost",
    "SynergyFund",
    "builtin_models",
    "cooperation_outcome",
    "largest_remainder",
    "load_model",
    "split",
    "split_batches",
    "split_dataset",
]


def __getattr__(name: str):
    # the partitioned split imports the runners (Parquet datasets, Dask): only when used
    if name in ("split_dataset", "AllianceDatasetResult"):
        from . import _dataset

        return getattr(_dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
