"""The federation layer's error family.

Callers (the delivery worker, the mirror, the inbox) decide what to do from
the error's *class*: a gone object is tombstoned, a missing one is retried
later, a refused address is never retried. Keeping the family small and
shallow keeps those decisions readable at the call site.
"""

from __future__ import annotations


class FederationError(Exception):
    """Base of every error raised on purpose by `federation/`."""


class FetchError(FederationError):
    """An outbound request did not yield a usable answer.

    `status` is the HTTP status when the remote answered at all, so that a
    caller can tell a remote that said no from one that never replied.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class ObjectNotFound(FetchError):
    """The remote answered 404: the object may appear later or never existed."""


class ObjectGone(FetchError):
    """The remote answered 410: the object was deleted and will not return."""


class Refused(FetchError):
    """We refused to send the request: its address is private or not http(s).

    Retrying cannot help, so delivery should give up at once.
    """


class ResponseTooLarge(FetchError):
    """The remote's answer exceeded the configured size limit."""


class TooManyRedirects(FetchError):
    """The remote kept redirecting beyond the configured limit."""


class DeliveryNetworkError(FetchError):
    """The request failed below HTTP (DNS, connect, reset, timeout).

    Distinguished from a refusal because it is worth retrying with backoff.
    """


class SignatureError(FederationError):
    """A request could not be signed, or a key could not be used."""


class InvalidKeyError(SignatureError):
    """A PEM document is not a usable RSA key."""
