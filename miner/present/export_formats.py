"""The file formats `miner export` writes: one table writer per format, fed chunk by chunk.

Each writer receives lists of row tuples and spells the column kinds its own way (Parquet
types them, CSV and JSON write times as ISO 8601 text), so a table is defined once and written
in any format. Loads nothing from the database, so `miner --help` can offer the choices.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from miner.present.figures import iso


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


# Column kinds: how a value is typed in Parquet and spelled in CSV / JSON.
INT, STR, BOOL, FLOAT, TIME, STR_LIST, INT_LIST = ("int", "str", "bool", "float", "time", "str_list", "int_list")


def _json_list(value: Any) -> str:
    return json.dumps(list(value or []))


class TableWriter:
    """Receives a table chunk by chunk (lists of row tuples)."""

    suffix = ""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        self.path, self.columns = path, list(columns)

    def write(self, rows: list[tuple[Any, ...]]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _converters(self, kinds: dict[str, Callable[[Any], Any]]) -> list[tuple[int, Callable[[Any], Any]]]:
        return [(index, kinds[kind]) for index, (_name, kind) in enumerate(self.columns) if kind in kinds]

    @staticmethod
    def _convert(
        rows: list[tuple[Any, ...]], converters: list[tuple[int, Callable[[Any], Any]]]
    ) -> Iterator[list[Any]]:
        for row in rows:
            values = list(row)
            for index, convert in converters:
                values[index] = convert(values[index])
            yield values


class _CsvWriter(TableWriter):
    """RFC 4180 CSV with a header; times in ISO 8601, lists as JSON arrays, empty for NULL."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        super().__init__(path, columns)
        self.handle = path.open("w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle, lineterminator="\n")
        self.writer.writerow([name for name, _kind in self.columns])
        self.converters = self._converters({TIME: iso, STR_LIST: _json_list, INT_LIST: _json_list})

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.writer.writerows(self._convert(rows, self.converters))

    def close(self) -> None:
        self.handle.close()


class _JsonWriter(TableWriter):
    """One JSON array of records, written record by record; times in ISO 8601."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        super().__init__(path, columns)
        self.handle = path.open("w", encoding="utf-8")
        self.handle.write("[")
        self.first = True
        self.names = [name for name, _kind in self.columns]
        self.converters = self._converters({TIME: iso, BOOL: lambda v: None if v is None else bool(v)})

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        for values in self._convert(rows, self.converters):
            self.handle.write("\n" if self.first else ",\n")
            self.handle.write(json.dumps(dict(zip(self.names, values)), ensure_ascii=False))
            self.first = False

    def close(self) -> None:
        self.handle.write("\n]\n")
        self.handle.close()


class _ParquetWriter(TableWriter):
    """A typed Parquet file, one row group per chunk (times as UTC microsecond timestamps)."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(path, columns)
        types = {
            INT: pa.int64(),
            STR: pa.string(),
            BOOL: pa.bool_(),
            FLOAT: pa.float64(),
            TIME: pa.timestamp("us", tz="UTC"),
            STR_LIST: pa.list_(pa.string()),
            INT_LIST: pa.list_(pa.int64()),
        }
        self.pa = pa
        self.schema = pa.schema([(name, types[kind]) for name, kind in self.columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        columns = list(zip(*rows)) if rows else [() for _ in self.columns]
        arrays = [self.pa.array(values, type=field.type) for values, field in zip(columns, self.schema)]
        self.writer.write_batch(self.pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


WRITERS: dict[ExportFormat, type[TableWriter]] = {
    ExportFormat.csv: _CsvWriter,
    ExportFormat.json: _JsonWriter,
    ExportFormat.parquet: _ParquetWriter,
}
