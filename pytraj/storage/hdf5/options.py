"""Compression and checksum settings of a pytraj HDF5 file, validated when given."""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import Any

from pytraj.errors import OptionError

__all__ = ["FileOptions", "available_complibs"]

#: Bytes of a heap's first rows tried with zlib to decide whether the heap is compressed.
HEAP_PROBE_BYTES = 64 * 1024
#: Shorter probes say too little: such heaps are compressed (text, small records).
HEAP_PROBE_MIN_BYTES = 4 * 1024
#: A probe that zlib does not shrink below this fraction leaves its heap uncompressed.
HEAP_COMPRESSED_RATIO = 0.9

# lzo is left out on purpose: few HDF5 installations can read it.
_FAMILIES = ("zlib", "bzip2", "blosc", "blosc2")


def available_complibs() -> list[str]:
    """Compression libraries (and ``blosc:<codec>`` variants) usable in this installation."""
    return list(_usable_complibs())


@functools.cache
def _usable_complibs() -> tuple[str, ...]:
    # Asking PyTables takes ~20 ms, and every FileOptions is checked against the answer.
    import tables  # keeps import pytraj fast: PyTables loads on first use

    usable = []
    for name in tables.filters.all_complibs:
        family = name.split(":", 1)[0]
        if family not in _FAMILIES:
            continue
        if tables.which_lib_version(family) is not None:
            usable.append(name)
    return tuple(usable)


@dataclass(frozen=True, slots=True)
class FileOptions:
    """How the tables of a file are compressed and checksummed.

    Tables (run table, explored values, scalar result columns, indices) use ``complib``
    at ``complevel``. Float and complex arrays stay uncompressed with zlib and bzip2,
    which cost about 100x the write time for a few percent of space on simulation data;
    the blosc codecs are fast enough to apply to them too.

    Parameters
    ----------
    complib
        ``"zlib"`` (readable everywhere, the default), ``"bzip2"``, ``"blosc"``,
        ``"blosc2"`` or a ``"blosc:<codec>"`` / ``"blosc2:<codec>"`` variant that this
        PyTables provides (see :func:`available_complibs`).
    complevel
        0 (no compression) to 9.
    shuffle
        Byte-shuffle before compressing (helps numbers compress).
    fletcher32
        Add a checksum to every chunk.

    Examples
    --------
    >>> FileOptions(complib="blosc2:zstd", complevel=5).complib
    'blosc2:zstd'
    """

    complib: str = "zlib"
    complevel: int = 1
    shuffle: bool = True
    fletcher32: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.complib, str):
            raise OptionError(
                f"FileOptions(complib={self.complib!r}): expected a library name such as "
                "'zlib', 'blosc2' or 'blosc2:zstd'"
            )
        usable = available_complibs()
        if self.complib not in usable:
            raise OptionError(
                f"FileOptions(complib={self.complib!r}) is not available; choose one of "
                f"{', '.join(usable)}"
            )
        level = self.complevel
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
            raise OptionError(
                f"FileOptions(complevel={level!r}): expected an integer from 0 (none) to 9"
            )
        for name in ("shuffle", "fletcher32"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(
                    f"FileOptions({name}={getattr(self, name)!r}): expected True or False"
                )

    @property
    def compresses_floats(self) -> bool:
        """Whether float arrays are compressed too (only with the fast blosc codecs)."""
        return self.complevel > 0 and self.complib.startswith("blosc")

    def table_filters(self) -> Any:
        """PyTables filters for tables and integer arrays."""
        import tables  # keeps import pytraj fast: PyTables loads on first use

        return tables.Filters(
            complevel=self.complevel,
            complib=self.complib,
            shuffle=self.shuffle and self.complevel > 0,
            fletcher32=self.fletcher32,
        )

    def keyed_table_filters(self) -> Any:
        """PyTables filters for the tables whose rows start with a 16-byte point id.

        Point ids are hashes: random bytes that zlib and bzip2 cannot shrink and get
        through at about 50 MB/s, which made compressing them most of the cost of
        writing the run table and the explored values (and of a merge appending them:
        about 70 ms for two 50,000-run files). With zlib and bzip2 these tables are
        stored uncompressed, as float arrays are; the blosc codecs are fast enough to
        keep compressing them. The price: 55 bytes a run-table row instead of about 20,
        which loading a study reads on first use of its run table.
        """
        import tables  # keeps import pytraj fast: PyTables loads on first use

        if not self.compresses_floats:
            return tables.Filters(complevel=0, fletcher32=self.fletcher32)
        return self.table_filters()

    def array_filters(self, kind: str) -> Any:
        """PyTables filters for an extendable array of dtype kind ``kind``."""
        import tables  # keeps import pytraj fast: PyTables loads on first use

        if kind in "fc" and not self.compresses_floats:
            return tables.Filters(complevel=0, fletcher32=self.fletcher32)
        return self.table_filters()

    def heap_filters(self, sample: bytes) -> Any:
        """PyTables filters for a byte heap whose first rows are ``sample``.

        Heaps of values that do not compress (arrays of floats of varying size, data
        already compressed) are left uncompressed with zlib and bzip2: compressing them
        gains a few percent and costs about 5 s per 64 MB flush, during which the writer
        holds the file and every reader waits. Text and other compressible bytes are
        compressed as tables are.
        """
        import tables  # keeps import pytraj fast: PyTables loads on first use

        probe = sample[:HEAP_PROBE_BYTES]
        if (
            self.complevel > 0
            and not self.compresses_floats
            and len(probe) >= HEAP_PROBE_MIN_BYTES
            and len(zlib.compress(probe, 1)) > HEAP_COMPRESSED_RATIO * len(probe)
        ):
            return tables.Filters(complevel=0, fletcher32=self.fletcher32)
        return self.table_filters()

    def plain_filters(self) -> Any:
        """Filters for the small variable-length lists (HDF5 cannot filter their data)."""
        import tables  # keeps import pytraj fast: PyTables loads on first use

        return tables.Filters(complevel=0)
