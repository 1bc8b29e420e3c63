"""``pytraj export FILE -o out.csv``: the DataFrame view of the runs, to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytraj.cli.common import add_file_arguments, open_study

__all__ = ["FORMATS", "add_parser", "run_export"]

_EXAMPLES = """\
examples:
  pytraj export out/study.h5 -o runs.csv
  pytraj export out/study.h5 -o runs.parquet --where 'status == "completed"'
  pytraj export out/study.h5 -o runs.nc          netCDF, through xarray

parquet needs pyarrow (pip install 'pytraj-explore[parquet]'), netCDF needs xarray
(pip install 'pytraj-explore[xarray]').
"""

#: Output suffix -> the optional extra that provides it (None: always available).
FORMATS: dict[str, str | None] = {
    ".csv": None,
    ".json": None,
    ".parquet": "parquet",
    ".nc": "xarray",
}
_MODULES = {"parquet": "pyarrow", "xarray": "xarray"}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the runs (parameters, scalar results, status) to csv/json/parquet/nc",
        description=(
            "Write the DataFrame view of a trajectory (one row per run: explored "
            "parameters, scalar results, status, runtime and host) to a file; the format "
            "follows the suffix of -o: .csv, .json, .parquet or .nc."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_file_arguments(parser)
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT")
    parser.add_argument("--where", metavar="QUERY", help="only runs where QUERY holds")
    parser.set_defaults(handler=run_export)


def _require(extra: str) -> None:
    import importlib.util

    from pytraj.errors import OptionError

    module = _MODULES[extra]
    if importlib.util.find_spec(module) is None:
        raise OptionError(
            f"writing this format needs {module}, which is not installed; install it with "
            f"pip install 'pytraj-explore[{extra}]'"
        )


def _for_xarray(frame: Any) -> Any:
    """Columns netCDF can hold: nullable ints and bools as float / object, categories as str."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(str)
        elif isinstance(dtype, pd.Int64Dtype | pd.BooleanDtype) or str(dtype).startswith(
            ("Int", "UInt")
        ):
            out[column] = out[column].astype("float64")
    return out


def run_export(args: argparse.Namespace) -> int:
    """The handler of ``pytraj export``."""
    from pytraj.errors import OptionError

    output: Path = args.output
    suffix = output.suffix.lower()
    if output.resolve() == args.file.resolve():
        raise OptionError(f"-o {output} is the study file itself; choose another output file")
    if suffix not in FORMATS:
        raise OptionError(
            f"cannot tell the format of {output}: use one of the suffixes {', '.join(FORMATS)}"
        )
    extra = FORMATS[suffix]
    if extra is not None:
        _require(extra)
    traj = open_study(args)
    frame = traj.to_dataframe(include=("status", "runtime", "host"))
    if args.where:
        frame = frame.iloc[traj.find(args.where)]
    if suffix == ".csv":
        frame.to_csv(output)
    elif suffix == ".json":
        frame.reset_index().to_json(output, orient="records", indent=1)
    elif suffix == ".parquet":
        frame.to_parquet(output)
    else:
        dataset = _for_xarray(frame).to_xarray()
        dataset.attrs["trajectory"] = traj.name
        dataset.attrs["source"] = str(args.file)
        dataset.to_netcdf(output)
    print(f"wrote {len(frame)} runs x {len(frame.columns)} columns of {traj.name!r} to {output}")
    return 0
