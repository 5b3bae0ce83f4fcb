"""Card ledger: cards left per type, and who used them, for every solver and saturation policy.

Callers: :mod:`greedy`, :mod:`milp` (to replay its choice), :mod:`saturation`, :mod:`assemble`.
Capacity is counted in cards of a type: an allocation of ``r`` replicas of a candidate uses
``r * cards_per_replica`` cards of ``acc_type``. A type missing from the capacity map has 0 cards.
In unlimited mode the ledger is unbounded (``limited=False``): everything fits, usage is still
recorded so the totals can be reported.

Reservations (:mod:`optimizer.solver.reservations`): the cards running servers keep are taken off
at the start. Calls that name the ``server`` count its own reserved cards of the candidate's type
as available to it (its *credit*); :meth:`CardLedger.take` uses the credit first. E.g. 8 A100
cards, Free reserves 1: 7 are left for others, and Free itself fits 8 (its 1 plus the 7).
"""

from __future__ import annotations

from collections.abc import Mapping

from optimizer.solver.problem import Candidate, Reservation


class CardLedger:
    """Mutable within one solve only; a solver makes a fresh ledger per call."""

    def __init__(
        self,
        capacity_cards: Mapping[str, int],
        *,
        limited: bool = True,
        reservations: Mapping[str, Reservation] | None = None,
    ) -> None:
        self._capacity_cards = dict(capacity_cards)
        self._used_cards: dict[str, int] = {}
        self._used_by_priority: dict[str, dict[int, int]] = {}
        self._credit: dict[str, tuple[str, int]] = {}
        self.limited = limited
        for name, reservation in (reservations or {}).items() if limited else ():
            self._credit[name] = (reservation.acc_type, reservation.cards)
            self._charge(reservation.acc_type, reservation.cards, reservation.priority)

    def capacity(self, acc_type: str) -> int:
        return self._capacity_cards.get(acc_type, 0)

    def used(self, acc_type: str) -> int:
        return self._used_cards.get(acc_type, 0)

    def left(self, acc_type: str) -> int:
        return self.capacity(acc_type) - self.used(acc_type)

    def credit(self, server: str, acc_type: str) -> int:
        """Held cards of ``acc_type`` that ``server`` has not used yet (0 for other types)."""
        kind, cards = self._credit.get(server, ("", 0))
        return cards if kind == acc_type else 0

    def fits(self, candidate: Candidate, replicas: int, server: str = "") -> bool:
        extra = replicas * candidate.cards_per_replica - self.credit(server, candidate.acc_type)
        return not self.limited or extra <= 0 or extra <= self.left(candidate.acc_type)

    def replicas_that_fit(self, candidate: Candidate, cap: int, server: str = "") -> int:
        """Most replicas of ``candidate`` (at most ``cap``) that the cards left, plus ``server``'s
        own reserved cards of that type, can hold."""
        if not self.limited or candidate.cards_per_replica <= 0:
            return cap
        room = max(self.left(candidate.acc_type), 0) + self.credit(server, candidate.acc_type)
        return max(0, min(cap, room // candidate.cards_per_replica))

    def take(self, candidate: Candidate, replicas: int, priority: int, server: str = "") -> None:
        """Charge ``replicas`` of ``candidate``; ``server``'s reserved cards of that type go first."""
        cards = replicas * candidate.cards_per_replica
        kind = candidate.acc_type
        own = min(self.credit(server, kind), cards)
        if own > 0:
            self._credit[server] = (kind, self._credit[server][1] - own)
        self._charge(kind, cards - own, priority)

    def _charge(self, kind: str, cards: int, priority: int) -> None:
        self._used_cards[kind] = self.used(kind) + cards
        by_priority = self._used_by_priority.setdefault(kind, {})
        by_priority[priority] = by_priority.get(priority, 0) + cards

    def reserved_cards(self) -> dict[str, int]:
        """Held cards no assignment has used, per type: kept by servers left as they are, or by
        servers moving to another type this cycle."""
        out: dict[str, int] = {}
        for kind, cards in self._credit.values():
            if cards > 0:
                out[kind] = out.get(kind, 0) + cards
        return dict(sorted(out.items()))

    def used_cards_by_type(self) -> dict[str, int]:
        return dict(sorted(self._used_cards.items()))

    def within_capacity(self) -> bool:
        return not self.limited or all(self.left(kind) >= 0 for kind in self._used_cards)

    def shortfall(self, candidate: Candidate, replicas: int, server: str = "") -> str:
        """Why ``replicas`` of ``candidate`` do not fit, naming who holds the cards.

        >>> ledger = CardLedger({"A100": 16})
        >>> a100 = Candidate("A100", "A100", 3, 8, 40.0, 4, 1.0, 20.0, 50.0, 0.5)
        >>> ledger.take(a100, 3, priority=1)
        >>> ledger.shortfall(a100, 3)
        'A100 x3 needs 12 A100 cards, 4 of 16 left (used by priority 1: 12)'
        """
        kind = candidate.acc_type
        own = self.credit(server, kind)
        need = replicas * candidate.cards_per_replica
        text = f"{candidate.accelerator} x{replicas} needs {need} {kind} cards"
        if own > 0:
            text += f" ({own} of them its own)"
        text += f", {max(self.left(kind), 0)} of {self.capacity(kind)} left"
        holders = self._used_by_priority.get(kind, {})
        if holders:
            parts = ", ".join(f"{p}: {n}" for p, n in sorted(holders.items()))
            text += f" (used by priority {parts})"
        return text
