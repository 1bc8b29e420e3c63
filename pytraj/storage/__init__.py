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
from pytraj.storage.valuecodec_registry import provide_value_codec

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

# The codecs of pandas and scipy.sparse values, imported on their first value (so that
# `import pytraj` imports neither library).
provide_value_codec("pandas", b"PQ", "pytraj.storage.valuecodec_pandas")
provide_value_codec("scipy.sparse", b"Z", "pytraj.storage.valuecodec_sparse")
