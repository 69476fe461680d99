"""Event types and the fields their deltas may carry, with personal fields marked.

A delta is a flat JSON object. Every field has a kind whose canonical textual form is fixed
(decimals without trailing zeros, lower-case hex, ISO dates), so one business fact has exactly
one encoding. Fields marked ``PERSONAL`` must never reach the chain: names, postal and e-mail
addresses, tax ids and birth dates stay in PostgreSQL, where they can be erased; the chain
carries pseudonymous identifiers only. Unknown fields are refused too, so personal data cannot
slip through under another name.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


class DeltaError(ValueError):
    """A delta that does not match its event type's schema."""


class PersonalDataError(DeltaError):
    """A delta that carries, or looks like it carries, personal data."""


_HEX40 = re.compile(r"^0x[0-9a-f]{40}\Z")
_HEX64 = re.compile(r"^0x[0-9a-f]{64}\Z")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,79}\Z")
_PSEUDONYM = re.compile(r"^[a-z]{2,12}_[0-9a-f]{16,64}\Z")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?\Z")
_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b")
_CURRENCY = re.compile(r"^[A-Z]{3}\Z")
_COUNTRY = re.compile(r"^[A-Z]{2}\Z")
MAX_SAFE_INT = 2**53 - 1


def isin_check_digit(body: str) -> str:
    """Check digit for the first 11 characters of an ISIN (Luhn over the letter-expanded digits)."""
    digits = "".join(str(int(c, 36)) for c in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


@functools.lru_cache(maxsize=8192)  # a register names few ISINs, each on many records
def _check_isin(v: str) -> bool:
    return bool(_ISIN.match(v)) and isin_check_digit(v[:11]) == v[11]


def _check_date(v: str) -> bool:
    try:
        return dt.date.fromisoformat(v).isoformat() == v
    except ValueError:
        return False


def _check_datetime(v: str) -> bool:
    if not v.endswith("Z"):
        return False
    try:
        parsed = dt.datetime.fromisoformat(v[:-1] + "+00:00")
    except ValueError:
        return False
    text = parsed.strftime("%Y-%m-%dT%H:%M:%S")
    if parsed.microsecond:
        text += "." + f"{parsed.microsecond:06d}".rstrip("0")
    return text + "Z" == v


@dataclass(frozen=True)
class Kind:
    name: str
    hint: str
    check: Callable[[object], bool]
    text: Callable[[str], object] | None = None
    """For kinds whose values are strings: the test of the string alone (truthy: accepted),
    which ``check_delta`` calls once it knows the value is a string."""


def _str_kind(name: str, hint: str, text: Callable[[str], object]) -> Kind:
    return Kind(name, hint, lambda v: isinstance(v, str) and bool(text(v)), text)


def _check_decimal(v: str) -> bool:
    return bool(_DECIMAL.match(v)) and v != "-0"


KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        _str_kind("ref", "an opaque business reference (letters, digits, _ . : / -)", _REF.match),
        _str_kind("pseudonym", "a pseudonymous id such as inv_8f3a9c2e1b7d4a60",
                  _PSEUDONYM.match),
        _str_kind("decimal", "a decimal string without exponent, '+' or trailing zeros, e.g. '100.5'",
                  _check_decimal),
        _str_kind("isin", "an ISIN with a valid check digit, e.g. US0378331005",
                  _check_isin),
        _str_kind("currency", "an ISO 4217 code, e.g. EUR", _CURRENCY.match),
        _str_kind("country", "an ISO 3166-1 alpha-2 code, e.g. LU", _COUNTRY.match),
        _str_kind("date", "an ISO date, e.g. 2026-11-24", _check_date),
        _str_kind("datetime", "UTC RFC 3339 without trailing zeros, e.g. 2026-11-24T12:00:00Z",
                  _check_datetime),
        _str_kind("address", "a lower-case 0x-prefixed 20-byte address", _HEX40.match),
        _str_kind("hash", "a lower-case 0x-prefixed 32-byte hash", _HEX64.match),
        Kind("uint", f"a JSON integer from 0 to {MAX_SAFE_INT}",
             lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SAFE_INT),
        Kind("bool", "true or false", lambda v: isinstance(v, bool)),
    ]
}


@dataclass(frozen=True)
class Field:
    kind: str
    required: bool = True
    choices: tuple[str, ...] = ()

    def accepts(self, value: object) -> bool:
        if self.choices:
            return isinstance(value, str) and value in self.choices
        return KINDS[self.kind].check(value)

    @functools.cached_property
    def accepts_text(self) -> Callable[[str], object]:
        """``accepts`` for a value known to be a string, in one call (truthy: accepted)."""
        if self.choices:
            return frozenset(self.choices).__contains__
        kind = KINDS[self.kind]
        return kind.text or kind.check

    def hint(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return KINDS[self.kind].hint


PERSONAL = "personal"


@dataclass(frozen=True)
class EventSchema:
    event_type: str
    description: str
    fields: Mapping[str, Field]
    personal: frozenset[str] = field(default_factory=frozenset)

    @functools.cached_property
    def clear_names(self) -> frozenset[str]:
        """The field names that the personal-field test in ``check_delta`` passes."""
        return frozenset(n for n in self.fields
                         if n not in self.personal and n.lower() not in self.personal)

    @functools.cached_property
    def required(self) -> frozenset[str]:
        return frozenset(n for n, f in self.fields.items() if f.required)


COMMON_PERSONAL = frozenset({
    "name", "first_name", "last_name", "legal_name", "email", "phone", "address",
    "postal_address", "street", "city", "postcode", "tax_id", "tin", "national_id",
    "passport", "date_of_birth", "birth_date", "place_of_birth", "nationality", "iban",
    "bank_account",
})


def _opt(kind: str) -> Field:
    return Field(kind, required=False)


def _enum(*choices: str, required: bool = True) -> Field:
    return Field("enum", required=required, choices=choices)


_SCHEMAS = [
    EventSchema("FUND_REGISTERED", "a fund share class opens on the register", {
        "fund": Field("ref"), "isin": Field("isin"), "currency": Field("currency"),
        "dealing": _enum("daily", "weekly", "monthly"), "cut_off": Field("ref"),
    }),
    EventSchema("FUND_DEALING_CHANGED", "a share class opens or closes for dealing", {
        "isin": Field("isin"), "open": Field("bool"), "effective": Field("datetime"),
    }),
    EventSchema("INVESTOR_ONBOARDED", "an investor account opens (pseudonymous)", {
        "investor": Field("pseudonym"), "country": Field("country"),
        "category": _enum("retail", "professional", "eligible_counterparty"),
    }),
    EventSchema("KYC_CLAIM_ISSUED", "a KYC claim is issued for an investor's identity", {
        "investor": Field("pseudonym"), "identity": Field("address"), "topic": Field("uint"),
        "issuer": Field("address"), "claim": Field("hash"), "valid_until": _opt("date"),
    }),
    EventSchema("KYC_CLAIM_REVOKED", "a KYC claim is revoked", {
        "investor": Field("pseudonym"), "claim": Field("hash"), "reason": _opt("ref"),
    }),
    EventSchema("WALLET_LINKED", "a wallet is linked to an investor's on-chain identity", {
        "investor": Field("pseudonym"), "wallet": Field("address"), "identity": Field("address"),
    }),
    EventSchema("ORDER_PLACED", "a subscription or redemption order is accepted", {
        "order": Field("ref"), "investor": Field("pseudonym"), "isin": Field("isin"),
        "side": _enum("subscription", "redemption"), "amount": _opt("decimal"),
        "units": _opt("decimal"), "currency": Field("currency"), "dealing_date": Field("date"),
        "channel": _enum("rest", "setr", "mt502", "token"),
    }),
    EventSchema("ORDER_CANCELLED", "an order is cancelled before dealing", {
        "order": Field("ref"), "reason": Field("ref"),
    }),
    EventSchema("NAV_PUBLISHED", "the fund administrator publishes a NAV", {
        "isin": Field("isin"), "nav_date": Field("date"), "nav": Field("decimal"),
        "currency": Field("currency"), "net_assets": _opt("decimal"),
        "units_outstanding": _opt("decimal"),
    }),
    EventSchema("ORDER_PRICED", "an order is priced at a NAV", {
        "order": Field("ref"), "isin": Field("isin"), "nav_date": Field("date"),
        "nav": Field("decimal"), "units": Field("decimal"), "amount": Field("decimal"),
        "currency": Field("currency"),
    }),
    EventSchema("PAYMENT_RECEIVED", "cash for an order is received", {
        "order": Field("ref"), "amount": Field("decimal"), "currency": Field("currency"),
        "payment": Field("ref"),
    }),
    EventSchema("UNITS_ISSUED", "units are issued to an investor", {
        "order": Field("ref"), "investor": Field("pseudonym"), "isin": Field("isin"),
        "units": Field("decimal"),
    }),
    EventSchema("UNITS_REDEEMED", "units are redeemed from an investor", {
        "order": Field("ref"), "investor": Field("pseudonym"), "isin": Field("isin"),
        "units": Field("decimal"),
    }),
    EventSchema("UNITS_TRANSFERRED", "units move between investors", {
        "transfer": Field("ref"), "from_investor": Field("pseudonym"),
        "to_investor": Field("pseudonym"), "isin": Field("isin"), "units": Field("decimal"),
    }),
    EventSchema("DISTRIBUTION_DECLARED", "a distribution is declared", {
        "distribution": Field("ref"), "isin": Field("isin"), "record_date": Field("date"),
        "payment_date": Field("date"), "per_unit": Field("decimal"),
        "currency": Field("currency"),
    }),
    EventSchema("DISTRIBUTION_PAID", "a distribution is paid or reinvested for an investor", {
        "distribution": Field("ref"), "investor": Field("pseudonym"), "amount": Field("decimal"),
        "currency": Field("currency"), "reinvested_units": _opt("decimal"),
    }),
    EventSchema("TOKEN_MINTED", "ERC-3643 units minted on the token chain", {
        "token_chain": Field("uint"), "token": Field("address"), "to": Field("address"),
        "amount": Field("decimal"), "tx": Field("hash"), "authorised_by": Field("uint"),
    }),
    EventSchema("TOKEN_BURNED", "ERC-3643 units burned on the token chain", {
        "token_chain": Field("uint"), "token": Field("address"), "from": Field("address"),
        "amount": Field("decimal"), "tx": Field("hash"), "authorised_by": Field("uint"),
    }),
    EventSchema("TOKEN_FORCED_TRANSFER", "an agent's forced transfer on the token chain", {
        "token_chain": Field("uint"), "token": Field("address"), "from": Field("address"),
        "to": Field("address"), "amount": Field("decimal"), "tx": Field("hash"),
        "authorised_by": Field("uint"),
    }),
    EventSchema("REGISTER_RECONCILED", "token register and CeFi register compared", {
        "isin": Field("isin"), "token_block": Field("uint"), "cefi_units": Field("decimal"),
        "token_units": Field("decimal"), "status": _enum("match", "mismatch"),
    }),
]

SCHEMAS: dict[str, EventSchema] = {}


def register(schema: EventSchema) -> None:
    """Add an event type; its personal fields are always at least ``COMMON_PERSONAL``."""
    if not re.match(r"^[A-Z][A-Z0-9_]{0,31}\Z", schema.event_type):
        raise DeltaError(f"event type {schema.event_type!r}: use 1-32 of A-Z, 0-9, _")
    for name, f in schema.fields.items():
        if f.kind != "enum" and f.kind not in KINDS:
            raise DeltaError(f"{schema.event_type}.{name}: unknown kind {f.kind!r}")
    personal = schema.personal | COMMON_PERSONAL
    clash = personal & set(schema.fields)
    if clash:
        raise DeltaError(f"{schema.event_type}: fields {sorted(clash)} are personal data")
    SCHEMAS[schema.event_type] = EventSchema(
        schema.event_type, schema.description, dict(schema.fields), frozenset(personal)
    )


for _s in _SCHEMAS:
    register(_s)


def check_delta(event_type: str, delta: Mapping[str, object]) -> None:
    """Raise DeltaError or PersonalDataError unless ``delta`` fits ``event_type``'s schema."""
    schema = SCHEMAS.get(event_type)
    if schema is None:
        raise DeltaError(f"unknown event type {event_type!r}; known: {', '.join(sorted(SCHEMAS))}")
    personal = schema.personal
    if not delta.keys() <= schema.clear_names:
        for name in delta:
            if name in personal or name.lower() in personal:
                raise PersonalDataError(
                    f"{event_type} delta carries personal field {name!r}: keep it in PostgreSQL "
                    "and put only the pseudonymous investor id on chain"
                )
    for name, value in delta.items():
        spec = schema.fields.get(name)
        if spec is None:
            raise DeltaError(
                f"{event_type} delta has unknown field {name!r}; allowed: "
                + ", ".join(sorted(schema.fields))
            )
        if isinstance(value, str):
            # The cheap tests only skip a search that cannot match: _EMAIL needs an '@'; _IBAN
            # needs 15 characters, two of them A-Z, and a string whose cased characters are all
            # lower-case (``islower()``) has none.
            if (("@" in value and _EMAIL.search(value))
                    or (len(value) >= 15 and not value.islower() and _IBAN.search(value))):
                raise PersonalDataError(
                    f"{event_type}.{name} looks like an e-mail address or IBAN; personal data "
                    "must not go on chain"
                )
            accepted = bool(spec.accepts_text(value))
        else:
            accepted = spec.accepts(value)
        if not accepted:
            raise DeltaError(f"{event_type}.{name} = {value!r}: expected {spec.hint()}")
    if delta.keys() >= schema.required:
        return
    missing = [n for n, f in schema.fields.items() if f.required and n not in delta]
    if missing:
        raise DeltaError(f"{event_type} delta lacks required fields: {', '.join(missing)}")
