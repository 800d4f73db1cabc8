"""The downstream job cdf-orchestrator launches once per dispatch batch.

The orchestrator writes each fan-in's changed ids into the batch table, one row per
(run_key, batch_number, uts_id), and launches this job with the job parameters
cdf_run_key, cdf_batch_number, cdf_batch_table and cdf_attempt. The job reads exactly its
batch's ids from that table (a join, never an `isin` list through parameters: a batch holds
thousands of ids and parameters are limited in size), reads the master rows for them and
MERGEs the result into the target table.

Re-running a batch is safe and changes nothing: every run reads the master as it is now, a
target row is only rewritten when it differs from it, and an id whose master row is gone is
deleted from the target. The orchestrator relies on this: a run that failed half-way is launched
again as a new attempt of the same batch.

Several runs may MERGE into the target at once (max_concurrent_runs). A Delta write conflict
between them is retried here, a few times, since the MERGE is idempotent; give the target
deletion vectors and liquid clustering (row-level concurrency) so that runs on disjoint ids
rarely conflict at all.

Replace `build_rows` with your own processing; keep the batch read and the idempotent MERGE.
"""

import argparse
import json
import sys
import time

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    MetadataChangedException,
)
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


MERGE_ATTEMPTS = 5
# Delta's write conflicts (SQLSTATE 2D521): the whole MERGE may simply run again.
WRITE_CONFLICTS = (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentDeleteDeleteException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    MetadataChangedException,
)
COLUMNS = ["display_name", "score", "master_updated_at", "run_key", "batch_number", "processed_at"]


class EmptyBatchError(RuntimeError):
    """The batch table has no ids for this batch: the wrong table, or a stale run of a batch purged since."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Process one cdf-orchestrator dispatch batch.")
    parser.add_argument("--run-key", required=True, help="{{job.parameters.cdf_run_key}}")
    parser.add_argument("--batch-number", required=True, type=int, help="{{job.parameters.cdf_batch_number}}")
    parser.add_argument("--batch-table", required=True, help="{{job.parameters.cdf_batch_table}}")
    parser.add_argument("--attempt", required=True, type=int, help="{{job.parameters.cdf_attempt}}")
    parser.add_argument("--master-table", required=True, help="the table the entities are read from")
    parser.add_argument("--target-table", required=True, help="the table the results are MERGEd into")
    args = parser.parse_args(argv)
    if not args.run_key:
        parser.error("--run-key is empty: launch the job from cdf-orchestrator, which sets cdf_run_key")
    if args.batch_number < 1:
        parser.error(f"--batch-number must be 1 or more, got {args.batch_number}")
    return args


def batch_ids(spark: SparkSession, args) -> DataFrame:
    """The batch's ids, read from the batch table by its key (clustered by run_key, batch_number)."""
    return (
        spark.table(args.batch_table)
        .where((F.col("run_key") == F.lit(args.run_key)) & (F.col("batch_number") == F.lit(args.batch_number)))
        .select("uts_id")
        .distinct()
    )


def build_rows(spark: SparkSession, ids: DataFrame, args) -> DataFrame:
    """One row per batch id: the master's current values, `_present` null when the master row is gone."""
    master = spark.table(args.master_table).select(
        "uts_id", "display_name", "score", F.col("updated_at").alias("master_updated_at"), F.lit(True).alias("_present")
    )
    return ids.join(master, "uts_id", "left").select(
        "uts_id",
        "display_name",
        "score",
        "master_updated_at",
        "_present",
        F.lit(args.run_key).alias("run_key"),
        F.lit(args.batch_number).cast("int").alias("batch_number"),
        F.current_timestamp().alias("processed_at"),
    )


def merge_into_target(spark: SparkSession, rows: DataFrame, args) -> None:
    target = DeltaTable.forName(spark, args.target_table)
    # Null-safe: a value that became or stopped being NULL is a change too.
    differs = " OR ".join(f"NOT (s.{c} <=> t.{c})" for c in ["display_name", "score", "master_updated_at"])
    (
        target.alias("t")
        .merge(rows.alias("s"), "t.uts_id = s.uts_id")
        .whenMatchedDelete(condition="s._present IS NULL")
        .whenMatchedUpdate(condition=differs, set={c: f"s.{c}" for c in COLUMNS})
        .whenNotMatchedInsert(condition="s._present IS NOT NULL", values={c: f"s.{c}" for c in ["uts_id", *COLUMNS]})
        .execute()
    )


def merge_with_retries(spark: SparkSession, rows: DataFrame, args) -> None:
    """The MERGE, again on a Delta write conflict with a concurrent run (it is idempotent)."""
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        try:
            merge_into_target(spark, rows, args)
            return
        except WRITE_CONFLICTS as conflict:
            if attempt == MERGE_ATTEMPTS:
                raise
            print(f"write conflict on {args.target_table} (attempt {attempt} of {MERGE_ATTEMPTS}), merging again: {type(conflict).__name__}", file=sys.stderr, flush=True)
            time.sleep(min(2 ** attempt, 30))


def main(argv=None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.getOrCreate()
    ids = batch_ids(spark, args)
    # No cache(): DataFrame caching on serverless compute is a preview an admin can switch off, and
    # the batch table is clustered by (run_key, batch_number), so reading the slice twice is cheap.
    count = ids.count()
    if count == 0:
        raise EmptyBatchError(
            f"batch {args.batch_number} of run {args.run_key} has no ids in {args.batch_table}: check that cdf_batch_table is the "
            "orchestrator's tables.batches; a batch still to run is never purged, so this is a wrong table or a stale run of a batch "
            "that succeeded and was purged since (retention.batchDays)"
        )
    merge_with_retries(spark, build_rows(spark, ids, args), args)
    summary = {"runKey": args.run_key, "batchNumber": args.batch_number, "attempt": args.attempt, "ids": count}
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
