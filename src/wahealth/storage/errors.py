"""Storage errors. Repositories raise these, never SQLAlchemy's or a driver's."""

from __future__ import annotations


class StorageError(Exception):
    """The database could not do what was asked."""


class StorageUnavailable(StorageError):
    """The database could not be reached or answered with an operational error."""


class NotFound(StorageError):
    """A row the operation depends on does not exist."""

    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"no {what} {key!r}")
        self.what = what
        self.key = key


class UnknownAccount(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__("account", name)


class UnknownSpace(NotFound):
    def __init__(self, space_id: str) -> None:
        super().__init__("space", space_id)


class UnknownWaba(NotFound):
    def __init__(self, waba_id: str) -> None:
        super().__init__("WABA", waba_id)


class UnknownCredential(NotFound):
    pass


class UnknownSubscription(NotFound):
    def __init__(self, subscription_id: int) -> None:
        super().__init__("alert subscription", subscription_id)


class UnknownAlert(NotFound):
    def __init__(self, alert_id: str) -> None:
        super().__init__("alert", alert_id)


class LostClaim(StorageError):
    """The alert is no longer held by this claim: its lease ran out and another sender took it."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"alert {alert_id!r} is no longer held by this claim")
        self.alert_id = alert_id


class Conflict(StorageError):
    """The change contradicts what is stored (a duplicate, a broken reference)."""


class OwnershipConflict(Conflict):
    """A space (or WABA) already belongs to another account (or space)."""

    def __init__(self, what: str, key: str, owner: str, claimant: str) -> None:
        super().__init__(f"{what} {key!r} belongs to {owner!r}, not {claimant!r}")
        self.what = what
        self.key = key
        self.owner = owner
        self.claimant = claimant
