"""Check a policy's computed standards against the standards its table publishes."""

from __future__ import annotations

from decimal import Decimal

import attrs

from .._money import round_cents
from ._policy import Policy
from ._price import PriceBook


@attrs.frozen(slots=True)
class PublishedCheck:
    checked: int
    mismatches: tuple[str, ...]


def check_published(policy: Policy) -> PublishedCheck:
    """Every published standard (支付标准) of the table, per level, against the standard the
    policy computes for a normal case of the first scheme, both rounded to the cent."""
    book = PriceBook(policy)
    scheme = book.schemes[0]
    checked = 0
    bad: list[str] = []
    for row in policy.weights.rows.values():
        for level, published in row.published.items():
            std, _rw, why = book.standard(row, level, scheme, Decimal(1))
            checked += 1
            if std is None:
                bad.append(f"{row.code} level {level}: published {published}, drgkit: {why}")
            elif round_cents(std) != round_cents(published):
                bad.append(f"{row.code} level {level}: published {published}, computed {std}")
    return PublishedCheck(checked, tuple(bad))
