"""The pure domain: health model, aggregation, error catalog, node resolution. No I/O."""

from wahealth.domain.catalog import CatalogEntry, describe_error, fill_error
from wahealth.domain.model import (
    Entity,
    EntityType,
    HealthError,
    HealthReport,
    NodeKind,
    ReportSource,
    Status,
    overall_status,
)
from wahealth.domain.nodes import normalize_phone_number
from wahealth.domain.wire import (
    MalformedHealthStatus,
    parse_health_status,
    render_health_status,
    wire_form,
)

__all__ = [
    "CatalogEntry",
    "Entity",
    "EntityType",
    "HealthError",
    "HealthReport",
    "MalformedHealthStatus",
    "NodeKind",
    "ReportSource",
    "Status",
    "describe_error",
    "fill_error",
    "normalize_phone_number",
    "overall_status",
    "parse_health_status",
    "render_health_status",
    "wire_form",
]
