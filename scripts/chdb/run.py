#!/usr/bin/env python3
"""Run SQL statements on the ClickHouse engine embedded in chdb-core.

Usage: run.py DIR

DIR is the session's data directory (chdb allows one per process). The
first line written to stdout describes the engine:

    {"version": "26.9.2.1", "timezone": "UTC"}

Then each line read from stdin is a JSON object {"sql": "..."} holding one
statement, and each is answered with one line:

    {"rows": [["Sha", "2"], ...]}     the result, as TabSeparatedRaw fields
    {"error": "Code: 60. DB::Exception: ..."}

Fields are written without escaping (NULL is \\N), so a value holding a
tab or a newline cannot be told apart: the tests query no such values.
The process ends at the end of its input.
"""
import json
import sys


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def rows(result):
    text = result.bytes().decode("utf-8", errors="replace")
    return [line.split("\t") for line in text.splitlines()]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: run.py DIR")
    try:
        from chdb import session
    except ImportError as e:
        sys.exit(f"chdb-core is not installed ({e}): run bash scripts/chdb/install.sh")
    sess = session.Session(sys.argv[1])
    version, tz = rows(sess.query("SELECT version(), timezone()", "TabSeparatedRaw"))[0]
    answer({"version": version, "timezone": tz})
    for line in sys.stdin:
        if not line.strip():
            continue
        sql = json.loads(line)["sql"]
        try:
            answer({"rows": rows(sess.query(sql, "TabSeparatedRaw"))})
        except Exception as e:  # the engine's own message is the answer
            answer({"error": str(e)})
    sess.close()


if __name__ == "__main__":
    main()
