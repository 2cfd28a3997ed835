#!/usr/bin/env python3
"""Writes the Parquet files the Java data-reader tests read (java/src/test/resources/data/).

The public concept datasets ship as Parquet written by pyarrow (Hugging Face `datasets`), so the
fixtures are written the same way: snappy (pyarrow's default) and zstd compression, a file split
into two row groups, and malformed variants (a missing column, a wrong type, a null value); and
files of one concept without `concept`/`concept_id`, under the fields' names and under others
(read through a column mapping).
Usage: .deps/pyenv/bin/pip install pyarrow; .deps/pyenv/bin/python tools/make_pair_fixtures.py
"""
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parent.parent / "java/src/test/resources/data"


def rows(n):
    out = []
    for i in range(n):
        concept = "food" if i % 3 != 2 else "love"
        out.append({
            "negative_input": f"Tell me a saying. #{i}",
            "negative_output": f"A plain saying number {i}.",
            "positive_input": f"Tell me a saying about {concept}. #{i}",
            "positive_output": f"A saying about {concept}, number {i}: caf\u00e9 \u2615",
            "concept": concept,
            "concept_id": 0 if concept == "food" else 1,
        })
    return out


def table(rs, **types):
    schema = pa.schema([(k, types.get(k, pa.int64() if k == "concept_id" else pa.string())) for k in rs[0]])
    return pa.Table.from_pylist(rs, schema=schema)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    good = rows(7)
    pq.write_table(table(good), OUT / "pairs.parquet", row_group_size=4)  # two row groups, snappy
    for codec in ("zstd", "gzip", "lz4", "none"):  # pyarrow's "lz4" is LZ4_RAW
        pq.write_table(table(good), OUT / f"pairs_{codec}.parquet", compression=codec)
    pq.write_table(table([{k: v for k, v in r.items() if k != "positive_output"} for r in good]),
                   OUT / "missing_field.parquet")
    bad_type = [dict(r, concept_id=str(r["concept_id"])) for r in good]
    pq.write_table(table(bad_type, concept_id=pa.string()), OUT / "wrong_type.parquet")
    with_null = [dict(r) for r in good]
    with_null[5]["negative_output"] = None
    pq.write_table(table(with_null), OUT / "null_value.parquet", row_group_size=4)
    # extra columns in another order, large_string text (what `datasets` writes for long text)
    extra = pa.table({"category": pa.array(["x"] * len(good)), "concept_id": pa.array([r["concept_id"] for r in good]),
                      **{k: pa.array([r[k] for r in good], type=pa.large_string())
                         for k in good[0] if k != "concept_id"},
                      "score": pa.array([0.5] * len(good))})
    pq.write_table(extra, OUT / "pairs_extra_columns.parquet")
    # int32 concept ids (some writers) must read as well as int64
    pq.write_table(table(good, concept_id=pa.int32()), OUT / "pairs_int32_id.parquet")
    one_concept(good)


def one_concept(good):
    """A single-concept file without concept/concept_id, and one whose columns have other names
    (one shared prompt column, as in datasets whose pairs share their instruction)."""
    plain = [{k: v for k, v in r.items() if k not in ("concept", "concept_id")} for r in good]
    pq.write_table(table(plain), OUT / "one_concept.parquet")
    renamed = [{"instruction": r["negative_input"], "output": r["negative_output"],
                "output_concept": r["positive_output"], "genre": "text"} for r in good]
    pq.write_table(table(renamed), OUT / "renamed_columns.parquet", row_group_size=4)


if __name__ == "__main__":
    main()
