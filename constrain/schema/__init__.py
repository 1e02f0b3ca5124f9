"""JSON Schema support: the non-recursive fast path compiles a schema to a regex.

>>> from constrain.schema import schema_to_regex
>>> schema_to_regex({"type": "boolean"})
'(?:true|false)'
"""

from .to_regex import EmptyLanguageError, schema_to_regex

__all__ = ["schema_to_regex", "EmptyLanguageError"]
