"""The JSONSchemaBench prompt: system line, two worked examples of the subset's family, the schema.

The benchmark's harness (guidance-ai/jsonschemabench, ``core/messages.py``) builds every prompt
as a chat: the system message ``"You need to generate a JSON object that matches the schema
below."``, then two (user: example schema, assistant: example answer) turns whose schemas come
from the same family of subsets as the target, then the target schema as ``json.dumps(schema)``
in a user turn. This module builds exactly that chat.

The example pairs themselves are not part of the data set (../shared/data/jsonschemabench holds
only the schemas), and the harness's own pairs are not copied here: the pairs below were written
for this project in the same form (a pretty-printed schema in the style of the family, a JSON
answer that validates against it, checked by tests/test_jsonschemabench.py). So the structure
and the system line are the benchmark's, the wording of the two examples is ours.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["SYSTEM_PROMPT", "FAMILIES", "EXAMPLES", "family_of", "build_messages", "prompt_version"]

SYSTEM_PROMPT = "You need to generate a JSON object that matches the schema below."

#: subset -> family whose examples its prompts use
FAMILIES: dict[str, str] = {
    "Github_trivial": "Github",
    "Github_easy": "Github",
    "Github_medium": "Github",
    "Github_hard": "Github",
    "Github_ultra": "Github",
    "Glaiveai2K": "Glaiveai2K",
    "Kubernetes": "Kubernetes",
    "Snowplow": "Snowplow",
    "WashingtonPost": "WashingtonPost",
    "JsonSchemaStore": "JsonSchemaStore",
}

_SNOWPLOW_SELF = {"format": "jsonschema", "vendor": "com.example.web", "version": "1-0-0"}

# family -> [(schema, answer)]; schemas are shown pretty-printed (as the data files are), answers
# as json.dumps output.
_EXAMPLE_OBJECTS: dict[str, list[tuple[dict[str, Any], Any]]] = {
    "Github": [
        (
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "title": "Package",
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string", "pattern": "^\\d+\\.\\d+\\.\\d+$"},
                    "private": {"type": "boolean"},
                    "keywords": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["name", "version"],
            },
            {"name": "left-pad", "version": "1.3.0", "private": False, "keywords": ["string", "padding"]},
        ),
        (
            {
                "$schema": "http://json-schema.org/draft-04/schema#",
                "definitions": {
                    "point": {
                        "type": "object",
                        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                        "required": ["x", "y"],
                    }
                },
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "label": {"type": "string"},
                    "vertices": {"type": "array", "items": {"$ref": "#/definitions/point"}, "minItems": 3},
                },
                "required": ["id", "vertices"],
                "additionalProperties": False,
            },
            {"id": 7, "label": "triangle", "vertices": [{"x": 0, "y": 0}, {"x": 4.5, "y": 0}, {"x": 2, "y": 3}]},
        ),
    ],
    "Glaiveai2K": [
        (
            {
                "properties": {
                    "city": {"description": "The city to get the weather for", "type": "string"},
                    "unit": {"description": "The temperature unit", "enum": ["celsius", "fahrenheit"], "type": "string"},
                },
                "required": ["city"],
                "type": "object",
            },
            {"city": "Lisbon", "unit": "celsius"},
        ),
        (
            {
                "properties": {
                    "amount": {"description": "The loan amount", "type": "number"},
                    "interest_rate": {"description": "The annual interest rate in percent", "type": "number"},
                    "months": {"description": "The loan term in months", "type": "integer"},
                },
                "required": ["amount", "interest_rate", "months"],
                "type": "object",
            },
            {"amount": 25000, "interest_rate": 4.5, "months": 60},
        ),
    ],
    "Kubernetes": [
        (
            {
                "description": "ResourceQuotaSpec defines the desired hard limits to enforce for Quota.",
                "properties": {
                    "hard": {
                        "additionalProperties": {"type": ["string", "null"]},
                        "description": "hard is the set of desired hard limits for each named resource.",
                        "type": ["object", "null"],
                    },
                    "scopes": {
                        "description": "A collection of filters that must match each object tracked by a quota.",
                        "items": {"type": ["string", "null"]},
                        "type": ["array", "null"],
                    },
                },
                "type": "object",
            },
            {"hard": {"pods": "10", "requests.cpu": "4"}, "scopes": ["NotTerminating"]},
        ),
        (
            {
                "description": "ContainerPort represents a network port in a single container.",
                "properties": {
                    "containerPort": {
                        "description": "Number of port to expose on the pod's IP address.",
                        "format": "int32",
                        "type": "integer",
                    },
                    "name": {"description": "Name of the port.", "type": ["string", "null"]},
                    "protocol": {"description": "Protocol for port. Must be UDP, TCP, or SCTP.", "type": ["string", "null"]},
                },
                "required": ["containerPort"],
                "type": "object",
            },
            {"containerPort": 8080, "name": "http", "protocol": "TCP"},
        ),
    ],
    "Snowplow": [
        (
            {
                "additionalProperties": False,
                "description": "Schema for a link click event",
                "properties": {
                    "targetUrl": {"type": "string", "minLength": 1},
                    "elementId": {"type": "string"},
                    "elementClasses": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["targetUrl"],
                "self": dict(_SNOWPLOW_SELF, name="link_click"),
                "type": "object",
            },
            {"targetUrl": "https://example.com/docs", "elementId": "docs-link", "elementClasses": ["nav", "primary"]},
        ),
        (
            {
                "additionalProperties": False,
                "description": "Schema for a screen view event",
                "properties": {
                    "name": {"type": "string", "maxLength": 255},
                    "id": {"type": "string", "format": "uuid"},
                    "durationMs": {"type": ["integer", "null"], "minimum": 0},
                },
                "required": ["name", "id"],
                "self": dict(_SNOWPLOW_SELF, name="screen_view"),
                "type": "object",
            },
            {"name": "Checkout", "id": "2f1c6b9e-7d0a-4c3e-9b8f-5a6d4e3c2b1a", "durationMs": 1520},
        ),
    ],
    "WashingtonPost": [
        (
            {
                "additionalProperties": False,
                "description": "A short credit line for an image or video.",
                "properties": {
                    "name": {"description": "The name of the person credited.", "type": "string"},
                    "role": {"description": "What the person did.", "type": "string"},
                    "url": {"description": "A link to the person's profile.", "type": "string"},
                },
                "required": ["name"],
                "title": "Credit",
                "type": "object",
            },
            {"name": "Jane Doe", "role": "Photographer", "url": "https://example.com/staff/jane-doe"},
        ),
        (
            {
                "description": "Information about the geographic location of the content.",
                "properties": {
                    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                    "city": {"type": "string"},
                    "country_code": {"type": "string", "pattern": "^[A-Z]{2}$"},
                },
                "title": "Geo",
                "type": "object",
            },
            {"latitude": 38.9, "longitude": -77.04, "city": "Washington", "country_code": "US"},
        ),
    ],
    "JsonSchemaStore": [
        (
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "$id": "https://json.schemastore.org/example-lint-config.json",
                "description": "Configuration file for a linter",
                "properties": {
                    "extends": {"type": "string"},
                    "rules": {"type": "object", "additionalProperties": {"enum": ["off", "warn", "error"]}},
                    "ignorePatterns": {"type": "array", "items": {"type": "string"}},
                },
                "title": "Lint configuration",
                "type": "object",
            },
            {"extends": "recommended", "rules": {"no-unused-vars": "warn", "eqeqeq": "error"}, "ignorePatterns": ["dist/", "*.min.js"]},
        ),
        (
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "description": "Settings for a static site generator",
                "properties": {
                    "title": {"type": "string"},
                    "baseUrl": {"type": "string", "format": "uri"},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "drafts": {"type": "boolean", "default": False},
                },
                "required": ["title", "baseUrl"],
                "type": "object",
            },
            {"title": "My notes", "baseUrl": "https://notes.example.org", "port": 4000, "drafts": False},
        ),
    ],
}

#: family -> [(schema text, answer text)] as they appear in the prompt
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    family: [(json.dumps(schema, indent=4), json.dumps(answer)) for schema, answer in pairs]
    for family, pairs in _EXAMPLE_OBJECTS.items()
}


def family_of(subset: str) -> str | None:
    """The example family of a subset (None for a subset outside the benchmark's ten)."""
    return FAMILIES.get(subset)


def build_messages(subset: str, schema: Any) -> list[dict[str, str]]:
    """The chat for one schema: system line, the family's two examples, ``json.dumps(schema)``.

    A subset outside the ten known ones gets no examples (the harness's ``default`` entry).
    """
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for schema_text, answer in EXAMPLES.get(family_of(subset) or "", []):
        messages.append({"role": "user", "content": schema_text})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": json.dumps(schema)})
    return messages


def prompt_version() -> str:
    """A short hash of the system line and examples: runs with different prompts must not be mixed."""
    blob = json.dumps([SYSTEM_PROMPT, EXAMPLES], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
