"""Token-level automata: vocabulary tries, masks and matchers."""

from .base import Constraint, Matcher
from .bitmask import allocate_mask, ids_from_mask, mask_from_ids, mask_words
from .dfa_constraint import DFAConstraint, DFAMatcher
from .trie import TokenTrie, trie_for

__all__ = [
    "Constraint", "Matcher", "DFAConstraint", "DFAMatcher", "TokenTrie", "trie_for",
    "allocate_mask", "ids_from_mask", "mask_from_ids", "mask_words",
]
