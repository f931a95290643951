"""Create the benchmark database named by DATABASE_URL if it does not exist yet (`make bench` runs this first).

Refuses a name without "bench", like the generator: the benchmarks replace the data of that database."""

from __future__ import annotations

import os
import sys

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def main() -> None:
    url = os.environ["DATABASE_URL"]
    params = conninfo_to_dict(url)
    name = params.get("dbname", "")
    if "bench" not in name:
        sys.exit(f"refusing to create {name!r}: a benchmark database's name contains 'bench'")
    maintenance = make_conninfo(url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", file=sys.stderr)


if __name__ == "__main__":
    main()
