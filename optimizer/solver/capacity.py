"""Card ledger: cards left per type, and who used them, for every solver and saturation policy.

Callers: :mod:`greedy`, :mod:`milp` (to replay its choice), :mod:`saturation`, :mod:`assemble`.
Capacity is counted in cards of a type: an allocation of ``r`` replicas of a candidate uses
``r * cards_per_replica`` cards of ``acc_type``. A type missing from the capacity map has 0 cards.
In unlimited mode the ledger is unbounded (``limited=False``): everything fits, usage is still
recorded so the totals can be reported.
"""

from __future__ import annotations

from collections.abc import Mapping

from optimizer.solver.problem import Candidate


class CardLedger:
    """Mutable within one solve only; a solver makes a fresh ledger per call."""

    def __init__(self, capacity_cards: Mapping[str, int], *, limited: bool = True) -> None:
        self._capacity_cards = dict(capacity_cards)
        self._used_cards: dict[str, int] = {}
        self._used_by_priority: dict[str, dict[int, int]] = {}
        self.limited = limited

    def capacity(self, acc_type: str) -> int:
        return self._capacity_cards.get(acc_type, 0)

    def used(self, acc_type: str) -> int:
        return self._used_cards.get(acc_type, 0)

    def left(self, acc_type: str) -> int:
        return self.capacity(acc_type) - self.used(acc_type)

    def fits(self, candidate: Candidate, replicas: int) -> bool:
        return not self.limited or replicas * candidate.cards_per_replica <= self.left(candidate.acc_type)

    def replicas_that_fit(self, candidate: Candidate, cap: int) -> int:
        """Most replicas of ``candidate`` (at most ``cap``) that the cards left can hold."""
        if not self.limited or candidate.cards_per_replica <= 0:
            return cap
        return max(0, min(cap, self.left(candidate.acc_type) // candidate.cards_per_replica))

    def take(self, candidate: Candidate, replicas: int, priority: int) -> None:
        cards = replicas * candidate.cards_per_replica
        kind = candidate.acc_type
        self._used_cards[kind] = self.used(kind) + cards
        by_priority = self._used_by_priority.setdefault(kind, {})
        by_priority[priority] = by_priority.get(priority, 0) + cards

    def used_cards_by_type(self) -> dict[str, int]:
        return dict(sorted(self._used_cards.items()))

    def within_capacity(self) -> bool:
        return not self.limited or all(self.left(kind) >= 0 for kind in self._used_cards)

    def shortfall(self, candidate: Candidate, replicas: int) -> str:
        """Why ``replicas`` of ``candidate`` do not fit, naming who holds the cards.

        >>> ledger = CardLedger({"A100": 16})
        >>> a100 = Candidate("A100", "A100", 3, 8, 40.0, 4, 1.0, 20.0, 50.0, 0.5)
        >>> ledger.take(a100, 3, priority=1)
        >>> ledger.shortfall(a100, 3)
        'A100 x3 needs 12 A100 cards, 4 of 16 left (used by priority 1: 12)'
        """
        kind = candidate.acc_type
        need = replicas * candidate.cards_per_replica
        text = f"{candidate.accelerator} x{replicas} needs {need} {kind} cards, {self.left(kind)} of "
        text += f"{self.capacity(kind)} left"
        holders = self._used_by_priority.get(kind, {})
        if holders:
            parts = ", ".join(f"{p}: {n}" for p, n in sorted(holders.items()))
            text += f" (used by priority {parts})"
        return text
