"""Runs a Databricks Python task (spark_python_task) on a local Spark with Delta, as spark-submit's app.

Difference from Databricks: there, every compute sees the same Unity Catalog, so the job finds the
tables by name. Here the tables belong to the Spark Thrift Server's own metastore (embedded Derby,
one process only), so this process gets an in-memory catalog in which each table the job uses is
registered by name at the Delta location the Thrift server reports. The job file then runs
unchanged, as `__main__`, with the task's parameters as its arguments.

Usage: spark-submit run_on_local_spark.py <tables.json> <job.py> [job arguments...]
where tables.json maps "schema.table" to its location.
"""

import json
import runpy
import sys

from pyspark.sql import SparkSession


def main() -> None:
    tables_file, job_file, *job_args = sys.argv[1:]
    with open(tables_file, encoding="utf-8") as f:
        tables = json.load(f)
    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    for name, location in tables.items():
        schema = name.rsplit(".", 1)[0]
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{location}'")
    sys.argv = [job_file, *job_args]
    runpy.run_path(job_file, run_name="__main__")


if __name__ == "__main__":
    main()
