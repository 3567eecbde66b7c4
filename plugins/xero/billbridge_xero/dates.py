"""Xero's date formats.

Requests carry plain ``YYYY-MM-DD`` dates; responses carry Microsoft JSON dates,
``/Date(1551916800000+0000)/``: milliseconds since the Unix epoch in UTC, followed by an offset
that is informational only (REFERENCE.md, "Date/DueDate YYYY-MM-DD in requests and
/Date(ms+0000)/ in responses"). Some fields also come as ISO text (``DateString``,
``createdDateUtc`` on ``/connections``), so the parsers accept both.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

__all__ = ["format_ms_date", "parse_xero_date", "parse_xero_datetime"]

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_xero_datetime(value: str) -> datetime:
    """An aware UTC datetime from ``/Date(ms±hhmm)/`` or ISO 8601 text.

    The milliseconds are UTC whatever the offset says (the offset only tells the organisation's
    time zone). ISO text without a zone is taken as UTC, as Xero writes it.

    :raises ValueError: the text is neither form.
    """
    if not isinstance(value, str):
        raise ValueError(f"not a Xero date: {value!r}")
    text = value.strip()
    match = _MS_DATE.match(text)
    if match:
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a Xero date: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_xero_date(value: str) -> date:
    """The calendar date of a Xero date field (``Date``, ``DueDate``...).

    Xero stores these as midnight UTC, so the UTC date is the document's date.
    """
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    return parse_xero_datetime(value).date()


def format_ms_date(value: date | datetime) -> str:
    """``/Date(ms+0000)/`` for a date (midnight UTC) or an aware datetime."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    else:
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    delta = moment - _EPOCH
    milliseconds = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return f"/Date({milliseconds}+0000)/"
