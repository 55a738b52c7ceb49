"""Every projection the system maintains, in the order they are applied."""

from __future__ import annotations

from projections.activity import Activity
from projections.base import Projection
from projections.card import ClientCard
from projections.clients import ClientDirectory
from projections.control_facts import ControlFacts
from projections.history import ClientHistory
from projections.invoice_settlement import InvoiceSettlement
from projections.payment_sums import PaymentSums
from projections.payments import Payments
from projections.personal import Personal
from projections.promises import Promises
from projections.reception import Reception
from projections.reference import ReferenceData
from projections.satisfaction_tallies import SatisfactionTallies
from projections.segments import Segments
from projections.situations import SituationFactsProjection
from projections.surveys import ServiceSurveys


def all_projections(personal: Personal) -> list[Projection]:
    """`personal`: the keyring, for the directory's blind search index."""
    # One line per projection; keep names unique (they key the tracking table and receipts).
    return [
        ClientHistory(),
        ClientCard(),
        ClientDirectory(personal),
        Activity(),
        Payments(),
        ServiceSurveys(),
        Segments(),
        SituationFactsProjection(),
        ControlFacts(),
        Promises(),
        Reception(),
        ReferenceData(),
        PaymentSums(),
        InvoiceSettlement(),
        SatisfactionTallies(),
    ]
