"""API shapes (responses and the batch request); command models are the request bodies."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

# Instants and dates are the strings the routes write (RFC 3339 with offset; ISO dates);
# decimals are exact strings.
Instant = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Day = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]
Money = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$",
                                       "description": "An exact decimal as a string."})]
Month = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^\d{4}-\d{2}$"})]
Section = dict[str, Any]


class WriteResult(BaseModel):
    id: UUID = Field(description="The id of the aggregate written (new or existing).")
    version: int = Field(description="Its stream version after the write (use in If-Match).")
    position: int = Field(description="Global position of the write; pass as ?min_position= "
                                      "to read your own write.")
    links: dict[str, UUID] = Field(default_factory=dict,
                                   description="Ids of what the write also created, e.g. the "
                                               "situation a complaint opened.")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str = Field(description="A command name, e.g. register_client, log_contact.",
                         examples=["log_contact"])
    data: dict[str, Any] = Field(description="The command's fields, ids included.")
    if_match: int | None = Field(default=None, description="Expected version of the target.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[BatchItem], Field(min_length=1, max_length=1000)]


class BatchResult(BaseModel):
    results: list[WriteResult]
    position: int


class Actor(BaseModel):
    user: str
    role: str


class EventOut(BaseModel):
    event_id: UUID
    type: str
    position: int
    stream_id: UUID
    version: int
    client_id: UUID | None
    occurred_at: Instant
    recorded_at: Instant
    actor: Actor
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at "
                                                "the end.")


class ProblemField(BaseModel):
    field: str = Field(description="The offending field: `path.x`, `query.x`, a body field "
                                   "(dotted), `items.N.data.x` in a batch, or `body`.")
    message: str
    type: str | None = Field(default=None, description="The kind of error, when known.")


class Problem(BaseModel):
    """An RFC 9457 problem, served as application/problem+json."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = Field(default=None, description="The offending fields.")
    current_version: int | None = Field(default=None, description="On a stale If-Match (409): "
                                                                  "the target's version now.")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}},
             "description": desc}
    for status, desc in ((401, "No or unknown API key"), (403, "Role not allowed"),
                         (404, "Unknown id"), (409, "State or version conflict"),
                         (413, "Request body too large"),
                         (422, "Invalid input; `errors` names the fields"),
                         (429, "Rate limit exceeded (see Retry-After)"),
                         (503, "Store unavailable or read models behind (see Retry-After)"))
}


# ---------------------------------------------------------------------------------------------
# Response shapes of the reads. They describe the bodies the routes build (the routes keep
# building them as before and return them as they are; tests/api/test_openapi.py compares real
# answers against these schemas).



class Profile(BaseModel):
    kind: str
    form: str
    name: str
    tax_id: str | None = None
    phones: list[str]
    emails: list[str]
    address: str | None = None
    tags: list[str]


class ContactPersonView(BaseModel):
    person_id: UUID
    name: str
    role: str
    phones: list[str]
    emails: list[str]
    notes: str | None = None


class ContactPersonsByRole(BaseModel):
    decision_maker: list[ContactPersonView] = Field(default_factory=list)
    contact: list[ContactPersonView] = Field(default_factory=list)
    influencer: list[ContactPersonView] = Field(default_factory=list)
    user: list[ContactPersonView] = Field(default_factory=list)


class ContactView(BaseModel):
    contact_id: UUID
    at: Instant
    topic: str
    channel: str
    purpose: str | None = None


class PlannedContactView(BaseModel):
    planned_contact_id: UUID
    purpose: str
    due_at: Instant
    overdue: bool
    specialist_id: UUID | None = None
    note: str | None = None


class AgreementView(BaseModel):
    agreement_id: UUID
    text: str
    due_at: Instant
    made_at: Instant
    overdue: bool


class OpenSituationView(BaseModel):
    situation_id: UUID
    kind: str
    opened_at: Instant


class PaymentRegularity(BaseModel):
    on_time: int
    due: int
    percent: Money | None = Field(description="Share of invoices paid by their due date; "
                                              "null when none was due.")


class PromiseTally(BaseModel):
    """Agreements kept, broken and open at `at` as known at `as_of` (docs/decisions.md,
    "Promise keeping")."""

    agreements: int
    kept: int
    kept_on_time: int
    kept_late: int
    broken: int
    open: int
    overdue: int = Field(description="Open agreements due before `at`.")
    kept_rate: Money | None = Field(description="kept / (kept + broken) in percent; null when "
                                                "none is decided.")


class DissatisfiedSituation(BaseModel):
    situation_id: UUID
    kind: str
    opened_at: Instant
    state: str = Field(description="open | resolved (at `at`)")
    resolved_at: Instant | None


class UntickedQuestion(BaseModel):
    question_id: str
    stage: str
    text: str


class DissatisfiedSurvey(BaseModel):
    survey_id: UUID
    work_order_id: UUID
    completed_at: Instant
    questions: list[UntickedQuestion]


class ComplaintView(BaseModel):
    complaint_id: UUID
    at: Instant
    stage: str | None
    work_order_id: UUID | None
    text: str | None


class LastDissatisfaction(BaseModel):
    """The client's unresolved or recent dissatisfaction (docs/decisions.md, "Reception
    alert"); null when there is none."""

    unresolved: bool
    window_days: int
    since: Instant
    situations: list[DissatisfiedSituation]
    surveys: list[DissatisfiedSurvey]
    complaints: list[ComplaintView]


class SuggestedAction(BaseModel):
    rule: str = Field(description="The rule that applies (domain.suggestions).")
    action: str = Field(description="The purpose of the contact to make.")
    priority: int
    reason: dict[str, Any] = Field(description="The facts behind it: ids, instants, counts.")


class Suggestions(BaseModel):
    """A client's next actions at `at` as known at `as_of`, highest priority first."""

    client_id: UUID
    at: Instant
    as_of: Instant | None
    items: list[SuggestedAction]


class SpecialistReason(BaseModel):
    model_config = ConfigDict(extra="allow")
    rule: str = Field(description="competence | history | assigned | assigned_before | "
                                  "promises")
    points: int


class SuggestedSpecialist(BaseModel):
    specialist_id: UUID
    points: int
    reasons: list[SpecialistReason]


class SuggestedSpecialists(BaseModel):
    """Specialists for the client's needs (contact purposes), most points first."""

    client_id: UUID
    at: Instant
    as_of: Instant | None
    needs: list[str]
    items: list[SuggestedSpecialist]


class SatisfactionEntry(BaseModel):
    survey_id: UUID
    work_order_id: UUID
    completed_at: Instant
    outcome: str
    satisfied: int
    answered: int


class Completeness(BaseModel):
    score: Money
    missing: list[str]
    checklist: list[str]


class ClientCard(BaseModel):
    """The client card (§5) at `at` as known at `as_of`."""

    client_id: UUID
    at: Instant
    as_of: Instant | None
    profile: Profile
    interests: list[str]
    specialist_id: UUID | None
    registered_at: Instant
    erased: bool
    contact_persons: ContactPersonsByRole
    last_contact: ContactView | None
    next_planned_contact: PlannedContactView | None
    open_agreements: list[AgreementView]
    overdue_agreements: list[AgreementView]
    promises: PromiseTally
    open_situations: list[OpenSituationView]
    last_dissatisfaction: LastDissatisfaction | None
    payment_regularity: PaymentRegularity
    satisfaction_history: list[SatisfactionEntry]
    segment: str
    completeness: Completeness
    position: int


class MissingData(BaseModel):
    client: list[str]
    decision_maker: list[str]


class ClientBrief(BaseModel):
    """What a contact of one purpose needs; `sections` names the sections present."""

    client_id: UUID
    purpose: str
    at: Instant
    as_of: Instant | None
    name: str
    form: str
    kind: str
    specialist_id: UUID | None
    sections: list[str]
    last_contact: ContactView | None = None
    last_meeting: ContactView | None = None
    plan: PlannedContactView | None = None
    open_agreements: list[AgreementView] | None = None
    recent_topics: list[ContactView] | None = None
    interests: list[str] | None = None
    payment_regularity: PaymentRegularity | None = None
    missing: MissingData | None = None
    decision_makers: list[ContactPersonView] | None = None
    contact_persons: ContactPersonsByRole | None = None
    works: list[Section] | None = None
    overdue_invoices: list[Section] | None = None
    payments_last_90_days: list[Section] | None = None
    acts_not_returned: list[Section] | None = None
    open_situations: list[OpenSituationView] | None = None
    last_dissatisfaction: LastDissatisfaction | None = None
    satisfaction_history: list[SatisfactionEntry] | None = None


class ClientListItem(BaseModel):
    client_id: UUID
    kind: str
    form: str
    name: str
    tax_id: str | None = None
    specialist_id: UUID | None
    registered_at: Instant
    erased: bool


class ClientList(BaseModel):
    items: list[ClientListItem]
    next_cursor: str | None


class SurveyState(BaseModel):
    attempts: int
    last_outcome: str | None = None
    completed_at: Instant | None = None


class WorkOrderItem(BaseModel):
    work_order_id: UUID
    client_id: UUID
    asset: str | None
    opened_at: Instant
    closed_at: Instant | None
    age_days: int | None
    status: str
    survey: SurveyState | None


class WorkOrderRegister(BaseModel):
    at: Instant
    as_of: Instant
    timezone: str
    items: list[WorkOrderItem]
    next_cursor: str | None


class Clock(BaseModel):
    state: str
    status: str
    stopped_at: Instant | None = None
    stop_event_id: UUID | None = None
    wall_seconds: int | None = None
    business_seconds: int | None = None
    target_seconds: int | None = None
    deadline: Instant | None = None


class SituationSummary(BaseModel):
    situation_id: UUID
    client_id: UUID | None
    kind: str
    trigger: str
    trigger_event_id: UUID | None
    specialist_id: UUID | None
    status: str
    opened_at: Instant
    recorded_at: Instant
    breached: bool
    first_reaction: Clock
    resolution: Clock


class SituationList(BaseModel):
    at: Instant
    as_of: Instant
    calendar: str
    items: list[SituationSummary]
    next_cursor: str | None


class EvidenceEvent(BaseModel):
    event_id: UUID
    type: str
    stream_id: UUID
    version: int
    position: int
    occurred_at: Instant
    recorded_at: Instant
    counted_at: Instant
    effects: list[str]


class SituationEvidence(BaseModel):
    situation_id: UUID
    client_id: UUID | None
    kind: str
    trigger: str
    trigger_event_id: UUID | None
    specialist_id: UUID | None
    status: str
    at: Instant
    as_of: Instant
    calendar_basis: str
    events: list[EvidenceEvent]
    clocks: dict[str, Section]


class Share(BaseModel):
    satisfied: int
    answered: int
    percent: Money | None


class SurveyCounts(BaseModel):
    attempted: int
    completed: int
    reach_percent: Money | None


class QuestionShare(BaseModel):
    template_id: UUID
    question_id: str
    stage: str
    text: str
    satisfied: int
    answered: int
    percent: Money | None


class StageShare(BaseModel):
    stage: str
    satisfied: int
    answered: int
    percent: Money | None
    complaints: int


class ComplaintCounts(BaseModel):
    total: int
    without_stage: int
    by_stage: dict[str, int]


class SatisfactionMonth(BaseModel):
    month: Month
    surveys: SurveyCounts
    fully_satisfied: Share
    questions: list[QuestionShare]
    stages: list[StageShare]
    stages_worst_first: list[StageShare]
    complaints: ComplaintCounts


class SatisfactionSegment(BaseModel):
    segment: str = Field(description="The clients' segment at `at`.")
    surveys: SurveyCounts
    fully_satisfied: Share
    stages: list[StageShare]
    complaints: ComplaintCounts


class SatisfactionReport(BaseModel):
    at: Instant
    as_of: Instant
    timezone: str
    from_: Instant | None = Field(alias="from")
    to: Instant | None
    specialist: UUID | None
    segment: str | None = Field(default=None, description="Only clients in this segment at "
                                                          "`at`.")
    by_segment: list[SatisfactionSegment] | None = Field(
        default=None, description="With by_segment=true: the figures per segment at `at`.")
    surveys: SurveyCounts
    fully_satisfied: Share
    questions: list[QuestionShare]
    stages: list[StageShare]
    stages_worst_first: list[StageShare]
    complaints: ComplaintCounts
    months: list[SatisfactionMonth]


class SegmentBoundaries(BaseModel):
    active_from: Day
    low_active_from: Day
    at_risk_from: Day


class SegmentCounts(BaseModel):
    active: int
    low_active: int
    at_risk: int
    lost: int
    never: int


class LoyaltyMatrix(BaseModel):
    window: Section
    currency: str | None
    visit_bands: list[Section]
    revenue_bands: list[Section]
    clients: list[list[int]]


class SegmentTransitions(BaseModel):
    from_date: Day
    to_date: Day
    items: list[Section]


class SegmentMembers(BaseModel):
    segment: str
    items: list[UUID]
    next_cursor: UUID | None


class SegmentsReport(BaseModel):
    at: Instant
    as_of: Instant
    timezone: str
    date: Day
    boundaries: SegmentBoundaries
    total: int
    counts: SegmentCounts
    matrix: LoyaltyMatrix
    transitions: SegmentTransitions
    clients: SegmentMembers | None = None


class ReactionGroup(BaseModel):
    specialist_id: UUID | None
    kind: str
    count: int
    situation_ids: list[UUID]
    first_reaction: Section
    resolution: Section


class ReactionTotals(BaseModel):
    count: int
    situation_ids: list[UUID]
    first_reaction: Section
    resolution: Section


class ReactionTimesReport(BaseModel):
    at: Instant
    as_of: Instant
    calendar: str
    from_: Instant | None = Field(alias="from")
    to: Instant | None
    kind: str | None
    specialist_id: UUID | None
    percentile_method: str
    groups: list[ReactionGroup]
    totals: ReactionTotals
    ids_truncated: bool


class PlanFigures(BaseModel):
    plan: Money | None = Field(description="Sum of the latest plans of the months (null: none).")
    fact: Money = Field(description="Payments that occurred in the months up to the moment.")
    remaining: Money | None = Field(description="Plan minus fact, never below 0.")
    percent_of_plan: Money | None


class TwoMonths(PlanFigures):
    months: list[Month]


class PaymentsChange(BaseModel):
    since: Day | None = Field(description="The previous business day (its end).")
    fact_then: Money
    percent_of_plan_then: Money | None
    fact_change: Money
    percent_points: Money | None


class PaymentsDay(BaseModel):
    date: Day
    paid: Money
    collected: Money = Field(description="Cumulative from the period's first day.")
    percent_of_plan: Money | None


class PaymentsMark(BaseModel):
    date: Day = Field(description="The 20th of a month of the period.")
    target: Money | None = Field(description="Earlier months' plans plus 80% of this month's.")
    target_percent_of_plan: Money | None
    collected: Money | None = Field(description="The curve on that day (or its last day yet).")
    reached: bool | None = Field(description="null until met or until the 20th has ended.")


class PaymentsForecast(BaseModel):
    straight_line: Money | None = Field(description="fact / days elapsed x days in period.")
    straight_line_percent_of_plan: Money | None
    expected: Money = Field(description="fact + invoices_due + promised.")
    expected_percent_of_plan: Money | None
    invoices_due: Money = Field(description="Outstanding on invoices due after `at`, in the "
                                            "period.")
    promised: Money = Field(description="Overdue balances of clients with an open promise to "
                                        "pay dated after `at`, in the period.")


class DebtorCount(BaseModel):
    count: int
    outstanding: Money


class PaymentsLine(PlanFigures):
    currency: str
    plan_months: list[Month]
    last_two_months: TwoMonths
    change: PaymentsChange
    daily: list[PaymentsDay]
    marks: list[PaymentsMark]
    forecast: PaymentsForecast
    debtors: DebtorCount
    acts_not_returned: int


class SpecialistPayments(PaymentsLine):
    specialist_id: UUID | None


class CurrencyAmount(BaseModel):
    currency: str
    amount: Money


class DebtorInvoice(BaseModel):
    invoice_id: UUID
    number: str
    due_at: Instant
    amount: Money
    outstanding: Money


class Debtor(BaseModel):
    client_id: UUID
    specialist_id: UUID | None
    currency: str
    outstanding: Money
    oldest_due_at: Instant
    invoices: list[DebtorInvoice]


class DebtorsPage(BaseModel):
    sort: str
    total: int = Field(description="Every debtor of the report (exact), not just this page.")
    outstanding: list[CurrencyAmount]
    items: list[Debtor]
    next_cursor: str | None = Field(description="Pass as debtors_cursor for the next page.")


class ActNotReturned(BaseModel):
    invoice_id: UUID
    client_id: UUID
    specialist_id: UUID | None
    number: str
    act_sent_at: Instant


class ActsPage(BaseModel):
    total: int
    items: list[ActNotReturned]


class PaymentsReport(BaseModel):
    period: str = Field(examples=["2026-11", "2026-Q4"])
    kind: str = Field(description="month | quarter")
    months: list[Month]
    first_day: Day
    last_day: Day
    tz: str
    at: Instant
    as_of: Instant | None
    days_in_period: int
    day_of_period: int
    two_months: list[Month]
    previous_business_day: Day | None
    totals: list[PaymentsLine] = Field(description="Per currency, over the lines shown.")
    specialists: list[SpecialistPayments]
    debtors: DebtorsPage
    acts_not_returned: ActsPage


class SpecialistEntry(BaseModel):
    specialist_id: UUID
    name: str
    email: str | None
    user_id: str | None
    registered_at: Instant
    recorded_at: Instant


class SpecialistList(BaseModel):
    as_of: Instant | None
    items: list[SpecialistEntry]


class TemplateQuestion(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    stage: str
    text: str


class TemplateVersion(BaseModel):
    version: int
    name: str
    questions: list[TemplateQuestion]
    occurred_at: Instant
    recorded_at: Instant


class SurveyTemplateEntry(BaseModel):
    template_id: UUID
    version: int = Field(description="The newest version known at `as_of`.")
    name: str
    questions: list[TemplateQuestion]
    versions: list[TemplateVersion]


class SurveyTemplateList(BaseModel):
    as_of: Instant | None
    items: list[SurveyTemplateEntry]


class CalendarEntry(BaseModel):
    calendar_id: UUID
    name: str | None
    version: int
    definition: Section = Field(description="timezone, hours per weekday (minutes), holidays.")
    recorded_at: Instant


class CalendarList(BaseModel):
    as_of: Instant | None
    items: list[CalendarEntry]


class SlaTargetEntry(BaseModel):
    situation_kind: str
    version: int
    first_reaction_seconds: int
    resolution_seconds: int
    business_hours: bool
    warn_ratio: str
    calendar_id: UUID | None
    recorded_at: Instant


class SlaTargetList(BaseModel):
    as_of: Instant | None
    items: list[SlaTargetEntry]


class PlanEntry(BaseModel):
    specialist_id: UUID
    month: Month
    amount: Money
    currency: str
    set_at: Instant
    recorded_at: Instant


class PlanList(BaseModel):
    as_of: Instant | None
    items: list[PlanEntry]


class ControlThresholds(BaseModel):
    late_entry_hours: float
    late_entry_period_days: int
    feedback_days: int
    items_per_section: int


class ControlSection(BaseModel):
    """A page of a controls section: the exact count, the items in `sort` order, and the
    cursor of the next page (null on the last)."""

    count: int
    items: list[Section]
    truncated: bool | None = None
    sort: str | None = None
    next_cursor: str | None = None


class ControlSectionPage(ControlSection):
    """One page of one controls section (GET /v1/reports/controls/{section})."""

    section: str
    at: Instant
    as_of: Instant | None
    specialist_id: UUID | None


class PromiseMonth(PromiseTally):
    month: Month


class PromiseSpecialist(PromiseTally):
    specialist_id: UUID | None
    by_month: list[PromiseMonth]


class PromiseKeeping(BaseModel):
    """Agreements due in each calendar month of the window, kept/broken/open at `at`."""

    months: list[Month]
    tz: str
    rules: str
    total: PromiseTally
    by_month: list[PromiseMonth]
    by_specialist: list[PromiseSpecialist]


class ControlsReport(BaseModel):
    at: Instant
    as_of: Instant | None
    specialist_id: UUID | None
    thresholds: ControlThresholds
    overdue_planned_contacts: ControlSection
    late_data_entry: ControlSection
    card_completeness: ControlSection
    overdue_agreements: ControlSection
    work_without_feedback: ControlSection
    reaction_time_breaches: ControlSection | None = None
    promise_keeping: PromiseKeeping | None = None


class ExportHeader(BaseModel):
    """The first line of an export: what it holds (docs/bus.md, docs/audit-format.md)."""

    model_config = ConfigDict(extra="allow")
    crmexport: int
    scope: str
    client: UUID | None = None
    from_: Instant | None = Field(default=None, alias="from")
    to: Instant | None = None
    after: int


class AuditEvent(BaseModel):
    """One stored event as a CloudEvent (structured JSON) with its hashes and stored bytes."""

    model_config = ConfigDict(extra="allow")
    specversion: str
    id: str
    source: str
    type: str
    subject: str | None = None
    time: Instant | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    position: int
    stream: UUID | None = None
    version: int | None = None
    recordedtime: Instant | None = None
    actor: str | None = None
    actorrole: str | None = None
    data: Any = None
    hash: str


class AuditEventPage(BaseModel):
    header: ExportHeader
    items: list[AuditEvent]
    next_cursor: str | None


class ChainReport(BaseModel):
    ok: bool
    events: int
    problem: str | None
    position: int | None
    detail: str | None
    last_chain_hash: str | None


class ReceiptList(BaseModel):
    items: list[Section]


class SchemaEntry(BaseModel):
    type: str = Field(description="The event type's name, e.g. ContactLogged.")
    cloudevents_type: str = Field(description="Its CloudEvents `type`, e.g. crm.ContactLogged.v1.")
    url: str = Field(description="Where its JSON Schema is served.")


class SchemaList(BaseModel):
    items: list[SchemaEntry]
    next_cursor: str | None


class JsonSchemaDocument(BaseModel):
    """A JSON Schema (draft 2020-12) document; `$id` is its absolute URI."""

    model_config = ConfigDict(extra="allow")
    id_: str = Field(alias="$id")
    schema_: str = Field(alias="$schema")
    title: str
    type: str


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    mode: str
    store: Section
    read_models: Section


def described(model: type[BaseModel], status: int = 200) -> dict[str, Any]:
    """Route arguments that declare `model` as the answer's schema in OpenAPI while the route
    returns its body as it builds it (no re-serialisation: bodies stay byte for byte)."""
    return {"response_model": None, "responses": {status: {"model": model}}}
