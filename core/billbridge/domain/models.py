"""Domain model: attrs classes, frozen, with ``Decimal`` money and real dates.

Two groups:

* **m3ter's documents** (:class:`Bill`, :class:`LineItem`, :class:`Band`, :class:`Account`, ...),
  read from and written to m3ter's camelCase JSON by the one cattrs :data:`converter`. Reading is
  lossless: unknown fields are kept in ``extra`` and written back, ``usagePerPricingBand`` and
  ``bandUsage`` are both understood and written back under the name they came in, and unknown
  line item types are kept as the string they were.
* **billbridge's own records** (:class:`Credential`, :class:`Integration`,
  :class:`ExternalMapping`, :class:`Run`, :class:`Event`, :class:`LedgerEntry`), built by the
  repositories in :mod:`billbridge.store` from rows.

Explicit JSON ``null`` values of known fields are read as "absent" and are not written back:
m3ter omits null fields, so nothing is lost for its documents.
"""

from __future__ import annotations

import enum
import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import attrs
import cattrs
import simplejson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from billbridge.domain.admission import account_problems, bill_problems, nul_paths
from billbridge.domain.redaction import remember
from billbridge.errors import FieldError, ValidationFailed

__all__ = [
    "Account",
    "Address",
    "Band",
    "Bill",
    "BillEntityConfig",
    "Credential",
    "CredentialStatus",
    "CredentialTokens",
    "CurrencyConversion",
    "DocumentStatus",
    "Event",
    "EventType",
    "ExternalMapping",
    "GlobalConfig",
    "Integration",
    "InvoiceState",
    "LedgerEntry",
    "LineItem",
    "LineItemType",
    "Run",
    "RunAttempt",
    "RunStatus",
    "Secret",
    "Skip",
    "converter",
    "dumps",
    "frozen_map",
    "loads",
    "parse_account",
    "parse_bill",
    "thaw",
]


# --- secrets ---------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Secret:
    """A secret value (token, client secret) that does not show itself.

    ``repr``/``str`` print a mask, so a secret that ends up in a log line, an exception or a
    debugger shows nothing. Call :meth:`reveal` at the one place the value is really needed.
    Tests make one with ``Secret("...")`` (``Secret("")`` for a destination without OAuth).
    """

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        """The secret itself. Only for the code that sends it to its owner.

        The value is remembered, so that text echoing it back (a provider's error) is redacted
        before it is stored or shown (:mod:`billbridge.domain.redaction`).
        """
        remember(self._value)
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


# --- vocabulary --------------------------------------------------------------------------------


class LineItemType(enum.StrEnum):
    """The line item types m3ter documents today. Bills may carry others: they are kept as text."""

    STANDING_CHARGE = "STANDING_CHARGE"
    USAGE = "USAGE"
    COUNTER_RUNNING_TOTAL_CHARGE = "COUNTER_RUNNING_TOTAL_CHARGE"
    COUNTER_ADJUSTMENT_DEBIT = "COUNTER_ADJUSTMENT_DEBIT"
    COUNTER_ADJUSTMENT_CREDIT = "COUNTER_ADJUSTMENT_CREDIT"
    USAGE_CREDIT = "USAGE_CREDIT"
    MINIMUM_SPEND = "MINIMUM_SPEND"
    MINIMUM_SPEND_REFUND = "MINIMUM_SPEND_REFUND"
    CREDIT_DEDUCTION = "CREDIT_DEDUCTION"
    MANUAL_ADJUSTMENT = "MANUAL_ADJUSTMENT"
    CREDIT_MEMO = "CREDIT_MEMO"
    DEBIT_MEMO = "DEBIT_MEMO"
    COMMITMENT_CONSUMED = "COMMITMENT_CONSUMED"
    COMMITMENT_FEE = "COMMITMENT_FEE"
    OVERAGE_SURCHARGE = "OVERAGE_SURCHARGE"
    OVERAGE_USAGE = "OVERAGE_USAGE"
    BALANCE_CONSUMED = "BALANCE_CONSUMED"
    BALANCE_FEE = "BALANCE_FEE"
    AD_HOC = "AD_HOC"


class RunStatus(enum.StrEnum):
    """m3ter's run statuses, kept on purpose."""

    WAITING = "WAITING"
    STARTED = "STARTED"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    AWAITING_RETRY = "AWAITING_RETRY"
    AUTH_FAILED = "AUTH_FAILED"
    ACCOUNTING_PERIOD_CLOSED = "ACCOUNTING_PERIOD_CLOSED"
    INVOICE_ALREADY_PAID = "INVOICE_ALREADY_PAID"
    DISABLED = "DISABLED"
    TIMEOUT_LIMIT_EXCEEDED = "TIMEOUT_LIMIT_EXCEEDED"
    RATE_LIMIT_RETRY = "RATE_LIMIT_RETRY"
    #: Not sent: a newer version of the bill was delivered (or goes in its place). billbridge's
    #: own status (m3ter has none): sending an older version would overwrite a newer invoice.
    SUPERSEDED = "SUPERSEDED"

    @property
    def is_final(self) -> bool:
        """True when nothing more will happen to the run without a replay."""
        return self not in _OPEN_RUN_STATUSES


_OPEN_RUN_STATUSES = frozenset(
    {RunStatus.WAITING, RunStatus.STARTED, RunStatus.AWAITING_RETRY, RunStatus.RATE_LIMIT_RETRY}
)


class EventType(enum.StrEnum):
    """What a person must act on, or (``integration.invoice.*``) would want to know."""

    VALIDATION_ERROR = "integration.validation.error"
    MISSING_ACCOUNT_MAPPING = "integration.missingaccountmapping.error"
    AUTHENTICATION_ERROR = "integration.authentication.error"
    PERFORM_ERROR = "integration.perform.error"
    DISABLED = "integration.disabled.error"
    #: Read back from the destination: a delivered invoice is now paid in full.
    INVOICE_PAID = "integration.invoice.paid"
    #: Read back from the destination: a delivered invoice was voided or deleted there.
    INVOICE_VOIDED = "integration.invoice.voided"

    @property
    def is_error(self) -> bool:
        """True for the ``integration.*.error`` events, which count towards auto-disable;
        False for the informational ones (an invoice paid or voided at the destination)."""
        return self.value.endswith(".error")


class InvoiceState(enum.StrEnum):
    """What a delivered document has become at the destination, as read back from it."""

    UNPAID = "unpaid"
    PARTLY_PAID = "partly_paid"
    PAID = "paid"
    VOIDED = "voided"
    DELETED = "deleted"

    @property
    def settled(self) -> bool:
        """True when nothing more will happen to the document: paid in full, voided or
        deleted. Settled documents are not read back again, and a new version of their bill is
        not sent over them (INVOICE_ALREADY_PAID)."""
        return self in (InvoiceState.PAID, InvoiceState.VOIDED, InvoiceState.DELETED)


class CredentialStatus(enum.StrEnum):
    """Where a credential is in its life."""

    INCOMPLETE = "INCOMPLETE"
    COMPLETE = "COMPLETE"
    NEEDS_RECONNECT = "NEEDS_RECONNECT"


# --- m3ter documents ----------------------------------------------------------------------------

FrozenMap = Mapping[str, Any]
_EMPTY: FrozenMap = MappingProxyType({})


def frozen_map(value: Mapping[str, Any] | None) -> FrozenMap:
    """Store mappings read-only so a frozen object cannot be changed through a dict it holds."""
    if not value:
        return _EMPTY  # most objects have no extra fields: share one empty mapping
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value))


def thaw(value: Any) -> Any:
    """A deep, writable copy of read-only mappings and tuples as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def _extra_field() -> Any:
    return attrs.field(factory=dict, converter=frozen_map, kw_only=True, eq=True)


@attrs.frozen
class CurrencyConversion:
    """One entry of ``currencyConversions``: ``to = from × multiplier``."""

    from_: str | None = attrs.field(default=None, metadata={"json": "from"})
    """The currency converted from (``from`` in m3ter's JSON)."""
    to: str | None = None
    """The currency converted to."""
    multiplier: Decimal | None = None
    """``to = from × multiplier``, exactly."""
    extra: FrozenMap = _extra_field()
    """Fields of m3ter's JSON billbridge does not model, as received (read-only)."""


@attrs.frozen
class Band:
    """Usage in one pricing band of a tiered or volume price (``usagePerPricingBand[]``)."""

    pricing_band_id: str | None = None
    """m3ter's id of the pricing band (``pricingBandId``)."""
    lower_limit: Decimal | None = None
    """The quantity at which the band starts (``lowerLimit``)."""
    band_quantity: Decimal | None = None
    """The quantity priced in this band (``bandQuantity``)."""
    band_units: Decimal | None = None
    """The units priced in this band (``bandUnits``), when m3ter sends units apart from the
    quantity."""
    unit_price: Decimal | None = None
    """The price of one unit in this band (``unitPrice``)."""
    unit_subtotal: Decimal | None = None
    """``band quantity × unit price`` (``unitSubtotal``)."""
    fixed_price: Decimal | None = None
    """The band's fixed price, charged once whatever the quantity (``fixedPrice``)."""
    band_subtotal: Decimal | None = None
    """What the band costs in all: unit subtotal plus fixed price (``bandSubtotal``)."""
    converted_band_subtotal: Decimal | None = None
    """``band_subtotal`` in the bill's currency when the line was converted
    (``convertedBandSubtotal``)."""
    extra: FrozenMap = _extra_field()
    """Fields of m3ter's JSON billbridge does not model, as received (read-only)."""


BandsKey = Literal["usagePerPricingBand", "bandUsage"]


@attrs.frozen
class LineItem:
    """One line of a bill. Credits carry negative subtotals: follow the sign, never negate."""

    line_item_type: str
    """What the line charges for (``lineItemType``): one of :class:`LineItemType` (``USAGE``,
    ``STANDING_CHARGE``, ``MINIMUM_SPEND``, ``CREDIT_MEMO``...), or a type m3ter added since, kept
    as the text it came as (see ``known_type``)."""
    id: str | None = None
    """m3ter's id of the line."""
    sequence_number: int | None = None
    """The line's position on the bill (``sequenceNumber``)."""
    description: str | None = None
    """The line's text as m3ter shows it."""
    quantity: Decimal | None = None
    """How much was billed (``quantity``), e.g. API calls or seats."""
    units: Decimal | None = None
    """The billed units (``units``) when m3ter sends them apart from the quantity."""
    unit: str | None = None
    """The name of the unit (``unit``), e.g. ``api_calls``."""
    average_unit_price: Decimal | None = None
    """``subtotal / quantity`` as m3ter computed it (``averageUnitPrice``); tiered prices make it an
    average."""
    subtotal: Decimal | None = None
    """What the line costs, in the bill's currency (``subtotal``). Negative for credits: follow the
    sign, never negate."""
    converted_subtotal: Decimal | None = None
    """``subtotal`` after a currency conversion (``convertedSubtotal``)."""
    conversion_rate: Decimal | None = None
    """The rate of that conversion (``conversionRate``)."""
    currency: str | None = None
    """The line's currency (``currency``); normally the bill's."""
    product_id: str | None = None
    """m3ter's product (``productId``)."""
    product_code: str | None = None
    """The product's code (``productCode``)."""
    product_name: str | None = None
    """The product's name (``productName``)."""
    accounting_product_id: str | None = None
    """The product to account the line under (``accountingProductId``) when it is not the line's
    own; it decides mapping and exclusion (see ``product_for_accounting``)."""
    accounting_product_code: str | None = None
    """The accounting product's code (``accountingProductCode``)."""
    accounting_product_name: str | None = None
    """The accounting product's name (``accountingProductName``)."""
    plan_id: str | None = None
    """The plan the charge comes from (``planId``)."""
    pricing_id: str | None = None
    """The pricing the charge comes from (``pricingId``)."""
    contract_id: str | None = None
    """The contract the charge belongs to (``contractId``)."""
    aggregation_id: str | None = None
    """The usage aggregation a usage line prices (``aggregationId``); ``Aggregation`` mappings are
    keyed by it."""
    compound_aggregation_id: str | None = None
    """The compound aggregation a usage line prices (``compoundAggregationId``)."""
    meter_id: str | None = None
    """The meter the usage was measured by (``meterId``)."""
    segment: FrozenMap | None = attrs.field(
        default=None, converter=attrs.converters.optional(frozen_map)
    )
    """The segment of a segmented aggregation the line prices (``segment``), e.g. ``{"region":
    "EU"}``."""
    group: FrozenMap | None = attrs.field(
        default=None, converter=attrs.converters.optional(frozen_map)
    )
    """The group of the usage (``group``), when m3ter grouped it."""
    commitment_id: str | None = None
    """The commitment (prepayment) the line draws on or charges for (``commitmentId``)."""
    balance_id: str | None = None
    """The balance the line draws on or charges for (``balanceId``)."""
    charge_id: str | None = None
    """The ad hoc charge the line is for (``chargeId``)."""
    reason_id: str | None = None
    """The reason of a credit or debit (``reasonId``)."""
    referenced_bill_id: str | None = None
    """The bill a credit or debit memo line corrects (``referencedBillId``)."""
    referenced_line_item_id: str | None = None
    """The line a credit or debit memo line corrects (``referencedLineItemId``)."""
    child_account_id: str | None = None
    """The child account whose usage the line bills (``childAccountId``), for parent-account
    billing."""
    child_account_code: str | None = None
    """That child account's code (``childAccountCode``)."""
    service_period_start_date: datetime | None = None
    """When the service the line charges for started (``servicePeriodStartDate``, a timestamp)."""
    service_period_end_date: datetime | None = None
    """When it ended (``servicePeriodEndDate``, a timestamp, as m3ter sends it)."""
    bands: tuple[Band, ...] | None = None
    """Usage per pricing band for tiered and volume prices (``usagePerPricingBand`` or
    ``bandUsage``), or ``None``."""
    bands_key: BandsKey = "usagePerPricingBand"
    """The name the bands came under (``usagePerPricingBand`` or ``bandUsage``); they are written
    back under it."""
    extra: FrozenMap = _extra_field()
    """Fields of m3ter's JSON billbridge does not model, as received (read-only)."""

    @property
    def known_type(self) -> LineItemType | None:
        """The :class:`LineItemType` when m3ter documents this type, else ``None``."""
        try:
            return LineItemType(self.line_item_type)
        except ValueError:
            return None

    @property
    def product_for_accounting(self) -> str | None:
        """The product that decides mapping and exclusion: the accounting product wins."""
        return self.accounting_product_id or self.product_id


@attrs.frozen
class Bill:
    """An m3ter bill, as m3ter sends it."""

    id: str
    """m3ter's bill id: the same for every version of one bill."""
    account_id: str
    """The billed account's m3ter id (``accountId``); ``Account`` mappings are keyed by it."""
    currency: str
    """The bill's currency, an ISO 4217 code (``currency``)."""
    version: int = 1
    """The bill's version (``version``): m3ter makes a new one each time it regenerates the bill. A
    later version updates the invoice an earlier one made (``previous``)."""
    account_code: str | None = None
    """The account's code (``accountCode``)."""
    bill_date: date | None = None
    """The day the bill was made (``billDate``)."""
    start_date: date | None = None
    """The first day of the billing period (``startDate``)."""
    end_date: date | None = None
    """The end of the billing period (``endDate``), as m3ter sends it: the samples end on the first
    day of the next period."""
    due_date: date | None = None
    """When payment is due (``dueDate``)."""
    external_invoice_date: date | None = None
    """The date the invoice should carry (``externalInvoiceDate``); ``invoice_date`` falls back to
    ``bill_date``."""
    external_invoice_reference: str | None = None
    """A reference to print on the invoice (``externalInvoiceReference``)."""
    sequential_invoice_number: str | None = None
    """m3ter's invoice number (``sequentialInvoiceNumber``), e.g. ``INV-000123``: the invoice's
    number where the destination lets you set it."""
    purchase_order_number: str | None = None
    """The customer's purchase order number (``purchaseOrderNumber``)."""
    currency_conversions: tuple[CurrencyConversion, ...] | None = None
    """The conversions m3ter applied (``currencyConversions``), or ``None``."""
    status: str | None = None
    """``PENDING`` or ``APPROVED`` (``status``); see ``is_approved``."""
    bill_total: Decimal | None = None
    """The bill's total as m3ter computed it (``billTotal``), before the integration's exclusions;
    ``lines_total()`` sums the lines the plugin received."""
    line_items: tuple[LineItem, ...] = ()
    """The bill's lines (``lineItems``), with the integration's excluded types, products and
    aggregations already removed."""
    billing_frequency: str | None = None
    """How often the account is billed (``billingFrequency``): ``DAILY``, ``WEEKLY``, ``MONTHLY``,
    ``ANNUALLY`` or ``AD_HOC``."""
    timezone: str | None = None
    """The timezone the bill's dates are in (``timezone``), e.g. ``Europe/London``."""
    locked: bool | None = None
    """True once the bill is locked in m3ter (``locked``)."""
    extra: FrozenMap = _extra_field()
    """Fields of m3ter's JSON billbridge does not model, as received (read-only)."""

    @property
    def is_approved(self) -> bool:
        """m3ter marks a bill APPROVED once a person has approved it."""
        return (self.status or "").upper() == "APPROVED"

    @property
    def invoice_date(self) -> date | None:
        """The date the invoice carries: ``externalInvoiceDate``, else ``billDate``."""
        return self.external_invoice_date or self.bill_date

    def lines_total(self) -> Decimal:
        """Sum of every line's subtotal, exactly."""
        return sum((li.subtotal or Decimal(0) for li in self.line_items), Decimal(0))


@attrs.frozen
class Address:
    """An account's postal address."""

    address_line1: str | None = None
    """First line (``addressLine1``)."""
    address_line2: str | None = None
    """Second line (``addressLine2``)."""
    address_line3: str | None = None
    """Third line (``addressLine3``)."""
    address_line4: str | None = None
    """Fourth line (``addressLine4``)."""
    locality: str | None = None
    """Town or city (``locality``)."""
    region: str | None = None
    """State, county or region (``region``)."""
    post_code: str | None = None
    """Postal code (``postCode``)."""
    country: str | None = None
    """Country, as the account has it (``country``): often an ISO code, not always."""
    extra: FrozenMap = _extra_field()
    """Fields of m3ter's JSON billbridge does not model, as received (read-only)."""


@attrs.frozen
class Account:
    """The billed customer."""

    id: str
    """m3ter's account id; ``Account`` mappings are keyed by it."""
    name: str | None = None
    """The customer's name (``name``)."""
    code: str | None = None
    """The account's code (``code``); with "use external mapping account code" it stands for the
    customer."""
    currency: str | None = None
    """The account's billing currency (``currency``)."""
    address: Address | None = None
    """The postal address (``address``), or ``None``."""
    custom_fields: FrozenMap | None = attrs.field(
        default=None, converter=attrs.converters.optional(frozen_map)
    )
    """The account's custom fields (``customFields``), read-only; e.g. the name QuickBooks' "account
    manager email custom field" option points at."""
    email_address: str | None = None
    """The account's email address (``emailAddress``)."""
    extra: FrozenMap = _extra_field()
    """Fields of m3ter's JSON billbridge does not model, as received (read-only)."""


# --- billbridge records -------------------------------------------------------------------------


@attrs.frozen
class Credential:
    """An authenticated connection to one destination tenant (a QBO realm, a Xero tenant)."""

    id: str
    """billbridge's id of the credential."""
    name: str
    """What the user called it ("Xero UK")."""
    destination: str
    """The destination key it connects to."""
    status: CredentialStatus
    """``INCOMPLETE`` while the consent is under way (``authenticate`` sees this), then
    ``COMPLETE``, or ``NEEDS_RECONNECT`` after a refused refresh."""
    created_at: datetime
    """When it was created (UTC)."""
    entity_type: str = "Bill"
    """The m3ter entity type it serves (``Bill``)."""
    expires_at: datetime | None = None
    """When an INCOMPLETE credential is removed if its consent has not completed."""
    tenant_id: str | None = None
    """The tenant it connects (a QuickBooks realm, a Xero organisation), once chosen."""
    tenant_name: str | None = None
    """That tenant's name."""
    access_token_expires_at: datetime | None = None
    """When the access token expires."""
    refresh_token_expires_at: datetime | None = None
    """When the refresh token expires, when the provider says."""
    scopes: tuple[str, ...] = ()
    """The scopes granted."""
    data: FrozenMap = attrs.field(factory=dict, converter=frozen_map)
    """Whatever the core keeps with the credential (the redirect URI; a chosen tenant's ``data``).
    """
    has_tokens: bool = False
    """True when tokens are stored (they never leave the store but for a plugin's connection)."""
    keys_match: bool = True
    """False when the stored tokens cannot be decrypted with the configured keys (the key was
    changed without keeping the old one): the credential can only be deleted."""

    @property
    def display_name(self) -> str:
        """How lists show it: ``"NAME (Incomplete)"`` until the consent flow completes."""
        if not self.keys_match:
            return f"{self.name} (Cannot decrypt: secret key changed)"
        if self.status is CredentialStatus.INCOMPLETE:
            return f"{self.name} (Incomplete)"
        if self.status is CredentialStatus.NEEDS_RECONNECT:
            return f"{self.name} (Reconnect needed)"
        return self.name


@attrs.frozen
class CredentialTokens:
    """A credential's tokens, decrypted: only the credentials service and the store hold them,
    and a plugin sees the access token in its connection. Never part of :class:`Credential`."""

    access_token: Secret | None = None
    refresh_token: Secret | None = None


@attrs.frozen
class GlobalConfig:
    """The global part of an integration's configuration (the core's global panel)."""

    name: str
    """The integration's name."""
    account_ids: tuple[str, ...] = ()
    """Only bills of these accounts go through it (empty: all)."""
    restricted_account_ids: tuple[str, ...] = ()
    """Bills of these accounts never do (this wins over ``account_ids``)."""
    users_to_notify: tuple[str, ...] = ()
    """Who to tell when the integration is disabled automatically."""
    account_filter: str | None = None
    """The account filter expression, e.g. ``customFields.country == "UK"``."""
    auto_disable_threshold: int = 20
    """Successive error events after which the integration is disabled."""
    delivery_schedule: str | None = None
    """A cron expression: runs wait for its next slot (``None``: deliver as soon as possible)."""
    schedule_timezone: str | None = None
    """The IANA time zone the schedule's hours and days are in (``None``: UTC)."""
    status_check_minutes: int = 60
    """Minutes between read-backs of a delivered, unsettled document's status (0: never)."""


@attrs.frozen
class BillEntityConfig:
    """The Bill entity part of an integration's configuration (the core's entity panel)."""

    only_send_on_approval: bool = False
    """Only APPROVED bill versions are sent."""
    use_external_mapping_account_code: bool = False
    """The account's code stands for it when mappings are resolved."""
    excluded_line_item_types: tuple[str, ...] = ()
    """Line item types removed before a bill reaches the plugin."""
    enforce_external_mappings: bool = False
    """Only mappings linked to this integration count."""
    excluded_products: tuple[str, ...] = ()
    """Products whose lines are removed (the accounting product decides)."""
    excluded_aggregations: tuple[str, ...] = ()
    """Aggregations whose lines are removed."""


@attrs.frozen
class Integration:
    """One configured bill flow to one destination."""

    id: str
    """billbridge's id of the integration."""
    destination: str
    """The destination key it delivers to."""
    config: GlobalConfig
    """The global configuration (name, account lists, filter, users to notify)."""
    entity_config: BillEntityConfig
    """The Bill entity configuration (approval, exclusions, mappings)."""
    destination_config: FrozenMap = attrs.field(converter=frozen_map)
    """The destination's own configuration, the panel's values as saved (secrets sealed)."""
    created_at: datetime
    """When it was created (UTC)."""
    updated_at: datetime
    """When it last changed (UTC)."""
    entity_type: str = "Bill"
    """The m3ter entity type it delivers (``Bill``)."""
    enabled: bool = True
    """False once disabled, by a person or automatically after successive errors."""
    credential_id: str | None = None
    """The connected credential, or ``None`` (always ``None`` for destinations without OAuth)."""
    version: int = 1
    """Optimistic locking: updates pass the version they read."""
    consecutive_errors: int = 0
    """Successive error events so far; a success resets it."""

    @property
    def name(self) -> str:
        """The integration's name (from the global configuration)."""
        return self.config.name

    @property
    def connected(self) -> bool:
        """True when a credential is connected."""
        return self.credential_id is not None


@attrs.frozen
class ExternalMapping:
    """``(entity, entity id) → (external system, table, id)``; linked when ``integration_id``."""

    id: str
    m3ter_entity: str
    m3ter_id: str
    external_system: str
    external_table: str
    external_id: str
    created_at: datetime
    integration_id: str | None = None

    @property
    def linked(self) -> bool:
        """True when the mapping applies to one integration only."""
        return self.integration_id is not None


@attrs.frozen
class Run:
    """One attempt to deliver one bill version through one integration."""

    id: str
    integration_id: str
    bill_id: str
    bill_version: int
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    account_id: str | None = None
    attempts: int = 0
    external_id: str | None = None
    external_url: str | None = None
    error: str | None = None
    replayed_from: str | None = None
    next_attempt_at: datetime | None = None


@attrs.frozen
class Skip:
    """A routing decision not to send a bill version through an integration, with its reason."""

    id: str
    integration_id: str
    bill_id: str
    bill_version: int
    reason: str
    created_at: datetime
    account_id: str | None = None


@attrs.frozen
class RunAttempt:
    """One try at delivering a run."""

    run_id: str
    number: int
    started_at: datetime
    status: RunStatus
    finished_at: datetime | None = None
    worker: str | None = None
    error: str | None = None


@attrs.frozen
class Event:
    """Something a person must act on."""

    id: str
    type: EventType
    message: str
    created_at: datetime
    integration_id: str | None = None
    run_id: str | None = None
    details: FrozenMap = attrs.field(factory=dict, converter=frozen_map)
    actioned_at: datetime | None = None
    actioned_by: str | None = None

    @property
    def actioned(self) -> bool:
        """True once someone marked it as dealt with."""
        return self.actioned_at is not None


def _frozen_maps(items: typing.Iterable[Mapping[str, Any]]) -> tuple[FrozenMap, ...]:
    return tuple(frozen_map(item) for item in items)


@attrs.frozen
class DocumentStatus:
    """What the ledger knows of a delivered document's settlement, from its last read-back.

    ``state`` is ``None`` until the destination was first asked. Amounts are in the
    document's currency; ``payments`` are JSON-able mappings (``amount``, ``date``, ``kind``,
    ``externalId``, ``method``, ``methodName``, ``reportedAs``, ``reference``).
    """

    state: InvoiceState | None = None
    """The state last read back (``None``: never read yet)."""
    total: Decimal | None = None
    """The document's total at the destination (0 once voided)."""
    amount_due: Decimal | None = None
    """What was left to pay."""
    amount_paid: Decimal | None = None
    """The sum of payments applied."""
    amount_credited: Decimal | None = None
    """The sum of credit notes / credit memos applied."""
    currency: str | None = None
    """The document's currency code."""
    paid_on: date | None = None
    """When the document was paid in full (the last payment's date)."""
    payments: tuple[FrozenMap, ...] = attrs.field(default=(), converter=_frozen_maps)
    """The payments and credits applied, as JSON-able mappings (see above)."""
    checked_at: datetime | None = None
    """When it was last read back."""
    next_check_at: datetime | None = None
    """When it is read back next (``None``: not any more, or never)."""
    error: str | None = None
    """Why the last read-back failed (``None`` when it worked)."""


@attrs.frozen
class LedgerEntry:
    """The delivery ledger: which external invoice a bill became through one integration."""

    integration_id: str
    """The integration that delivered the bill."""
    bill_id: str
    """The bill delivered."""
    bill_version: int
    """The version last delivered."""
    external_id: str
    """The id ``send_bill`` returned (``SendResult.external_id``): the document to update."""
    updated_at: datetime
    """When it was last delivered (UTC)."""
    external_number: str | None = None
    """The number the destination gave it (``SendResult.number``)."""
    external_url: str | None = None
    """Where people see it (``SendResult.url``)."""
    state: FrozenMap = attrs.field(factory=dict, converter=frozen_map)
    """The ``state`` the last ``SendResult`` returned (a sync token, the document type...), as JSON
    read back."""
    status: DocumentStatus = DocumentStatus()
    """The document's settlement as last read back (status read-back, ``fetch_invoice_status``)."""


# --- the converter -----------------------------------------------------------------------------

_T = TypeVar("_T")

converter = cattrs.Converter(omit_if_default=False)
"""The one converter for m3ter's camelCase JSON (see :func:`parse_bill`, :func:`loads`)."""

_CAMEL_RE = re.compile(r"_([a-z0-9])")


def _camel(name: str) -> str:
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), name.rstrip("_"))


def _to_decimal(value: Any, _type: Any = None) -> Decimal:
    # Floats arrive from callers that parsed JSON with the standard library; ``repr`` gives the
    # shortest text that round-trips, which is the number the JSON text said.
    if type(value) is Decimal:  # what loads() gives: the common case, first
        return value
    if type(value) is int:  # loads() gives whole numbers as int; always finite
        return Decimal(value)
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int | str):
        try:
            result = Decimal(value)
        except ArithmeticError:
            raise ValueError(f"not a number: {value!r}") from None
        if not result.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return result
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _to_date(value: Any, _type: Any = None) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _date_text(value)
    raise TypeError(f"expected a date, got {type(value).__name__}")


def _to_datetime(value: Any, _type: Any = None) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return _timestamp_text(value)
    raise TypeError(f"expected a timestamp, got {type(value).__name__}")


# A month's bills repeat the same few dates and timestamps (the period, the service period on
# every line): each text is parsed once. Dates and datetimes are immutable, so sharing is safe.
@functools.lru_cache(maxsize=4096)
def _date_text(value: str) -> date:
    # m3ter sometimes sends a date as a midnight timestamp; the calendar date is what counts.
    return date.fromisoformat(value[:10]) if len(value) > 10 else date.fromisoformat(value)


@functools.lru_cache(maxsize=4096)
def _timestamp_text(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _datetime_text(value: datetime) -> str:
    if value.microsecond % 1000 == 0:
        text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    else:
        text = value.isoformat()
    if value.tzinfo is not None and value.utcoffset() == UTC.utcoffset(None):
        text = text.removesuffix("+00:00") + "Z"
    return text


def _to_str(value: Any, _type: Any = None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise TypeError(f"expected text, got {value!r}")
    if isinstance(value, int | Decimal):
        # Identifiers occasionally arrive as numbers (a QuickBooks id typed by hand); keep the text.
        return str(value)
    raise TypeError(f"expected text, got {type(value).__name__}")


def _to_int(value: Any, _type: Any = None) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float) and value == int(value):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(f"expected an integer, got {value!r}")


def _to_bool(value: Any, _type: Any = None) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected true or false, got {value!r}")


def _to_map(value: Any, _type: Any = None) -> FrozenMap:
    if isinstance(value, Mapping):
        return frozen_map(value)
    raise TypeError(f"expected an object, got {type(value).__name__}")


converter.register_structure_hook(Decimal, _to_decimal)
converter.register_structure_hook(date, _to_date)
converter.register_structure_hook(datetime, _to_datetime)
converter.register_structure_hook(str, _to_str)
converter.register_structure_hook(int, _to_int)
converter.register_structure_hook(bool, _to_bool)
converter.register_structure_hook_func(lambda t: t == FrozenMap, _to_map)


def _optional(hook: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _type: Any) -> Any:
        return None if value is None else hook(value, _type)

    return structure


# ``X | None`` goes straight to X's hook, skipping cattrs' union dispatch, which was a third of
# the time spent reading a bill.
for _base, _hook in (
    (str, _to_str),
    (Decimal, _to_decimal),
    (int, _to_int),
    (bool, _to_bool),
    (date, _to_date),
    (datetime, _to_datetime),
):
    converter.register_structure_hook(_base | None, _optional(_hook))
converter.register_unstructure_hook(Decimal, lambda d: d)
converter.register_unstructure_hook(date, lambda d: d.isoformat())
converter.register_unstructure_hook(datetime, _datetime_text)
converter.register_unstructure_hook(MappingProxyType, lambda m: dict(m))


def _non_null(hint: Any) -> Any:
    """``X`` for ``X | None`` (one X only), else ``None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return None


def _json_names(cls: type) -> dict[str, str]:
    return {
        f.name: f.metadata.get("json", _camel(f.name))
        for f in attrs.fields(cls)
        if f.name not in ("extra", "bands", "bands_key")
    }


#: Each document class's structure hook (fast path first), for nested documents.
_FAST_HOOKS: dict[type, Callable[[Any, Any], Any]] = {}
#: Whether document hooks try their fast path before cattrs' (tests turn it off to check that
#: both read every document alike).
_FAST_PATH = True


def _document_tuple(hint: Any) -> type | None:
    """The document class ``D`` of ``tuple[D, ...]`` when ``D`` is registered, else ``None``."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in _FAST_HOOKS:
            return args[0]  # type: ignore[no-any-return]
    return None


def _structure_documents(
    hook: Callable[[Any, Any], Any], value: Any, _type: Any
) -> tuple[Any, ...]:
    # Lists only (what JSON gives); anything else is left to cattrs' own tuple handling.
    if type(value) is not list:
        raise TypeError("not a list")
    return tuple([hook(item, None) for item in value])


_EXTRA = "\x00extra"
_BANDS = "\x00bands"
_BANDS_KEY = "\x00bands_key"


def _register_document(cls: type[Any]) -> None:
    """Register lossless camelCase hooks for an m3ter document class with an ``extra`` field."""
    names = _json_names(cls)
    field_names = {f.name for f in attrs.fields(cls)}
    renamed = {py: override(rename=js) for py, js in names.items()}
    # Structuring builds each object in one pass: unknown fields and bands travel under keys no
    # JSON document can hold, instead of patching the object afterwards (attrs.evolve per
    # object doubled the cost of reading a bill).
    private = {"extra": _EXTRA, "bands": _BANDS, "bands_key": _BANDS_KEY}
    structure_overrides = dict(renamed)
    unstructure_overrides = dict(renamed)
    for name, key in private.items():
        if name in field_names:
            structure_overrides[name] = override(rename=key)
            unstructure_overrides[name] = override(omit=True)
    structure_fn = make_dict_structure_fn(cls, converter, **structure_overrides)  # type: ignore[arg-type]
    unstructure_known = make_dict_unstructure_fn(
        cls,
        converter,
        _cattrs_omit_if_default=False,
        **unstructure_overrides,  # type: ignore[arg-type]
    )
    known_keys = set(names.values())
    has_bands = "bands" in field_names
    hints = typing.get_type_hints(cls)
    # The fast path: one pass over the keys the document has (a line item has 16 of its 40),
    # each value through its type's hook, then the class. It accepts only what the cattrs path
    # accepts and builds the same object; anything it does not take (a wrong type, a missing
    # field, bands that are not a list) goes to the cattrs path, which raises the error with
    # its path, or builds the object itself.
    fields: dict[str, tuple[str, Callable[[Any, Any], Any], Any, type]] = {}
    for py, js in names.items():
        hint = hints[py]
        base = _non_null(hint)
        target = base if base is not None else hint
        element = _document_tuple(target)
        hook: Callable[[Any, Any], Any]
        if element is not None:
            hook = functools.partial(_structure_documents, _FAST_HOOKS[element])
        else:
            hook = converter.get_structure_hook(target)
        # A value already of the field's exact type (text, a Decimal from loads()) is taken as
        # it is, as its hook would: most values of a bill are, and a call per value adds up.
        exact = target if target in (str, Decimal) else type(None)
        fields[js] = (py, hook, target, exact)

    def cattrs_path(data: Mapping[str, Any]) -> Any:
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known_keys:
                if value is not None:
                    known[key] = value
            else:
                extra[key] = value
        if has_bands:
            for candidate in ("usagePerPricingBand", "bandUsage"):
                if extra.get(candidate) is not None:
                    raw = extra.pop(candidate)
                    if not isinstance(raw, list):
                        raise TypeError(f"{candidate} must be a list")
                    known[_BANDS] = raw
                    known[_BANDS_KEY] = candidate
                    break
        if extra:
            known[_EXTRA] = extra
        return structure_fn(known, cls)

    bands_hook = _FAST_HOOKS.get(Band)

    def fast_path(data: Mapping[str, Any]) -> Any:
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            spec = fields.get(key)
            if spec is None:
                extra[key] = value
            elif value is not None:
                values[spec[0]] = value if type(value) is spec[3] else spec[1](value, spec[2])
        if has_bands and extra:
            assert bands_hook is not None
            for candidate in ("usagePerPricingBand", "bandUsage"):
                if extra.get(candidate) is not None:
                    values["bands"] = _structure_documents(bands_hook, extra.pop(candidate), None)
                    values["bands_key"] = candidate
                    break
        if extra:
            values["extra"] = extra
        return cls(**values)

    def structure(data: Any, _type: Any = None) -> Any:
        # ``type is dict`` first: what JSON gives, and much cheaper than the ABC check.
        if type(data) is not dict and not isinstance(data, Mapping):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        if _FAST_PATH:
            try:
                return fast_path(data)
            except Exception:
                # Whatever the fast path could not take, the cattrs path builds or reports.
                return cattrs_path(data)
        return cattrs_path(data)

    _FAST_HOOKS[cls] = structure

    def unstructure(obj: Any) -> dict[str, Any]:
        out = {k: v for k, v in unstructure_known(obj).items() if v is not None}
        if has_bands and obj.bands is not None:
            out[obj.bands_key] = [converter.unstructure(b) for b in obj.bands]
        for key, value in obj.extra.items():
            out.setdefault(key, value)
        return out

    converter.register_structure_hook(cls, structure)
    converter.register_unstructure_hook(cls, unstructure)


for _cls in (CurrencyConversion, Band, LineItem, Bill, Address, Account):
    _register_document(_cls)


def _register_config(cls: type[Any]) -> None:
    """camelCase hooks for billbridge's configuration classes (unknown keys refused upstream)."""
    overrides = {f.name: override(rename=_camel(f.name)) for f in attrs.fields(cls)}
    converter.register_structure_hook(
        cls,
        make_dict_structure_fn(cls, converter, **overrides),  # type: ignore[arg-type]
    )
    converter.register_unstructure_hook(
        cls,
        make_dict_unstructure_fn(cls, converter, **overrides),  # type: ignore[arg-type]
    )


_register_config(GlobalConfig)
_register_config(BillEntityConfig)


# --- JSON in and out ---------------------------------------------------------------------------


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every non-integer number as an exact ``Decimal``."""
    return simplejson.loads(text, use_decimal=True)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Write JSON with ``Decimal`` numbers exactly as they are (no float in between).

    Domain objects are unstructured with the converter first.
    """
    if attrs.has(type(value)):
        value = converter.unstructure(value)
    return simplejson.dumps(
        value, use_decimal=True, indent=indent, ensure_ascii=False, default=_json_default
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, MappingProxyType):
        return dict(value)
    if isinstance(value, Secret):
        # Never serialise a secret: writing it out is always a mistake somewhere upstream.
        raise TypeError("refusing to serialise a Secret")
    if isinstance(value, enum.Enum):
        return value.value
    if attrs.has(type(value)):
        return converter.unstructure(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _parse(data: Any, cls: type[_T], what: str) -> _T:
    def refuse(errors: list[FieldError], summary: str) -> ValidationFailed:
        return ValidationFailed(errors, summary=summary)

    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"not valid UTF-8 text: byte {exc.start} cannot be read"
            raise refuse([FieldError("", message)], f"{what} is not valid JSON") from None
    # NUL characters cannot be stored (PostgreSQL): in JSON text they can only be escaped, so a
    # text without that escape has none and needs no walk; parsed input is walked.
    nul = "\\u0000" in data if isinstance(data, str) else True
    if isinstance(data, str):
        try:
            data = loads(data)
        except simplejson.JSONDecodeError as exc:
            message = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            raise refuse([FieldError("", message)], f"{what} is not valid JSON") from None
        except RecursionError:
            message = "nested too deeply to be read (arrays or objects within each other)"
            raise refuse([FieldError("", message)], f"{what} is not valid JSON") from None
    try:
        parsed = converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, ArithmeticError) as exc:
        raise refuse(_cattrs_errors(exc), f"{what} is not valid") from None
    except RecursionError:
        message = "nested too deeply to be read (arrays or objects within each other)"
        raise refuse([FieldError("", message)], f"{what} is not valid") from None
    problems = _problems(parsed, data, walk=nul)
    if problems:
        raise refuse(problems, f"{what} is not valid")
    return parsed


def _problems(parsed: Any, data: Any, *, walk: bool) -> list[FieldError]:
    if isinstance(parsed, Bill):
        problems = bill_problems(parsed)
        # The published schema requires the array (a null one would read as "no lines").
        if isinstance(data, Mapping) and not isinstance(data.get("lineItems"), list):
            found = (
                "missing"
                if "lineItems" not in data
                else "null"
                if data["lineItems"] is None
                else "not an array"
            )
            problems.insert(
                0, FieldError("/lineItems", f"must be an array of line items ({found})")
            )
    else:
        problems = account_problems(parsed)
    # Looked for everywhere: unknown fields are stored too.
    if walk:
        problems += [
            FieldError(path, "contains a NUL character (\\u0000), which cannot be stored")
            for path in nul_paths(data)
        ]
    return problems


def _cattrs_errors(exc: BaseException) -> list[Any]:
    if isinstance(exc, cattrs.BaseValidationError):
        messages = cattrs.transform_error(exc, path="", format_exception=_format_exc)
        errors = []
        for message in messages:
            text, _, path = message.rpartition(" @ ")
            pointer = _cattrs_path_to_pointer(path)
            errors.append(FieldError(pointer, text))
        return errors
    return [FieldError("", str(exc))]


def _format_exc(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    return str(exc) or type(exc).__name__


_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]")


def _cattrs_path_to_pointer(path: str) -> str:
    # cattrs paths look like ``$.lineItems[2].quantity``; UIs want ``/lineItems/2/quantity``.
    # Attribute names are translated back to the JSON names the caller wrote.
    parts = [next(g for g in m.groups() if g is not None) for m in _PATH_PART.finditer(path)]
    return "".join(f"/{p if p.isdigit() else _camel(p)}" for p in parts)


def parse_bill(data: Mapping[str, Any] | str | bytes) -> Bill:
    """Read a bill from m3ter's JSON (text or parsed). Raises ``ValidationFailed`` with paths."""
    return _parse(data, Bill, "bill")


def parse_account(data: Mapping[str, Any] | str | bytes) -> Account:
    """Read an account from m3ter's JSON (text or parsed). Raises ``ValidationFailed``."""
    return _parse(data, Account, "account")
