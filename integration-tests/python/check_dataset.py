"""Reads a directory of trace parts (several runs, Hive-partitioned directories) the way
analysts do, with DuckDB and pandas/pyarrow, and checks it.

usage: check_dataset.py PARQUET_ROOT JSONL_ROOT EXPECTED_JSON

EXPECTED_JSON: {"parquet": {RUN: {"events": N, "board": B}}, "jsonl": {RUN: N}}: every
run's events, numbered 0..N-1 by seq, in Parquet parts under PARQUET_ROOT (read with
`read_parquet('ROOT/**/*.parquet', hive_partitioning = true)`, so `board=B` directories
give a `board` column), and in JSON Lines parts under JSONL_ROOT.
"""

import json
import sys

import duckdb
import pyarrow.dataset as ds


def fail(message):
    print(f"check_dataset: {message}", file=sys.stderr)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def main():
    root, jsonl_root, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    want = {run: (facts["events"], 0, facts["events"] - 1, facts["events"], facts["board"])
            for run, facts in expected["parquet"].items()}
    con = duckdb.connect()
    rows = con.execute(
        f"""SELECT run, count(*), min(seq), max(seq), count(DISTINCT seq), any_value(board)
            FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true)
            GROUP BY run"""
    ).fetchall()
    expect("DuckDB per run: events, first and last seq, distinct seqs, board",
           {row[0]: tuple(row[1:]) for row in rows}, want)

    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    frame = dataset.to_table().to_pandas()
    expect("pandas dtype of seq", str(frame["seq"].dtype), "uint64")
    expect("pandas dtype of value", str(frame["value"].dtype), "uint64")
    got = {}
    for run, group in frame.groupby("run", observed=True):
        seqs = sorted(int(s) for s in group["seq"])
        got[run] = (len(group), seqs[0], seqs[-1], len(set(seqs)), group["board"].iloc[0])
    expect("pyarrow dataset per run", got, want)

    rows = con.execute(
        f"""SELECT run, count(*), count(DISTINCT seq)
            FROM read_json('{jsonl_root}/**/*.jsonl', format = 'newline_delimited')
            GROUP BY run"""
    ).fetchall()
    expect("DuckDB JSON Lines parts per run", {row[0]: (row[1], row[2]) for row in rows},
           {run: (n, n) for run, n in expected["jsonl"].items()})


if __name__ == "__main__":
    main()
