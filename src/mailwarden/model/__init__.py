"""Value types shared by every layer; imports nothing else of mailwarden."""

from mailwarden.model.events import (
    EVENT_TYPES,
    AuthFailed,
    AuthSucceeded,
    BounceNotification,
    Connect,
    DeliveryAttempted,
    Disconnect,
    Event,
    LocalSubmission,
    MessageExpired,
    MessageInfo,
    MessageQueued,
    MessageReceived,
    MessageRemoved,
    ProtocolViolation,
    QueueAction,
    Rejected,
    ScriptMail,
)
from mailwarden.model.record import Record, Source
from mailwarden.model.stats import ReadStats

__all__ = [
    "EVENT_TYPES",
    "AuthFailed",
    "AuthSucceeded",
    "BounceNotification",
    "Connect",
    "DeliveryAttempted",
    "Disconnect",
    "Event",
    "LocalSubmission",
    "MessageExpired",
    "MessageInfo",
    "MessageQueued",
    "MessageReceived",
    "MessageRemoved",
    "ProtocolViolation",
    "QueueAction",
    "ReadStats",
    "Record",
    "Rejected",
    "ScriptMail",
    "Source",
]
