"""Storage: the backend interface, plain records, the in-memory and HDF5 backends."""

from pytraj.storage.interface import RUN_TABLE_DTYPE, ColumnData, RunTableData, Storage
from pytraj.storage.records import (
    COMPLETED,
    FAILED,
    NOT_LOADED,
    PENDING,
    RUNNING,
    STATUS_NAMES,
    FailureRecord,
    GroupRecord,
    LeafRecord,
    LinkRecord,
    RunRecord,
    StudyDefinition,
)

__all__ = [
    "COMPLETED",
    "FAILED",
    "NOT_LOADED",
    "PENDING",
    "RUNNING",
    "RUN_TABLE_DTYPE",
    "STATUS_NAMES",
    "ColumnData",
    "FailureRecord",
    "GroupRecord",
    "LeafRecord",
    "LinkRecord",
    "RunRecord",
    "RunTableData",
    "Storage",
    "StudyDefinition",
]
