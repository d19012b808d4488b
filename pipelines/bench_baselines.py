"""The baselines of ``make bench``: what a user would script by hand, on the same files.

* **DuckDB, same work** (the main baseline): read the bench week's masscan
  ``-oD`` gzip files, validate (address, port, transport, record type, the
  week's time window), drop special-purpose space, merge status and banner
  records into one observation per (address, port, transport) with the merge
  rules of ``pipelines/merge.py`` (best status, then earliest record; first/last
  seen; the earliest non-empty banner), join the same DB-IP country and ASN
  range tables that portcensus uses (``GeoLookup``'s IPv4 tables, exported to
  Parquet before the timed run, as portcensus's own cache is built before
  its run), identify the SSH product and version by regex, form the public
  banner (an SSH comment other than a distribution's package tag becomes
  ``<comment>``, as ``scanners/protocols/ssh.py`` does), count the
  aggregates (total, banner, product, version, country, ASN per port, values
  under k folded into "other") and write clean Parquet partitioned by port
  plus the aggregates. It prints the observation count and the port-22
  banner top 20, which ``pipelines/bench.py`` checks against portcensus's
  manifest and aggregates: the two did the same work only if they agree.
  The bench week carries SSH banners only, so the script merges the ``ssh``
  banner type only; portcensus does every type.
* **DuckDB, minimal**: parse + ``DISTINCT`` + count per port (a reference
  line: far less work).
* **pyarrow.json parse alone** (explicit schema, threads): the floor of any
  reader of these files in this stack.
* **sort | uniq**: the classic shell pipeline.

Each baseline is one shell command or ``python -m pipelines.bench_baselines
<name> ...`` run as its own process, so ``pipelines/bench.py`` can measure
wall, CPU and peak RSS alike for all of them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

# Week window of the bench week (pipelines/week.py: ISO week +- 24 h slack).
DUCKDB_SAME_WORK = """
SET threads TO {threads};
CREATE TABLE rec AS
WITH raw AS (
  SELECT ip, timestamp, port, proto, rec_type, data
  FROM read_json('{glob}', format='newline_delimited', compression='gzip', ignore_errors=true,
                 columns={{ip: 'VARCHAR', timestamp: 'VARCHAR', port: 'INTEGER', proto: 'VARCHAR',
                          rec_type: 'VARCHAR',
                          data: 'STRUCT(status VARCHAR, reason VARCHAR, ttl INTEGER, service_name VARCHAR, banner VARCHAR)'}})
), parsed AS (
  SELECT *, TRY_CAST(split_part(ip, '.', 1) AS UTINYINT) AS a, TRY_CAST(split_part(ip, '.', 2) AS UTINYINT) AS b,
         TRY_CAST(split_part(ip, '.', 3) AS UTINYINT) AS c, TRY_CAST(split_part(ip, '.', 4) AS UTINYINT) AS d,
         TRY_CAST(timestamp AS BIGINT) AS ts
  FROM raw
)
SELECT ((a::UBIGINT << 24) | (b::UBIGINT << 16) | (c::UBIGINT << 8) | d::UBIGINT)::UINTEGER AS ipint,
       port, proto, rec_type, data.status AS status, data.reason AS reason, data.ttl AS ttl,
       data.service_name AS svc, data.banner AS banner, ts,
       CASE data.status WHEN 'open' THEN 0 WHEN 'closed' THEN 1 WHEN 'no_response' THEN 2 ELSE 3 END AS rank
FROM parsed
WHERE regexp_full_match(ip, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') AND a IS NOT NULL AND b IS NOT NULL
  AND c IS NOT NULL AND d IS NOT NULL AND port BETWEEN 0 AND 65535 AND proto IN ('tcp', 'udp')
  AND rec_type IN ('status', 'banner') AND ts BETWEEN {t0} AND {t1};

DELETE FROM rec WHERE {special};

CREATE TABLE obs AS
SELECT ipint, port, proto, min(rank) AS rank,
       arg_min(reason, (rank, ts, reason, ttl)) AS reason, arg_min(ttl, (rank, ts, reason, ttl)) AS ttl,
       min(ts) AS first_seen, max(ts) AS last_seen,
       arg_min(banner, (banner = '', ts, banner)) FILTER (WHERE rec_type = 'banner' AND svc = 'ssh') AS ssh
FROM rec GROUP BY ipint, port, proto;

CREATE TABLE geo_country AS SELECT * FROM read_parquet('{geo}/country.parquet');
CREATE TABLE geo_asn AS SELECT * FROM read_parquet('{geo}/asn.parquet');
CREATE TABLE clean AS
SELECT o.*, c.iso AS country, g.asn AS asn, g.org AS as_org,
       regexp_extract(o.ssh, '^SSH-[0-9.]+-([A-Za-z][A-Za-z0-9]*)[_-]([0-9][^ ]*)', 1) AS product,
       regexp_extract(o.ssh, '^SSH-[0-9.]+-([A-Za-z][A-Za-z0-9]*)[_-]([0-9][^ ]*)', 2) AS version,
       CASE WHEN regexp_full_match(o.ssh, '[^ ]+ (Debian|Ubuntu|Raspbian|FreeBSD)-[^ ]+') THEN o.ssh
            WHEN contains(o.ssh, ' ') THEN regexp_replace(o.ssh, ' .*$', ' <comment>')
            ELSE o.ssh END AS ssh_public
FROM obs o
ASOF LEFT JOIN geo_country c ON o.ipint >= c.start
ASOF LEFT JOIN geo_asn g ON o.ipint >= g.start;

CREATE TABLE counts AS
SELECT port, proto, dimension, value, count(*) AS hosts FROM (
  SELECT port, proto, 'total' AS dimension, 'open' AS value FROM clean WHERE rank IN (0, 3)
  UNION ALL SELECT port, proto, 'banner', ssh_public FROM clean WHERE rank IN (0, 3) AND ssh IS NOT NULL
  UNION ALL SELECT port, proto, 'product', product FROM clean WHERE rank IN (0, 3) AND product <> ''
  UNION ALL SELECT port, proto, 'version', version FROM clean WHERE rank IN (0, 3) AND version <> ''
  UNION ALL SELECT port, proto, 'country', country FROM clean WHERE rank IN (0, 3) AND country IS NOT NULL
  UNION ALL SELECT port, proto, 'asn', asn::VARCHAR FROM clean WHERE rank IN (0, 3) AND asn IS NOT NULL
) GROUP BY ALL;
CREATE TABLE agg AS
SELECT port, proto, dimension, CASE WHEN hosts < {k} AND dimension <> 'total' THEN 'other' ELSE value END AS value,
       sum(hosts)::BIGINT AS hosts
FROM counts GROUP BY ALL;

COPY (SELECT * FROM clean ORDER BY port, ipint) TO '{out}/clean' (FORMAT parquet, PARTITION_BY (port), COMPRESSION zstd, OVERWRITE_OR_IGNORE true);
COPY agg TO '{out}/aggregates.parquet' (FORMAT parquet);
"""

DUCKDB_MINIMAL = """
SELECT port, proto, count(*) AS hosts FROM (
  SELECT DISTINCT ip, port, proto
  FROM read_json('{glob}', format='newline_delimited', compression='gzip',
                 columns={{ip: 'VARCHAR', timestamp: 'VARCHAR', port: 'INTEGER', proto: 'VARCHAR'}})
) GROUP BY port, proto ORDER BY hosts DESC;
"""

SHELL = ("zcat {files} | LC_ALL=C awk -F'\"' '{{print $4\" \"$11\" \"$14}}' | LC_ALL=C sort -u "
         "| LC_ALL=C awk '{{print $2\" \"$3}}' | LC_ALL=C sort | uniq -c | sort -rn")


def special_purpose_sql() -> str:
    """A SQL condition true for IPv4 addresses (``ipint``) in excluded
    special-purpose space: the same table portcensus uses."""
    from pipelines.special_purpose import excluded_ranges, registry

    _facts, blocks = registry()
    terms = [f"ipint BETWEEN {a} AND {z}" for a, z in excluded_ranges(blocks, 4)]
    return " OR ".join(terms) or "false"


def prepare_geo(folder: str) -> str:
    """Export portcensus's own IPv4 range tables (country, ASN) to Parquet in
    ``folder`` (once, before any timed run); returns the folder."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.config import DEFAULT_ASN_DB, DEFAULT_COUNTRY_DB, DEFAULT_GEOIP_CACHE
    from pipelines.geoip import GeoLookup

    os.makedirs(folder, exist_ok=True)
    done = os.path.join(folder, "asn.parquet")
    if os.path.exists(done):
        return folder
    geo = GeoLookup(DEFAULT_COUNTRY_DB, DEFAULT_ASN_DB, DEFAULT_GEOIP_CACHE)
    geo.setup()
    c = geo._country.t
    iso = geo._iso.take(pa.array(c["v4_val"], mask=c["v4_val"] < 0))
    pq.write_table(pa.table({"start": pa.array(c["v4_start"], pa.uint32()), "iso": iso}),
                   os.path.join(folder, "country.parquet"))
    a = geo._asn.t
    val = a["v4_val"]
    none = val < 0
    safe = np.where(none, 0, val)
    asn = pa.array(geo._asn_num[safe], pa.uint32(), mask=none | ~geo._asn_ok[safe])
    org = geo._orgs.take(pa.array(val, mask=none))
    pq.write_table(pa.table({"start": pa.array(a["v4_start"], pa.uint32()), "asn": asn, "org": org}), done)
    return folder


def run_same_work(glob: str, geo: str, out: str, week: str, k: int, threads: int) -> dict:
    import duckdb

    from pipelines.normalize import week_window

    lo, hi = week_window(week)                  # [lo, hi) in microseconds
    t0, t1 = lo // 1_000_000, (hi - 1) // 1_000_000
    os.makedirs(out, exist_ok=True)
    con = duckdb.connect()
    con.execute(DUCKDB_SAME_WORK.format(threads=threads, glob=glob, geo=geo, out=out, k=k,
                                        special=special_purpose_sql(),
                                        t0=t0, t1=t1))
    observations = con.execute("SELECT count(*) FROM clean").fetchone()[0]
    top = con.execute("SELECT value, hosts FROM agg WHERE port = 22 AND dimension = 'banner' AND value <> 'other' "
                      "ORDER BY hosts DESC, value LIMIT 20").fetchall()
    return {"observations": observations, "top20": [[v, int(h)] for v, h in top]}


def run_minimal(glob: str) -> dict:
    import duckdb

    rows = duckdb.sql(DUCKDB_MINIMAL.format(glob=glob)).fetchall()
    return {"observations": int(sum(r[2] for r in rows))}


def run_floor(files: list[str]) -> dict:
    """pyarrow.json with an explicit schema on threads, one file after another."""
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([("ip", pa.string()), ("timestamp", pa.string()), ("port", pa.int32()),
                        ("proto", pa.string()), ("rec_type", pa.string()),
                        ("data", pa.struct([("status", pa.string()), ("reason", pa.string()),
                                            ("ttl", pa.int32()), ("service_name", pa.string()),
                                            ("banner", pa.string())]))])
    rows = 0
    for f in files:
        with pa.input_stream(f, compression="gzip") as stream:
            t = pj.read_json(stream, read_options=pj.ReadOptions(block_size=4 << 20, use_threads=True),
                             parse_options=pj.ParseOptions(explicit_schema=schema,
                                                           unexpected_field_behavior="ignore"))
        rows += t.num_rows
    return {"rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bench_baselines", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("same-work", help="DuckDB doing portcensus's work (prints JSON)")
    s.add_argument("--glob", required=True)
    s.add_argument("--geo", required=True, help="folder of prepare-geo's Parquet tables")
    s.add_argument("--out", required=True)
    s.add_argument("--week", required=True)
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    m = sub.add_parser("minimal", help="DuckDB parse + DISTINCT + count")
    m.add_argument("--glob", required=True)
    f = sub.add_parser("floor", help="pyarrow.json parse alone")
    f.add_argument("files", nargs="+")
    g = sub.add_parser("prepare-geo", help="export the GeoIP range tables for same-work")
    g.add_argument("folder")
    args = ap.parse_args(argv)
    if args.what == "same-work":
        res = run_same_work(args.glob, args.geo, args.out, args.week, args.k, args.threads)
    elif args.what == "minimal":
        res = run_minimal(args.glob)
    elif args.what == "floor":
        res = run_floor(args.files)
    else:
        res = {"folder": prepare_geo(args.folder)}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
