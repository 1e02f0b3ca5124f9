"""Regular expressions -> byte-level DFAs."""

from .parser import parse_regex
from .to_dfa import regex_to_dfa

__all__ = ["parse_regex", "regex_to_dfa"]
