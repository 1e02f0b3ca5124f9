"""Regexes for JSON Schema ``format`` values.

Each entry is an anchored pattern (ASCII, parsed by :mod:`.strings` like a
``pattern`` keyword) whose language is *contained in* the set of valid values
of the format: exact where practical (date, time, date-time, uuid, ipv4,
duration, json-pointer, uri, uri-reference), a practical subset elsewhere
(email, hostname, iri without non-ASCII characters or IP literals, uri-template without
reserved operators, ipv6 without embedded IPv4 or zone).  Never a superset.
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

# Hostnames (RFC 1123, as the fqdn package jsonschema uses checks them): at
# most 4 labels of at most 62 characters (<= 251 in total, under the 253
# limit), letters, digits and inner hyphens, never "--" at the third and fourth
# places (an IDNA "xn--" label, which idn-hostname checks), the last label
# starting with a letter.  A subset of RFC 1123.
def _label(first: str, rest: str) -> str:
    inner = rest[:-1] + "-]"
    return (rf"{first}(?:{inner}?{rest})?"  # 1-3 characters
            rf"|{first}{inner}(?:{rest}{inner}{{0,58}}{rest}|-{rest}(?:{inner}{{0,57}}{rest})?)")  # 4-62


_LABEL = _label("[A-Za-z0-9]", "[A-Za-z0-9]")
_TLD = _label("[A-Za-z]", "[A-Za-z0-9]")
HOSTNAME = rf"(?:(?:{_LABEL})\.){{0,3}}(?:{_TLD})"
_LLABEL = _label("[a-z0-9]", "[a-z0-9]")
_LTLD = _label("[a-z]", "[a-z0-9]")
IDN_HOSTNAME = rf"(?:(?:{_LLABEL})\.){{0,3}}(?:{_LTLD})"

# Email: dot-atom local part @ hostname (subset of RFC 5321 Mailbox).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
EMAIL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{HOSTNAME}"

# URIs exactly as RFC 3986 appendix A spells them (what rfc3986-validator, the
# checker jsonschema uses, accepts), except that IP literals take the IPv6
# subset above. IRIs take the same ASCII language without IP literals (a subset).
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUBDELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUBDELIMS}:@]|{_PCT})"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUBDELIMS}:]|{_PCT})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUBDELIMS}]|{_PCT})*"  # IPv4 addresses are reg-names too
_IP_LITERAL = rf"\[(?:{IPV6}|v[0-9A-Fa-f]+\.[{_UNRESERVED}{_SUBDELIMS}:]+)\]"
_SEGMENTS = rf"(?:/{_PCHAR}*)*"
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_TAIL = rf"(?:\?{_QUERY})?(?:#{_QUERY})?"
_NO_COLON = rf"(?:[{_UNRESERVED}{_SUBDELIMS}@]|{_PCT})"  # a relative path's first segment (path-noscheme)


def _uri_and_reference(host: str) -> tuple[str, str]:
    authority = rf"(?:{_USERINFO}@)?(?:{host})(?::[0-9]*)?"
    rooted = rf"//{authority}{_SEGMENTS}|/(?:{_PCHAR}+{_SEGMENTS})?"
    uri = rf"[A-Za-z][A-Za-z0-9+.\-]*:(?:{rooted}|{_PCHAR}+{_SEGMENTS})?{_TAIL}"
    return uri, rf"(?:{uri}|(?:{rooted}|{_NO_COLON}+{_SEGMENTS})?{_TAIL})"


URI, URI_REFERENCE = _uri_and_reference(rf"{_IP_LITERAL}|{_REG_NAME}")
# rfc3987-syntax (jsonschema's IRI checker) refuses every IP literal, so IRIs have none
IRI, IRI_REFERENCE = _uri_and_reference(_REG_NAME)

# RFC 6570 level 4 templates, without the operators it reserves for future use
# ("=,!@|") and prefixes of at most 3 digits (what the uri-template package
# that jsonschema uses accepts): ASCII literals, pct-encoded bytes, and
# expressions like "{?x,y*}" or "{name:3}".
_TEMPLATE_LITERAL = rf"(?:[!#$&()*+,\-./0-9:;=?@A-Z\[\]_a-z~]|{_PCT})"
_VARNAME = r"[A-Za-z0-9_](?:\.?[A-Za-z0-9_])*"
_VARSPEC = rf"{_VARNAME}(?::[1-9][0-9]{{0,2}}|\*)?"
URI_TEMPLATE = rf"(?:{_TEMPLATE_LITERAL}|\{{[+#./;?&]?{_VARSPEC}(?:,{_VARSPEC})*\}})*"
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
    "uri-reference": URI_REFERENCE,
    "iri": IRI,
    "iri-reference": IRI_REFERENCE,
    "uri-template": URI_TEMPLATE,
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
