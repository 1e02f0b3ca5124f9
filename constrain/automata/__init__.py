"""Byte-level automata: the common target every constraint front end compiles to."""

from .dfa import ByteDFA

__all__ = ["ByteDFA"]
