#!/usr/bin/env python3
"""Runs the statements `exdep ddl` printed in a real engine and checks what the tables show.

    check_ddl.py --engine duckdb|spark|hive --ddl FILE --expect EXPECT.json [--rows-out FILE]
                 [--spark-conf K=V ...]

EXPECT.json is {"table": {"rows": N, "provinces": ["11", "44", "CN"]}, ...} ("provinces"
only for tables partitioned by province). For each table listed it checks the row count,
the distinct `province` values, that `province` has a string type and `year` an integer
type: a Hive reader left to infer it would make a folder holding only numeric codes
(province=11, province=44) an integer column, which is what the explicit DDL is for. With
--rows-out it writes every table's rows, normalized as read_published.py normalizes them,
for a comparison with what other readers read.

duckdb runs in-process (python's duckdb); spark runs a local pyspark session with an
in-memory catalog; hive is the same session with Spark's embedded Hive metastore, so that
HiveQL (`CREATE EXTERNAL TABLE ... STORED AS PARQUET`) runs too. Ends with a line
'N passed, N failed' and exits 1 if any check failed or any statement was rejected.
"""

import argparse
import json
import sys
import tempfile

from read_published import normalized


def statements(text):
    """Splits SQL text on `;` outside quotes and drops `--` comments: the Spark API takes one
    statement per call, and locations or comments may hold a `;`."""
    out, buf, quote, i = [], [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            buf.append(c)
            if c == quote:
                quote = None
        elif c in "'\"`":
            quote = c
            buf.append(c)
        elif text.startswith("--", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif c == ";":
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(c)
        i += 1
    out.append("".join(buf).strip())
    return [s for s in out if s]


class DuckDB:
    def __init__(self, _conf):
        import duckdb

        self.con = duckdb.connect()

    def run(self, sql):
        self.con.execute(sql)

    def query(self, sql):
        return self.con.execute(sql).fetchall()

    def column_type(self, table, column):
        rel = self.con.sql(f"SELECT {column} FROM {table} LIMIT 0")
        return str(rel.types[0])

    @staticmethod
    def is_string(type_name):
        return type_name.upper() == "VARCHAR"

    @staticmethod
    def is_integer(type_name):
        return type_name.upper() == "INTEGER"

    def rows(self, table):
        relation = self.con.sql(f"SELECT * FROM {table}")
        return relation.columns, relation.fetchall()

    def close(self):
        self.con.close()


class Spark:
    def __init__(self, conf, hive=False):
        from pyspark.sql import SparkSession

        # The warehouse and Derby's metastore go to a temporary folder, not the working
        # directory; one core and no UI keep the JVM light on a small CI machine.
        self.tmp = tempfile.TemporaryDirectory(prefix="check_ddl_spark_")
        builder = (
            SparkSession.builder.master("local[1]")
            .appName("check_ddl")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "1")
            .config("spark.sql.warehouse.dir", f"{self.tmp.name}/warehouse")
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={self.tmp.name}/derby")
        )
        for key, value in conf:
            builder = builder.config(key, value)
        if hive:
            builder = builder.enableHiveSupport()
        self.spark = builder.getOrCreate()
        self.spark.sparkContext.setLogLevel("ERROR")
        try:
            # PySpark 4 also logs every failed statement as a JSON record on stderr; this
            # script reports failures itself.
            from pyspark.logger import PySparkLogger

            PySparkLogger.getLogger("SQLQueryContextLogger").disabled = True
        except ImportError:
            pass

    def run(self, sql):
        self.spark.sql(sql).collect()

    def query(self, sql):
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def column_type(self, table, column):
        return self.spark.table(table).schema[column].dataType.typeName()

    @staticmethod
    def is_string(type_name):
        return type_name in ("string", "varchar", "char")

    @staticmethod
    def is_integer(type_name):
        return type_name == "integer"

    def rows(self, table):
        frame = self.spark.table(table)
        return frame.columns, [tuple(row) for row in frame.collect()]

    def close(self):
        self.spark.stop()
        self.tmp.cleanup()


def first_line(error):
    """The engine's own one-line reason: for a Java exception that PySpark did not convert,
    str() only says which py4j call failed, so the Java exception's text is used."""
    java = getattr(error, "java_exception", None)
    text = (java.toString() if java is not None else str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_table(engine, table, expected):
    """The problems found with one table, as messages (none when it matches), a summary,
    and its rows, normalized as read_published.py normalizes them."""
    problems = []
    columns, rows = engine.rows(table)
    if len(rows) != expected["rows"]:
        problems.append(f"{len(rows)} rows, expected {expected['rows']}")
    kinds = {}
    for column, is_kind, kind_name in (("year", engine.is_integer, "an integer"), ("province", engine.is_string, "a string")):
        if column in columns:
            kinds[column] = engine.column_type(table, column)
            if not is_kind(kinds[column]):
                problems.append(f"{column} is {kinds[column]}, expected {kind_name} type")
    got = None
    if "provinces" in expected:
        # Compared as text so a wrongly numeric province (44 for '44') still shows what it held.
        index = columns.index("province")
        got = sorted({str(row[index]) for row in rows})
        want = sorted(str(p) for p in expected["provinces"])
        if got != want:
            problems.append(f"provinces {got}, expected {want}")
    summary = f"{len(rows)} rows" + (f", provinces {','.join(got)}" if got else "")
    summary += "".join(f", {column} {kind}" for column, kind in kinds.items())
    return problems, summary, normalized(columns, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", required=True, choices=["duckdb", "spark", "hive"])
    parser.add_argument("--ddl", required=True, help="SQL file printed by `exdep ddl`")
    parser.add_argument(
        "--expect", required=True, help='{"table": {"rows": N, "provinces": [...]}}'
    )
    parser.add_argument(
        "--rows-out", help="write each table's rows here, normalized as read_published.py does"
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting, e.g. spark.jars=/path/delta-spark.jar",
    )
    args = parser.parse_args()

    with open(args.ddl) as f:
        sqls = statements(f.read())
    with open(args.expect) as f:
        expect = json.load(f)
    conf = [kv.split("=", 1) for kv in args.spark_conf]

    engine = DuckDB(conf) if args.engine == "duckdb" else Spark(conf, hive=args.engine == "hive")
    failed = passed = 0
    try:
        for n, sql in enumerate(sqls, 1):
            try:
                engine.run(sql)
            except Exception as e:
                print(
                    f"FAIL statement {n} of {args.ddl} rejected by {args.engine}: {first_line(e)}\n"
                    f"     {sql.splitlines()[0]} ..."
                )
                print(f"0 passed, {len(expect)} failed")
                return 1
        print(f"ran {len(sqls)} statements from {args.ddl} in {args.engine}")
        rows_by_table = {}
        for table, expected in sorted(expect.items()):
            try:
                problems, summary, rows_by_table[table] = check_table(engine, table, expected)
            except Exception as e:
                problems, summary = [f"cannot be read: {first_line(e)}"], ""
            if problems:
                failed += 1
                print(f"FAIL {table}: " + "; ".join(problems))
            else:
                passed += 1
                print(f"ok   {table}: {summary}")
        if args.rows_out:
            with open(args.rows_out, "w") as out:
                json.dump(rows_by_table, out)
    finally:
        engine.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
