"""Regexes for JSON numbers restricted to a numeric range.

Integers are exact for any bounds (Python ints compare exactly).  Bounded
non-integers are written without exponent and with at most
:data:`MAX_SIG_DIGITS` significant digits: such decimals survive the
decimal -> double conversion a validator performs without two of them
colliding, so ``x < bound`` on the text implies ``float(x) < bound`` (see
:func:`bound_value`).  That is a subset of the valid numbers, never a superset.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

INTEGER_RX = r"-?(?:0|[1-9][0-9]*)"
NUMBER_RX = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
MAX_SIG_DIGITS = 15


def _alt(parts: list[str]) -> str | None:
    parts = [p for p in parts if p is not None]
    out = []
    for p in parts:
        if p not in out:
            out.append(p)
    if not out:
        return None
    if len(out) == 1:
        return out[0]
    return "(?:" + "|".join(out) + ")"


def _digit_class(a: str, b: str) -> str:
    if a == b:
        return a
    if a == "0" and b == "9":
        return "[0-9]"
    if ord(b) == ord(a) + 1:
        return "[" + a + b + "]"
    return "[" + a + "-" + b + "]"


def _any_digits(n: int) -> str:
    if n == 0:
        return ""
    return "[0-9]" if n == 1 else "[0-9]{%d}" % n


def _same_len(a: str, b: str) -> str:
    """Digit strings of len(a) == len(b) between a and b inclusive (leading zeros allowed)."""
    n = len(a)
    if n == 0:
        return ""
    if a == b:
        return a
    if a == "0" * n and b == "9" * n:
        return _any_digits(n)
    if n == 1:
        return _digit_class(a, b)
    if a[0] == b[0]:
        rest = _same_len(a[1:], b[1:])
        return a[0] + (rest if not _has_top_alt(rest) else "(?:" + rest + ")")
    parts = []
    lo_first = a[0]
    if a[1:] != "0" * (n - 1):
        parts.append(a[0] + _grp(_same_len(a[1:], "9" * (n - 1))))
        lo_first = chr(ord(a[0]) + 1)
    hi_first = b[0]
    tail = None
    if b[1:] != "9" * (n - 1):
        tail = b[0] + _grp(_same_len("0" * (n - 1), b[1:]))
        hi_first = chr(ord(b[0]) - 1)
    if lo_first <= hi_first:
        parts.append(_digit_class(lo_first, hi_first) + _any_digits(n - 1))
    if tail:
        parts.append(tail)
    return "|".join(parts)


def _has_top_alt(s: str) -> bool:
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
    return False


def _grp(s: str) -> str:
    return "(?:" + s + ")" if _has_top_alt(s) else s


def nonneg_int_range(lo: int, hi: int | None) -> str | None:
    """Decimal representations (no leading zeros, no sign) of integers in [lo, hi]."""
    lo = max(lo, 0)
    if hi is not None and hi < lo:
        return None
    parts: list[str] = []
    full_run: list[int] = []  # consecutive digit lengths fully covered

    def flush() -> None:
        if not full_run:
            return
        a, b = full_run[0], full_run[-1]
        if a == 1:
            parts.append("[1-9]" if b == 1 else "[1-9][0-9]{0,%d}" % (b - 1))
        else:
            parts.append("[1-9]" + ("[0-9]{%d}" % (a - 1) if a == b else "[0-9]{%d,%d}" % (a - 1, b - 1)))
        full_run.clear()

    if lo == 0:
        parts.append("0")
        lo = 1
        if hi is not None and hi < 1:
            return "0"
    lo_len = len(str(lo))
    hi_len = len(str(hi)) if hi is not None else None
    length = lo_len
    while hi_len is None or length <= hi_len:
        a = max(lo, 10 ** (length - 1))
        b = 10**length - 1 if hi is None else min(hi, 10**length - 1)
        if hi is None and a == 10 ** (length - 1):
            flush()
            parts.append("[1-9]" + ("[0-9]{%d,}" % (length - 1) if length > 1 else "[0-9]*"))
            break
        if a == 10 ** (length - 1) and b == 10**length - 1:
            full_run.append(length)
        else:
            flush()
            parts.append(_grp(_same_len(str(a), str(b))))
        length += 1
    flush()
    return _alt(parts)


def int_range(lo: int | None, hi: int | None) -> str | None:
    """Regex for integers in [lo, hi] (None = unbounded); None when empty.  Never emits ``-0``."""
    if lo is not None and hi is not None and lo > hi:
        return None
    parts = []
    if hi is None or hi >= 0:
        parts.append(nonneg_int_range(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo < 0:
        mag_lo = 1 if hi is None or hi >= 0 else -hi
        mag_hi = None if lo is None else -lo
        r = nonneg_int_range(mag_lo, mag_hi)
        if r is not None:
            parts.append("-" + (r if not _has_top_alt(r) else "(?:" + r + ")"))
    return _alt(parts)


# ---------------------------------------------------------------------------
# decimals


def bound_value(x: int | float) -> Fraction:
    """The decimal a bound must be compared with on the *text* of an instance.

    Integers are exact.  For a float ``b`` we need, for every instance text d
    with at most 15 significant digits (or any integer text), that
    ``d < V  <=>  value(d) < b`` and likewise for ``=``.  If ``repr(b)`` has at
    most 15 significant digits it is the unique such decimal that rounds to
    ``b`` (15-digit decimals round-trip through doubles), so V = repr(b).
    Otherwise no short decimal equals ``b`` and V is b's exact binary value;
    integer texts (parsed as exact ints) compare with that exactly too.  For
    |b| >= 1e15 only integers are generated near b, so V is the exact value.
    """
    if isinstance(x, bool):
        raise TypeError("bool bound")
    if isinstance(x, int):
        return Fraction(x)
    if abs(x) >= 1e15:
        return Fraction(x)
    d = Decimal(repr(x))
    digits = d.normalize().as_tuple().digits
    if len(digits) <= MAX_SIG_DIGITS:
        return Fraction(d)
    return Fraction(x)


def _frac_digits(f: Fraction) -> str | None:
    """Digits after the point of f in [0, 1) without trailing zeros; None if not a terminating decimal."""
    if f == 0:
        return ""
    den = f.denominator
    d = den
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return None
    k = max(twos, fives)
    n = f.numerator * 10**k // f.denominator
    return str(n).rjust(k, "0").rstrip("0")


def _frac_range(lo: str | None, lo_excl: bool, hi: str | None, hi_excl: bool, budget: int):
    """Fraction digit strings F (len 0..budget; empty = no fraction part) with
    0.F in [0.lo, 0.hi] (exclusive flags apply; None = no bound on that side).
    Returns (nullable, regex for non-empty F or None)."""
    memo: dict = {}

    def free(n: int) -> str:
        return "" if n <= 0 else ("[0-9]{0,%d}" % n if n > 1 else "[0-9]?")

    def st(i: int, tl: bool, th: bool):
        """(nullable, nonempty_regex) for the digits from position i."""
        key = (i, tl, th)
        if key in memo:
            return memo[key]
        if tl and i >= len(lo) and not lo_excl:
            tl = False  # equal so far to an inclusive lower bound: anything goes on
        if th and i >= len(hi):
            # equal so far to the upper bound: only zeros may follow
            if hi_excl or tl:
                res = (False, None)
            else:
                r = budget - i
                res = (True, None if r <= 0 else ("0" if r == 1 else "0{1,%d}" % r))
            memo[key] = res
            return res
        # may the string end here?
        end_ok = True
        if tl:
            if i >= len(lo):
                end_ok = not lo_excl
            else:
                end_ok = False
        if th and end_ok:
            if i >= len(hi):
                end_ok = not hi_excl
        branches = []
        if i < budget:
            ld = int(lo[i]) if tl and i < len(lo) else 0
            hd = (int(hi[i]) if i < len(hi) else 0) if th else 9
            for d in sorted({ld, hd}):
                if d < ld or d > hd:
                    continue
                ntl = tl and d == ld
                nth = th and d == hd
                if not ntl and not nth:
                    continue
                n_null, n_rx = st(i + 1, ntl, nth)
                if n_rx is None and not n_null:
                    continue
                tail = ""
                if n_rx is not None:
                    tail = ("(?:" + n_rx + ")" if "|" in n_rx else (n_rx if _atomic(n_rx) else "(?:" + n_rx + ")"))
                    tail = tail + ("?" if n_null else "")
                branches.append(str(d) + tail)
            mid_lo = ld + 1 if tl else ld
            mid_hi = hd - 1 if th else hd
            if not tl and not th:
                mid_lo, mid_hi = 0, 9
            if mid_lo <= mid_hi:
                branches.append(_digit_class(str(mid_lo), str(mid_hi)) + free(budget - i - 1))
        rx = None
        if branches:
            rx = branches[0] if len(branches) == 1 else "|".join(branches)
        memo[key] = (end_ok, rx)
        return memo[key]

    if lo is None:
        lo, lo_excl, tl0 = "", False, False
    else:
        tl0 = True
    if hi is None:
        hi, hi_excl, th0 = "", False, False
    else:
        th0 = True
    return st(0, tl0, th0)


def _atomic(s: str) -> bool:
    if len(s) == 1:
        return True
    if s.startswith("[") and s.endswith("]") and s.count("[") == 1:
        return True
    return False


def _fraction_part(nullable: bool, rx: str | None) -> str | None:
    """Combine into the text after the integer part; None if no fraction text is allowed at all and not nullable."""
    if rx is None:
        return "" if nullable else None
    body = "\\." + ("(?:" + rx + ")" if "|" in rx else rx)
    return "(?:" + body + ")?" if nullable else body


def _budget(int_part_len: int, is_zero: bool) -> int:
    return MAX_SIG_DIGITS if is_zero else max(0, MAX_SIG_DIGITS - int_part_len)


def _round_bound(v: Fraction, excl: bool, up: bool, k: int) -> tuple[Fraction, bool]:
    """Round v to k fractional digits (up or down); an exclusive bound that moved becomes inclusive."""
    scaled = v * 10**k
    if scaled.denominator == 1:
        return v, excl
    r = Fraction(math.ceil(scaled) if up else math.floor(scaled), 10**k)
    return r, False


def magnitude_range(lo: Fraction, lo_excl: bool, hi: Fraction | None, hi_excl: bool) -> str | None:
    """Unsigned decimals ``I(.F)?`` (no exponent, at most MAX_SIG_DIGITS significant
    digits when a fraction is present) whose value lies in the range; lo >= 0."""
    assert lo >= 0
    parts: list[str] = []
    a = math.floor(lo)
    # round the lower bound to the digit budget of its integer part
    for _ in range(3):
        k = _budget(len(str(a)), a == 0)
        lo, lo_excl = _round_bound(lo, lo_excl, True, k)
        if math.floor(lo) == a:
            break
        a = math.floor(lo)
    b = None if hi is None else math.floor(hi)
    if hi is not None:
        kb = _budget(len(str(b)), b == 0)
        hi, hi_excl = _round_bound(hi, hi_excl, False, kb)
        b = math.floor(hi)
        if hi < lo or (hi == lo and (lo_excl or hi_excl)):
            return None

    def frac_str(v: Fraction, ip: int) -> str:
        s = _frac_digits(v - ip)
        assert s is not None
        return s

    # I == a
    if b is None or a <= b:
        k = _budget(len(str(a)), a == 0)
        if b is not None and a == b:
            nul, rx = _frac_range(frac_str(lo, a), lo_excl, frac_str(hi, b), hi_excl, k)
        else:
            nul, rx = _frac_range(frac_str(lo, a), lo_excl, None, False, k)
        fp = _fraction_part(nul, rx)
        if fp is not None:
            parts.append(str(a) + fp)
    # a < I < b
    first = a + 1
    last = None if b is None else b - 1
    if last is None or first <= last:
        length = len(str(first))
        while True:
            lo_l = max(first, 10 ** (length - 1))
            if last is not None and lo_l > last:
                break
            k = _budget(length, False)
            hi_l = 10**length - 1 if last is None else min(last, 10**length - 1)
            if k == 0 and last is None:
                ir = nonneg_int_range(lo_l, None)
                if ir:
                    parts.append(_grp(ir))
                break
            ir = nonneg_int_range(lo_l, hi_l)
            if ir:
                fp = "" if k == 0 else "(?:\\.[0-9]{1,%d})?" % k
                parts.append(("(?:" + ir + ")" if _has_top_alt(ir) else ir) + fp)
            length += 1
    # I == b
    if b is not None and b > a:
        k = _budget(len(str(b)), b == 0)
        nul, rx = _frac_range(None, False, frac_str(hi, b), hi_excl, k)
        fp = _fraction_part(nul, rx)
        if fp is not None:
            parts.append(str(b) + fp)
    return _alt(parts)


def decimal_range(lo: Fraction | None, lo_excl: bool, hi: Fraction | None, hi_excl: bool) -> str | None:
    """Signed decimals (no exponent, no ``-0``) in the range; None when empty."""
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_excl or hi_excl))):
        return None
    parts = []
    # non-negative side
    if hi is None or hi > 0 or (hi == 0 and not hi_excl):
        if lo is None or lo < 0:
            plo, plo_excl = Fraction(0), False
        else:
            plo, plo_excl = lo, lo_excl
        parts.append(magnitude_range(plo, plo_excl, hi, hi_excl))
    # negative side: x = -m, m > 0
    if lo is None or lo < 0:
        if hi is None or hi >= 0:
            mlo, mlo_excl = Fraction(0), True
        else:
            mlo, mlo_excl = -hi, hi_excl
        mhi, mhi_excl = (None, False) if lo is None else (-lo, lo_excl)
        r = magnitude_range(mlo, mlo_excl, mhi, mhi_excl)
        if r is not None:
            parts.append("-" + ("(?:" + r + ")" if _has_top_alt(r) else r))
    return _alt([p for p in parts if p is not None])
