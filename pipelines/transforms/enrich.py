"""Enrichment stages over merged buckets: (bucket, table) -> (bucket, table).

* ``FlagResponders``: single-responder groups and many-port hosts (bucket-local,
  because buckets are keyed by network).
* ``EnrichGeoAsn``: country and ASN columns from MaxMind-format databases,
  looked up a whole column at a time.
* ``IdentifyProducts``: protocol, public (redacted) banner, product, version
  and OS from the fingerprint rules, once per distinct banner; each value
  through the public gate (scanners/protocols/gate.py), the rows with a
  refused value counted (``observations_with_redacted_value``).
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.responders import ResponderThresholds, annotate


def redacted_rows(ident) -> int:
    """Rows of an identify_table result with any value the gate refused."""
    import pyarrow.compute as pc
    from scanners.protocols.gate import REDACTED
    hit = None
    for name in ident.column_names:
        if name == "protocol":
            continue
        col = pc.fill_null(pc.equal(ident.column(name), REDACTED), False)
        hit = col if hit is None else pc.or_(hit, col)
    return int(pc.sum(hit).as_py() or 0) if hit is not None else 0


class _FlagFn(beam.DoFn):
    def __init__(self, th: ResponderThresholds):
        self.th = th
        self.grouped = Metrics.counter("portcensus", "observations_in_responder_groups")

    def process(self, element):
        bucket, table = element
        out = annotate(table, self.th)
        self.grouped.inc(out.num_rows - out.column("responder_group").null_count)
        yield bucket, out


class FlagResponders(beam.PTransform):
    """Adds responder_group, host_open_ports and many_ports (pipelines/responders.py)."""

    def __init__(self, thresholds: ResponderThresholds):
        super().__init__()
        self.th = thresholds

    def expand(self, pcoll):
        return pcoll | "Annotate" >> beam.ParDo(_FlagFn(self.th))


class _GeoFn(beam.DoFn):
    def __init__(self, country_db: str | None, asn_db: str | None, cache_dir: str | None):
        self.country_db, self.asn_db, self.cache_dir = country_db, asn_db, cache_dir
        self.lookup = None
        self.unknown = Metrics.counter("portcensus", "observations_without_country")

    def setup(self):
        # Heavy: the databases' networks are loaded (or read from the on-disk
        # cache) once per worker, never per element.
        from pipelines.geoip import GeoLookup
        self.lookup = GeoLookup(self.country_db, self.asn_db, self.cache_dir)
        self.lookup.setup()

    def process(self, element):
        bucket, table = element
        geo = self.lookup.lookup(table.column("ip16").combine_chunks(),
                                 table.column("ip_version").combine_chunks())
        for name in ("country", "asn", "as_org"):
            table = table.append_column(name, geo.column(name))
        self.unknown.inc(geo.column("country").null_count)
        yield bucket, table


class EnrichGeoAsn(beam.PTransform):
    """Adds country (ISO code), asn and as_org; unknown is null, never guessed."""

    def __init__(self, country_db: str | None, asn_db: str | None, cache_dir: str | None):
        super().__init__()
        self.fn = _GeoFn(country_db, asn_db, cache_dir)

    def expand(self, pcoll):
        return pcoll | "Lookup" >> beam.ParDo(self.fn)


class _IdentifyFn(beam.DoFn):
    def __init__(self):
        self.identified = Metrics.counter("portcensus", "observations_with_product")
        self.redacted = Metrics.counter("portcensus", "observations_with_redacted_value")

    def setup(self):
        from scanners.protocols.identify import identify_table
        self.identify_table = identify_table

    def process(self, element):
        bucket, table = element
        ident = self.identify_table(table.column("port").combine_chunks(),
                                    table.column("transport").combine_chunks(),
                                    table.column("banners").combine_chunks())
        for name in ident.column_names:
            table = table.append_column(name, ident.column(name))
        self.identified.inc(table.num_rows - ident.column("product").null_count)
        # rows with a value the gate refused (counted per row, computed per column)
        self.redacted.inc(redacted_rows(ident))
        yield bucket, table


class IdentifyProducts(beam.PTransform):
    """Adds protocol, banner_public, vendor, product, version, os_family,
    os_release, device_type (scanners/protocols/)."""

    def expand(self, pcoll):
        return pcoll | "Identify" >> beam.ParDo(_IdentifyFn())
