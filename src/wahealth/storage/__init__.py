"""Persistence: SQLAlchemy models, repositories and Alembic migrations.

engine = create_engine("sqlite+aiosqlite:///wahealth.db")
await upgrade(engine)
sessions = session_factory(engine)
tenancy = TenancyRepository(sessions)
"""

from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.engine import create_engine, session_factory
from wahealth.storage.errors import StorageError
from wahealth.storage.health import HealthRepository
from wahealth.storage.migrate import downgrade, upgrade
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.tenancy import TenancyRepository

__all__ = [
    "CatalogRepository",
    "CredentialRepository",
    "HealthRepository",
    "OutboxRepository",
    "StorageError",
    "TenancyRepository",
    "create_engine",
    "downgrade",
    "session_factory",
    "upgrade",
]
