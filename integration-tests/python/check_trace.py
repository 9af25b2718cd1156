"""Reads a trace the way analysts do, with DuckDB and pandas, and checks it.

usage: check_trace.py TRACE EXPECTED_COUNTS_JSON MAX_VALUE FORMAT_VERSION

EXPECTED_COUNTS_JSON maps device name ("null" for no device) to its event count;
MAX_VALUE is the largest `value` in the trace, compared exactly (values near 2**64
must survive as unsigned 64-bit integers); FORMAT_VERSION is the version the Parquet
metadata must carry (the writer's `mmio_export::FORMAT_VERSION`, passed in so that
this script cannot go stale when the format changes).
"""

import json
import sys

import duckdb
import pandas as pd
import pyarrow.parquet as pq


def fail(message):
    print(f"check_trace: {message}", file=sys.stderr)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def check_parquet(path, counts, max_value, format_version):
    con = duckdb.connect()
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    types = {row[0]: row[1] for row in rows}
    for column, want in [("seq", "UBIGINT"), ("cpu", "UINTEGER"), ("type", "VARCHAR"),
                         ("space", "VARCHAR"), ("guest_pc", "UBIGINT"), ("phys_addr", "UBIGINT"),
                         ("virt_addr", "UBIGINT"), ("offset", "UBIGINT"),
                         ("size", "UTINYINT"), ("value", "UBIGINT"), ("device", "VARCHAR"),
                         ("device_kind", "VARCHAR"), ("instr_count", "UBIGINT"),
                         ("run", "VARCHAR")]:
        expect(f"DuckDB type of {column}", types.get(column), want)
    got = dict(con.execute(
        f"SELECT coalesce(device, 'null'), count(*) FROM read_parquet('{path}') GROUP BY ALL"
    ).fetchall())
    expect("DuckDB GROUP BY device counts", got, counts)
    if counts:
        expect("DuckDB max(value)",
               con.execute(f"SELECT max(value) FROM read_parquet('{path}')").fetchone()[0],
               max_value)

    frame = pd.read_parquet(path)
    for column, want in [("seq", "uint64"), ("cpu", "uint32"), ("guest_pc", "uint64"),
                         ("virt_addr", "uint64"), ("offset", "uint64"), ("size", "uint8"),
                         ("value", "uint64")]:
        expect(f"pandas dtype of {column}", str(frame[column].dtype), want)
    expect("pandas dtype of device", str(frame["device"].dtype), "category")
    expect("pandas dtype of space", str(frame["space"].dtype), "category")
    schema = pq.read_schema(path)
    expect("Arrow type of device", str(schema.field("device").type),
           "dictionary<values=string, indices=uint16, ordered=0>")
    got = frame["device"].astype(object).where(frame["device"].notna(), "null").value_counts()
    expect("pandas device counts", {k: int(v) for k, v in got.items()}, counts)
    if counts:
        expect("pandas max(value)", int(frame["value"].max()), max_value)
    metadata = pq.read_metadata(path).metadata
    expect("format version metadata", metadata.get(b"mmio_trace.format_version"),
           format_version.encode())
    runs = con.execute(f"SELECT DISTINCT run FROM read_parquet('{path}')").fetchall()
    expect("one run a trace", [(metadata[b"mmio_trace.run"].decode(),)] if counts else [], runs)
    json.loads(metadata[b"mmio_trace.devices"])


def check_json_lines(path, counts, max_value):
    con = duckdb.connect()
    got = dict(con.execute(
        f"SELECT coalesce(device, 'null'), count(*) FROM read_json('{path}', format='newline_delimited') GROUP BY ALL"
    ).fetchall()) if counts else {}
    expect("DuckDB GROUP BY device counts", got, counts)
    if counts:
        expect("DuckDB max(value)",
               int(con.execute(
                   f"SELECT max(value) FROM read_json('{path}', format='newline_delimited')"
               ).fetchone()[0]),
               max_value)
    frame = pd.read_json(path, lines=True, dtype={"value": "uint64"})
    if counts:
        got = frame["device"].fillna("null").value_counts()
        expect("pandas device counts", {k: int(v) for k, v in got.items()}, counts)
        expect("pandas max(value)", int(frame["value"].max()), max_value)


def main():
    if len(sys.argv) != 5:
        fail("usage: check_trace.py TRACE EXPECTED_COUNTS_JSON MAX_VALUE FORMAT_VERSION")
    path, counts, max_value = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    format_version = sys.argv[4]
    if path.endswith(".parquet"):
        check_parquet(path, counts, max_value, format_version)
    elif path.endswith((".jsonl", ".ndjson")):
        check_json_lines(path, counts, max_value)
    else:
        fail(f"{path}: not a Parquet or JSON Lines trace")


if __name__ == "__main__":
    main()
