"""QuickBooks' error answers: the ``Fault`` envelope with its codes and wording."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BUSINESS",
    "INACTIVE",
    "QboFault",
    "business",
    "inactive",
    "required",
    "system_fault_body",
    "too_long",
    "unsupported",
    "validation",
]

BUSINESS = "A business validation error has occurred while processing your request"
INACTIVE = (
    "Object Not Found : Something you're trying to use has been made inactive. Check the "
    "fields with accounts, customers, items, vendors or employees."
)


class QboFault(Exception):
    """An error answer: HTTP status, Fault type and errors (Message, Detail, code, element)."""

    def __init__(
        self,
        status: int,
        kind: str,
        code: str,
        message: str,
        detail: str = "",
        element: str = "",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.status = status
        self.kind = kind
        self.errors = [{"Message": message, "Detail": detail, "code": code, "element": element}]

    def fault(self) -> dict[str, Any]:
        """The ``Fault`` object (what a batch item carries)."""
        return {"Error": list(self.errors), "type": self.kind}


def validation(code: str, message: str, detail: str = "", element: str = "") -> QboFault:
    return QboFault(400, "ValidationFault", code, message, detail, element)


def required(element: str) -> QboFault:
    return validation(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element,
    )


def unsupported(name: str) -> QboFault:
    return validation(
        "2010",
        "Request has invalid or unsupported property",
        f"Property Name:{name} specified is unsupported or invalid",
    )


def too_long(element: str, length: int, limit: int) -> QboFault:
    return validation(
        "2050",
        "String length is either shorter or longer than supported by specification",
        f"String length specified does not match the supported length. Min:0 Max:{limit} "
        f"supported. Supplied length:{length}",
        element,
    )


def inactive(element: str, ref: str) -> QboFault:
    return validation("610", "Object Not Found", f"{INACTIVE} ({element} {ref})", element)


def business(detail: str, element: str = "") -> QboFault:
    return validation("6000", BUSINESS, f"Business Validation Error: {detail}", element)


def system_fault_body(status: int, time_text: str) -> dict[str, Any]:
    if status == 503:
        error = {
            "Message": "Service Unavailable",
            "Detail": "The service is temporarily unavailable. Please try again later.",
            "code": "3003",
        }
    elif status == 504:
        error = {
            "Message": "Gateway Timeout",
            "Detail": "The request did not complete in time. Please try again later.",
            "code": "3004",
        }
    else:
        error = {
            "Message": "An application error has occurred while processing your request",
            "Detail": (
                "System Failure Error: An unexpected error occurred while accessing or saving "
                "your data. Please wait a few minutes and try again. If the problem persists, "
                "contact customer support."
            ),
            "code": "10000",
        }
    return {"Fault": {"Error": [error], "type": "SystemFault"}, "time": time_text}
