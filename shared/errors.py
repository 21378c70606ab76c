"""The errors tagship raises, one tree, each saying what was expected and what was found.

    TagshipError
    ├── ConfigError            the config file or environment is wrong (permanent; fix and redeploy)
    ├── InputError             a delivery or message is malformed or not ours (permanent; acknowledge, report)
    │   └── SignatureError     the webhook signature is missing or wrong
    ├── TransientError         worth retrying: the outside system may answer next time (raise so Pub/Sub redelivers)
    │   └── LeaseHeld          another release holds the deploy lease
    ├── CannotRead             `doctor` could not read an API (not enabled, denied, no tool): its check says
    │                          "not checked", never pass
    └── PermanentError         retrying will not help (acknowledge, report, restore what was half done)
        ├── PreconditionFailed a generation precondition did not hold (someone else wrote first)
        ├── NotFound           the object, revision or release does not exist
        └── CorruptRecord      one of tagship's own records does not have its shape (named, with what is wrong)

`transient` on every instance says which side of the split it is on, so entry points decide retry vs ack in
one place.
"""
from __future__ import annotations


class TagshipError(Exception):
    transient = False


class ConfigError(TagshipError):
    """The config is invalid; the message names the key, what was expected and what was found."""


class InputError(TagshipError):
    """A delivery or message we cannot act on."""


class SignatureError(InputError):
    pass


class CannotRead(TagshipError):
    """What `python main.py doctor` asked of an API could not be read; the message says why (never a secret)."""


class TransientError(TagshipError):
    transient = True


class LeaseHeld(TransientError):
    pass


class PermanentError(TagshipError):
    pass


class PreconditionFailed(PermanentError):
    """A create-if-absent found the object there, or a compare-and-swap found a newer generation."""


class NotFound(PermanentError):
    pass


class CorruptRecord(PermanentError):
    """A record in the state bucket that is not valid JSON of its type. It is never acted on: it holds no lease,
    is reported once, and `python main.py state show|repair NAME` shows and mends it."""

    def __init__(self, name: str, detail: str, generation: int = 0) -> None:
        super().__init__(f"{name}: corrupt record ({detail}); see it with `python main.py state show {name}`, mend "
                         f"it with `python main.py state repair {name}`")
        self.name = name
        self.detail = detail
        self.generation = generation


def from_google(error: Exception, doing: str) -> TagshipError:
    """Maps a google.api_core exception to our tree; `doing` says what we were attempting."""
    from google.api_core import exceptions as gexc

    message = f"{doing}: {error}"
    if isinstance(error, (gexc.PreconditionFailed, gexc.Aborted, gexc.Conflict)) and not isinstance(
        error, gexc.AlreadyExists
    ):
        return PreconditionFailed(message)
    if isinstance(error, gexc.NotFound):
        return NotFound(message)
    if isinstance(
        error,
        (
            gexc.ServiceUnavailable,
            gexc.TooManyRequests,
            gexc.ResourceExhausted,
            gexc.DeadlineExceeded,
            gexc.InternalServerError,
            gexc.BadGateway,
            gexc.GatewayTimeout,
            gexc.Unknown,
            gexc.RetryError,
        ),
    ):
        return TransientError(message)
    if isinstance(error, (ConnectionError, TimeoutError)):
        return TransientError(message)
    return PermanentError(message)
