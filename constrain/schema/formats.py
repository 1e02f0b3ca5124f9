"""Regexes for JSON Schema ``format`` values.

Each entry is an anchored pattern (ASCII, parsed by :mod:`.strings` like a
``pattern`` keyword) whose language is *contained in* the set of valid values
of the format: exact where practical (date, time, date-time, uuid, ipv4,
duration, json-pointer), a practical subset elsewhere (email, hostname, uri,
ipv6 without embedded IPv4 or zone).  Never a superset.
"""

from __future__ import annotations

_HEX = "[0-9a-fA-F]"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # 0001-9999 (Python's date range)
_MONTH_DAY = (
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
)
DATE = rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
# RFC 3339 full-time, without leap seconds (a subset).
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = rf"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,9}})?{_OFFSET}"
DATE_TIME = rf"{DATE}[Tt]{TIME}"

# ISO 8601 durations as RFC 3339 appendix A spells them.
_DUR_SECOND = r"[0-9]+S"
_DUR_MINUTE = rf"[0-9]+M(?:{_DUR_SECOND})?"
_DUR_HOUR = rf"[0-9]+H(?:{_DUR_MINUTE})?"
_DUR_TIME = rf"T(?:{_DUR_HOUR}|{_DUR_MINUTE}|{_DUR_SECOND})"
_DUR_DAY = r"[0-9]+D"
_DUR_MONTH = rf"[0-9]+M(?:{_DUR_DAY})?"
_DUR_YEAR = rf"[0-9]+Y(?:{_DUR_MONTH})?"
_DUR_DATE = rf"(?:{_DUR_DAY}|{_DUR_MONTH}|{_DUR_YEAR})(?:{_DUR_TIME})?"
DURATION = rf"P(?:{_DUR_DATE}|{_DUR_TIME}|[0-9]+W)"

UUID = rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = _HEX + "{1,4}"
IPV6 = (
    "(?:"
    rf"(?:{_H16}:){{7}}{_H16}"
    rf"|(?:{_H16}:){{1,7}}:"
    rf"|(?:{_H16}:){{1,6}}:{_H16}"
    rf"|(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}"
    rf"|(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}"
    rf"|(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}"
    rf"|(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}"
    rf"|{_H16}:(?::{_H16}){{1,6}}"
    rf"|:(?:(?::{_H16}){{1,7}}|:)"
    ")"
)

# Hostnames: at most 4 labels of at most 61 characters (<= 247 in total, under
# the 253 limit), single hyphens only (so never an IDNA "xx--" label), the last
# label starting with a letter.  A subset of RFC 1123.
_LABEL = r"[A-Za-z0-9]{1,30}(?:-[A-Za-z0-9]{1,30})?"
_TLD = r"[A-Za-z][A-Za-z0-9]{0,29}(?:-[A-Za-z0-9]{1,30})?"
HOSTNAME = rf"(?:{_LABEL}\.){{0,3}}{_TLD}"
_LLABEL = r"[a-z0-9]{1,30}(?:-[a-z0-9]{1,30})?"
_LTLD = r"[a-z][a-z0-9]{0,29}(?:-[a-z0-9]{1,30})?"
IDN_HOSTNAME = rf"(?:{_LLABEL}\.){{0,3}}{_LTLD}"

# Email: dot-atom local part @ hostname (subset of RFC 5321 Mailbox).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
EMAIL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{HOSTNAME}"

# URI subset: scheme://host[:port][/path][?query][#fragment]; no "'" so that it
# is also a valid uri-template, and only ASCII so that it is an IRI too.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUBDELIMS = r"!$&()*+,;="
_PCHAR = rf"(?:[{_UNRESERVED}{_SUBDELIMS}:@]|%[0-9A-Fa-f]{{2}})"
_PORT = r"(?::[0-9]{1,5})?"
URI = (
    rf"[A-Za-z][A-Za-z0-9+.\-]*://(?:{HOSTNAME}|{IPV4}){_PORT}"
    rf"(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
)
JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
RELATIVE_JSON_POINTER = rf"(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"

FORMATS: dict[str, str] = {
    "date": DATE,
    "time": TIME,
    "date-time": DATE_TIME,
    "duration": DURATION,
    "uuid": UUID,
    "ipv4": IPV4,
    "ipv6": IPV6,
    "hostname": HOSTNAME,
    "idn-hostname": IDN_HOSTNAME,
    "email": EMAIL,
    "idn-email": EMAIL,
    "uri": URI,
    "uri-reference": URI,
    "iri": URI,
    "iri-reference": URI,
    "uri-template": URI,
    "json-pointer": JSON_POINTER,
    "relative-json-pointer": RELATIVE_JSON_POINTER,
}

# Known formats whose valid values we cannot describe with a regex (even a
# useful subset); they raise UnsupportedError rather than being ignored.
UNSUPPORTED_FORMATS = frozenset({"regex"})


def format_pattern(name: str) -> str | None:
    """The anchored pattern for ``name`` or None if the format is unknown."""
    body = FORMATS.get(name)
    return None if body is None else "^(?:" + body + ")$"
