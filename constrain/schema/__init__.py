"""JSON Schema support: ``compile_json_schema`` (schema -> token constraint).

>>> from constrain.schema import schema_to_regex
>>> schema_to_regex({"type": "boolean"})
'(?:true|false)'

``schema_to_regex`` is the regex back end alone (non-recursive schemas, a
depth-bounded subset for unconstrained values); ``compile_json_schema`` picks
the DFA or the grammar back end so that the result is exact.
"""

from .compile import Approximation, JSONSchemaConstraint, compile_json_schema, load_schema
from .to_regex import EmptyLanguageError, schema_to_regex

__all__ = ["compile_json_schema", "JSONSchemaConstraint", "Approximation", "load_schema", "schema_to_regex",
           "EmptyLanguageError"]
