"""What a push says, built without I/O: texts for merged bursts, FCM's
string-only data, and a payload kept under FCM's 4 KB by cutting the body."""

from __future__ import annotations

import json
from dataclasses import dataclass

# FCM refuses messages whose payload exceeds 4096 bytes; platform wrappers
# (android / apns / webpush blocks) take some of it, so the texts and data we
# control stay under this.
PAYLOAD_BUDGET = 3500
ELLIPSIS = "…"


@dataclass(frozen=True)
class PushMessage:
    """One notification for one person, to be sent to each of their devices."""

    kind: str  # "message" | "flow"
    conversation_id: str
    title: str
    body: str
    data: dict[str, str]
    badge: int


def merged_body(body: str, merged: int) -> str:
    """A burst of n changes is one push: "3 new messages · latest text"."""
    if merged <= 1:
        return body
    return f"{merged} new messages · {body}"


def string_data(data: dict[str, object]) -> dict[str, str]:
    """FCM data values must be strings; None becomes ""."""
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


def _size(title: str, body: str, data: dict[str, str]) -> int:
    return len(
        json.dumps({"title": title, "body": body, "data": data}, ensure_ascii=False).encode()
    )


def fit(
    title: str, body: str, data: dict[str, str], budget: int = PAYLOAD_BUDGET
) -> tuple[str, str]:
    """Cuts the body (then the title) on a character boundary until title,
    body and data fit in `budget` bytes. Data is never cut: it carries ids."""
    if _size(title, body, data) <= budget:
        return title, body
    for text_is_title in (False, True):
        text = title if text_is_title else body
        low, high = 0, len(text)
        while low < high:  # longest prefix that fits
            mid = (low + high + 1) // 2
            cut = text[:mid] + ELLIPSIS
            candidate = (cut, body) if text_is_title else (title, cut)
            if _size(*candidate, data) <= budget:
                low = mid
            else:
                high = mid - 1
        cut = text[:low] + ELLIPSIS if low < len(text) else text
        if text_is_title:
            title = cut
        else:
            body = cut
        if _size(title, body, data) <= budget:
            return title, body
        if not text_is_title:
            body = ELLIPSIS
    return title, body
