"""Why a bill would (not) be sent: routing without recording (``engine.explain``).

The answer is the one submission would give now: the same routing function over the same
integrations, delivery ledger and open runs, but nothing is stored, no run is queued and no skip
is written.
"""

from __future__ import annotations

import attrs

from billbridge.domain.intake import AccountInput, BillInput, read_pair_at
from billbridge.domain.models import Account, Bill, Integration
from billbridge.domain.routing import Routed, route_many
from billbridge.store import UnitOfWork, UnitOfWorkFactory

__all__ = ["Explainer", "Explanation", "RoutingDecision"]


@attrs.frozen
class RoutingDecision:
    """Whether one integration would take the bill, and if not, why."""

    integration: Integration
    take: bool
    reason: str | None = None


@attrs.frozen
class Explanation:
    """Every integration's decision for one bill version."""

    bill: Bill
    account: Account
    decisions: tuple[RoutingDecision, ...]

    @property
    def taken_by(self) -> tuple[Integration, ...]:
        """The integrations that would queue a run."""
        return tuple(d.integration for d in self.decisions if d.take)


class Explainer:
    """Routes bills the way submission does, and records nothing."""

    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def explain(
        self, bill: BillInput, account: AccountInput, *, base_path: str = ""
    ) -> Explanation:
        """Which integrations would take this bill version now, and why the others would not.

        :raises ValidationFailed: the bill or account is refused (paths under
            ``{base_path}/bill`` and ``{base_path}/account``).
        """
        parsed_bill, parsed_account = read_pair_at(bill, account, base_path)

        def decide(uow: UnitOfWork) -> list[Routed]:
            ids = [parsed_bill.id]
            return route_many(
                [(parsed_bill, parsed_account)],
                uow.integrations.list(entity_type="Bill"),
                delivered=uow.ledger.delivered_versions(ids),
                queued=uow.runs.queued_versions(ids),
            )

        with self._uow() as uow:  # read only: leaving without a commit stores nothing
            routed = decide(uow)
        return Explanation(
            parsed_bill,
            parsed_account,
            tuple(
                RoutingDecision(item.integration, item.decision.take, item.decision.reason)
                for item in routed
            ),
        )
