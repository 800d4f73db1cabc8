"""The downstream job cdf-orchestrator launches once per dispatch batch.

The orchestrator writes each fan-in's changed ids into the batch table, one row per
(run_key, batch_number, uts_id), and launches this job with the job parameters
cdf_run_key, cdf_batch_number, cdf_batch_table and cdf_attempt. The job reads exactly its
batch's ids from that table (a join, never an `isin` list through parameters: a batch holds
thousands of ids and parameters are limited in size), reads the master rows for them and
MERGEs the result into the target table.

Re-running a batch is safe and changes nothing: a target row is only rewritten when the master
row is newer or different, an id whose master row is gone is deleted from the target, and an
older batch re-run after a newer one cannot overwrite newer data. The orchestrator relies on
this: a run that failed half-way is launched again as a new attempt of the same batch.

Replace `build_rows` with your own processing; keep the batch read and the idempotent MERGE.
"""

import argparse
import json
import sys

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


class EmptyBatchError(RuntimeError):
    """The batch table has no ids for this batch: the wrong table, or rows purged before a relaunch."""


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
    """One row per batch id: the master's current values, or all nulls when the master row is gone."""
    master = spark.table(args.master_table).select(
        "uts_id", "display_name", "score", F.col("updated_at").alias("master_updated_at")
    )
    return ids.join(master, "uts_id", "left").select(
        "uts_id",
        "display_name",
        "score",
        "master_updated_at",
        F.lit(args.run_key).alias("run_key"),
        F.lit(args.batch_number).cast("int").alias("batch_number"),
        F.current_timestamp().alias("processed_at"),
    )


def merge_into_target(spark: SparkSession, rows: DataFrame, args) -> None:
    target = DeltaTable.forName(spark, args.target_table)
    newer_or_different = (
        "s.master_updated_at > t.master_updated_at"
        " OR (s.master_updated_at = t.master_updated_at AND (s.display_name <> t.display_name OR s.score <> t.score))"
    )
    (
        target.alias("t")
        .merge(rows.alias("s"), "t.uts_id = s.uts_id")
        .whenMatchedDelete(condition="s.master_updated_at IS NULL")
        .whenMatchedUpdate(
            condition=newer_or_different,
            set={c: f"s.{c}" for c in ["display_name", "score", "master_updated_at", "run_key", "batch_number", "processed_at"]},
        )
        .whenNotMatchedInsert(condition="s.master_updated_at IS NOT NULL", values={c: f"s.{c}" for c in rows.columns})
        .execute()
    )


def main(argv=None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.getOrCreate()
    ids = batch_ids(spark, args).cache()
    count = ids.count()
    if count == 0:
        raise EmptyBatchError(
            f"batch {args.batch_number} of run {args.run_key} has no ids in {args.batch_table}: check that cdf_batch_table is the "
            "orchestrator's tables.batches, and that retention.batchDays did not purge the batch before this attempt"
        )
    merge_into_target(spark, build_rows(spark, ids, args), args)
    summary = {"runKey": args.run_key, "batchNumber": args.batch_number, "attempt": args.attempt, "ids": count}
    print(json.dumps(summary), flush=True)
    ids.unpersist()
    return summary


if __name__ == "__main__":
    main()
