"""Analytics over the store: read-only SQL (`query`), statistics, and export / import of whole stores."""

from .imports import import_store
from .query import TABLES, QueryResult, query, store_stats
from .transfer import EXPORT_FORMATS, ExportFormat, check_export, export_store

__all__ = [
    "EXPORT_FORMATS",
    "TABLES",
    "ExportFormat",
    "QueryResult",
    "check_export",
    "export_store",
    "import_store",
    "query",
    "store_stats",
]
