"""The canonical record shapes of portcensus, defined once.

Three Arrow schemas carry every row through the system:

* ``RAW_SCHEMA`` -- what a scanner reader (``scanners/``) emits: one row per
  record *as the scanner wrote it* (a masscan status record, a masscan banner
  record, a zmap CSV line, a zgrab2 JSON line). Values are as written: IPs are
  unvalidated text, banners are the original bytes after the format's escapes
  were undone. Every row carries its provenance (``source_file``,
  ``source_offset``).
* ``CLEAN_SCHEMA`` -- one row per service observation (week, ip, port,
  transport) after validation, opt-out exclusion and the merge of a port's
  status record with its banner records. This is what is written as Parquet.
* ``QUARANTINE_SCHEMA`` -- one row per input record that could not be used,
  with a reason from the closed ``QuarantineReason`` enum.

Field documentation lives in each field's metadata (key ``doc``) so that
writers, the manifest and the methodology page can all show it.
"""
from __future__ import annotations

import enum

import pyarrow as pa


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


class Disposition(str, enum.Enum):
    """Where every input record ends up. The manifest proves
    ``read == accepted + quarantined + excluded + merged``."""

    ACCEPTED = "accepted"        # became (the representative of) one clean row
    QUARANTINED = "quarantined"  # unusable; a QUARANTINE_SCHEMA row says why
    EXCLUDED = "excluded"        # inside the opt-out list; counted, never kept
    MERGED = "merged"            # folded into a clean row: a banner record of
                                 # an observed port, a retransmission, or the
                                 # same port seen by another shard


class QuarantineReason(str, enum.Enum):
    """Closed vocabulary of why a record was quarantined (zgrab2 ``status.go``
    style: a fixed set, never free text)."""

    MALFORMED_RECORD = "malformed_record"          # not parseable in its format
    TRUNCATED_RECORD = "truncated_record"          # cut off (partial line / record)
    INVALID_IP = "invalid_ip"                      # not an IPv4/IPv6 address
    INVALID_PORT = "invalid_port"                  # outside 0..65535
    INVALID_TRANSPORT = "invalid_transport"        # not tcp/udp/sctp/icmp
    INVALID_TIMESTAMP = "invalid_timestamp"        # missing, unparseable or absurd
    MISSING_FIELD = "missing_field"                # a required field is absent
    OVERSIZED_RECORD = "oversized_record"          # record or banner over the limit
    UNKNOWN_RECORD_TYPE = "unknown_record_type"    # e.g. -oB record type byte
    UNREADABLE_DATA = "unreadable_data"            # bytes after damage that could
                                                   # not be resynchronised
    OUTSIDE_WEEK = "outside_week"                  # timestamp outside the week's window
    MISSING_TIMESTAMP = "missing_timestamp"        # no time in the record nor for its file


class ExclusionReason(str, enum.Enum):
    """Why a valid record was *excluded* (counted, never kept)."""

    OPTOUT = "optout"                      # inside the opt-out list
    SPECIAL_PURPOSE = "special_purpose"    # IANA special-purpose space, not the public Internet


class PortSource(str, enum.Enum):
    """Where a row's port came from (closed vocabulary, best evidence first).
    A port that no record, sidecar or file name states is the tool's default
    and is published as such, never silently as a fact."""

    RECORD = "record"        # the record names it (masscan, zmap sport, zgrab2 URL/port/error)
    SIDECAR = "sidecar"      # the landing sidecar or ``land --port``
    FILENAME = "filename"    # a trailing ``_p<port>`` in a bare zmap list's file name
    ASSUMED = "assumed"      # the zgrab2 module's default port: nothing in the data says so


PORT_SOURCES = tuple(p.value for p in PortSource)   # index = rank: lower is better evidence


class DamageKind(str, enum.Enum):
    """File-level damage. Damage is not a record: it marks the file damaged in
    the manifest and says where (the records it cost are quarantined)."""

    COMPRESSION_TRUNCATED = "compression_truncated"  # stream ends early
    COMPRESSION_CORRUPT = "compression_corrupt"      # checksum/data error
    MISSING_FOOTER = "missing_footer"                # e.g. -oJ without ']', -oL without '# end'
    PARTIAL_LAST_RECORD = "partial_last_record"      # file ends mid-record
    BAD_RECORD_TYPE = "bad_record_type"              # -oB: unknown type byte, stream lost
    UNKNOWN_FORMAT = "unknown_format"                # no reader recognises the content
    READ_ERROR = "read_error"                        # the file system failed
    # issue 13: bounded reading, salvage and discovery
    DECOMPRESSION_LIMIT = "decompression_limit"      # output passed the per-file ceiling (a bomb)
    RECORD_CUT_BY_DAMAGE = "record_cut_by_damage"    # a line cut by a fault or after a resync point
    NOT_A_REGULAR_FILE = "not_a_regular_file"        # FIFO, device, socket: never opened
    OUTSIDE_RAW = "outside_raw"                      # a symlink leading out of the raw folder
    SYMLINK_LOOP = "symlink_loop"                    # a symlink that resolves to itself
    DANGLING_LINK = "dangling_link"                  # a symlink to nothing
    UNREADABLE_FOLDER = "unreadable_folder"          # a folder discovery could not list


class ObservationStatus(str, enum.Enum):
    OPEN = "open"              # SYN-ACK, an application answer, or a banner
    CLOSED = "closed"          # RST / ICMP port unreachable
    NO_RESPONSE = "no_response"  # zgrab2 connection-timeout etc.


TRANSPORTS = ("tcp", "udp", "sctp", "icmp")

TIMESTAMP = pa.timestamp("us", tz="UTC")

# SSH host key of an observation (zgrab2 ssh: key_exchange.server_host_key);
# null for every other scanner and protocol. Never published: only counts of
# keys reach the site (pipelines/keys/stats.py).
HOST_KEY_FIELDS = [
    _f("key_algorithm", pa.string(), "SSH host key algorithm as offered, e.g. ssh-rsa, ssh-ed25519."),
    _f("key_fingerprint_sha256", pa.string(), "Hex SHA-256 of the host key blob (the key's identity)."),
    _f("key_bits", pa.int32(), "Key size in bits (RSA modulus length, curve size)."),
    _f("rsa_modulus", pa.binary(), "RSA modulus, big-endian bytes (for duplicate and batch-GCD checks)."),
    _f("rsa_exponent", pa.int64(), "RSA public exponent (null if it does not fit 63 bits)."),
]

RAW_SCHEMA = pa.schema([
    _f("ip", pa.string(), "Address as the scanner wrote it (unvalidated)."),
    _f("port", pa.int32(), "Port as written; 0 for ICMP."),
    _f("transport", pa.string(), "tcp, udp, sctp or icmp, as written."),
    _f("status", pa.string(), "open/closed/no_response for a status record; null for a banner-only record."),
    _f("reason", pa.string(), "Scanner's reason: masscan syn-ack/rst-ack/none/response, zmap classification, zgrab2 status."),
    _f("ttl", pa.int32(), "IP TTL of the response, where the scanner records it."),
    _f("timestamp", TIMESTAMP, "When the scanner saw the record (UTC)."),
    _f("service", pa.string(), "Banner type (masscan service name, or zgrab2 module field); null for status records."),
    _f("banner", pa.binary(), "Banner as the original bytes (format escapes undone); null for status records."),
    _f("tool", pa.string(), "masscan, zmap or zgrab2."),
    _f("tool_version", pa.string(), "Version of the tool that wrote the file, where known."),
    _f("source_file", pa.string(), "File the record was read from."),
    _f("source_offset", pa.int64(), "Byte offset of the record in the decompressed file."),
] + HOST_KEY_FIELDS + [
    _f("port_source", pa.string(), "Where the port came from when the record does not name it: "
       "sidecar, filename or assumed (a PortSource value); null: the record names it."),
])

OBSERVATION_SCHEMA = pa.schema([
    _f("week", pa.string(), "ISO week of the scan, e.g. 2013-W37.", nullable=False),
    _f("ip", pa.string(), "Canonical address text (IPv4 dotted quad, IPv6 RFC 5952).", nullable=False),
    _f("ip_version", pa.int8(), "4 or 6.", nullable=False),
    _f("port", pa.uint16(), "Port number; 0 for ICMP.", nullable=False),
    _f("transport", pa.string(), "tcp, udp, sctp or icmp.", nullable=False),
    _f("status", pa.string(), "open, closed or no_response; open wins when records disagree.", nullable=False),
    _f("reason", pa.string(), "Reason of the record that decided the status."),
    _f("ttl", pa.int32(), "TTL of the record that decided the status."),
    _f("first_seen", TIMESTAMP, "Earliest timestamp of any merged record (null: the format has none, e.g. a bare zmap list)."),
    _f("last_seen", TIMESTAMP, "Latest timestamp of any merged record."),
    _f("banners", pa.map_(pa.string(), pa.string()),
       "Banner text per banner type (UTF-8; invalid bytes as \\xNN, see banner_fallback)."),
    _f("banner_fallback", pa.list_(pa.string()),
       "Banner types whose bytes were not valid UTF-8 and were decoded with \\xNN escapes."),
    _f("tool", pa.string(), "Tool of the representative record."),
    _f("tool_version", pa.string(), "Tool version of the representative record."),
    _f("records", pa.int32(), "How many input records were merged into this row.", nullable=False),
    *HOST_KEY_FIELDS,
    _f("source_file", pa.string(), "Provenance: file of the representative record."),
    _f("source_offset", pa.int64(), "Provenance: byte offset of the representative record."),
    _f("port_source", pa.string(), "Where the port came from, best evidence among the merged records: "
       "record, sidecar, filename or assumed (the tool's default port; nothing in the data says so).",
       nullable=False),
])

# Columns later stages add to each observation (pipelines/responders.py,
# pipelines/geoip.py, scanners/protocols/).
ENRICHMENT_FIELDS = [
    _f("responder_group", pa.string(),
       "Suspected single-responder group id (same /24 or /48, port and identical banners), or null."),
    _f("host_open_ports", pa.int16(), "Open ports of this address this week (any transport)."),
    _f("many_ports", pa.bool_(), "The address answers on an implausible number of ports."),
    _f("country", pa.string(), "ISO 3166 country code of the address, null if unknown."),
    _f("asn", pa.uint32(), "Autonomous system number, null if unknown."),
    _f("as_org", pa.string(), "Autonomous system organisation, null if unknown."),
    _f("protocol", pa.string(), "Protocol that read the primary banner (or the port's protocol)."),
    _f("banner_public", pa.string(),
       "Public form of the primary banner: host names, addresses, e-mail, dates and serials redacted. "
       "The only banner text that may reach aggregates or the site."),
    _f("vendor", pa.string(), "Vendor from the fingerprint rules, where the banner says."),
    _f("product", pa.string(), "Product from the fingerprint rules."),
    _f("version", pa.string(), "Product version from the fingerprint rules."),
    _f("os_family", pa.string(), "Operating system family, where the banner says."),
    _f("os_release", pa.string(), "Operating system release (e.g. Ubuntu 12.04), where the banner says."),
    _f("device_type", pa.string(), "Device type (router, firewall, ...), where known."),
    _f("cpe", pa.string(), "CPE 2.3 name of the identified product "
       "(cpe:2.3:part:vendor:product:version:*:*:*:*:*:*:*, vendor and product as in NVD's "
       "dictionary; version * when unknown), null when no rule names one."),
]

# The address in a form that sorts and ranges numerically (the text does not:
# "10.0.0.9" > "10.0.0.10"), beside the text; written from the pipeline's ip16.
IP_BYTES_FIELD = _f("ip_bytes", pa.binary(16),
                    "The address as 16 bytes in network order, IPv4 as IPv4-mapped ::ffff:a.b.c.d: "
                    "byte order is numeric order (DuckDB BLOB, pandas bytes, Spark binary). "
                    "Null only in weeks written before this column existed.")


def _after(fields: list[pa.Field], name: str, extra: pa.Field) -> list[pa.Field]:
    i = [f.name for f in fields].index(name) + 1
    return fields[:i] + [extra] + fields[i:]


CLEAN_SCHEMA = pa.schema(_after(list(OBSERVATION_SCHEMA), "ip", IP_BYTES_FIELD) + ENRICHMENT_FIELDS)

QUARANTINE_SCHEMA = pa.schema([
    _f("source_file", pa.string(), "File the record came from.", nullable=False),
    _f("source_offset", pa.int64(), "Byte offset of the record in the decompressed file."),
    _f("reason", pa.string(), "A QuarantineReason value.", nullable=False),
    _f("detail", pa.string(), "Short fixed-form explanation (never attacker text)."),
    _f("excerpt", pa.string(), "Up to 160 bytes of the record, \\xNN-escaped where not printable ASCII."),
])

# The public aggregates (pipelines/aggregate.py): long format, one row per
# (week, port, transport, dimension, value); k-suppressed before writing.
AGG_SCHEMA = pa.schema([
    _f("week", pa.string(), "ISO week, e.g. 2013-W37.", nullable=False),
    _f("port", pa.uint16(), "Port number; 0 for ICMP.", nullable=False),
    _f("transport", pa.string(), "tcp, udp, sctp or icmp.", nullable=False),
    _f("dimension", pa.string(), "What the value describes: total, banner, product, version, os, "
                              "device_type, country, asn, many_ports, cpe (CPE 2.3 name), identification "
                              "(identified / unidentified / no_banner), version_age (<1y, 1-3y, 3-5y, 5-10y, "
                              ">=10y, unknown) or eol (end_of_life / supported / unknown).", nullable=False),
    _f("value", pa.string(), "The value; 'other' holds every value seen on fewer than k hosts.", nullable=False),
    _f("hosts_raw", pa.int64(), "Open (address, port) observations with this value.", nullable=False),
    _f("hosts_adjusted", pa.int64(), "As hosts_raw, each suspected single-responder group counted once.", nullable=False),
])


# Columns that say *where* a row came from rather than *what* was observed.
# Re-sharding the input legitimately changes them; everything else must not change.
PROVENANCE_COLUMNS = ("source_file", "source_offset")


def field_docs(schema: pa.Schema) -> dict[str, str]:
    """{column: documentation} for the methodology page and --help output."""
    return {f.name: (f.metadata or {}).get(b"doc", b"").decode() for f in schema}
