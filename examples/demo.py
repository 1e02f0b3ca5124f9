"""`make demo`: generate a JSON object that follows a JSON Schema, then validate it.

Loads the default model (SmolLM2-135M-Instruct; the first run converts it from GGUF, later
runs reuse a cached copy), asks it to describe a fictional person under the constraint of
schemas/person.json, prints the JSON and checks it with the jsonschema package.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jsonschema

import constrain

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "person.json"

# Used only when schemas/person.json is missing.
FALLBACK_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "maxLength": 60},
    },
    "required": ["name", "age", "email"],
    "additionalProperties": False,
}


def main() -> int:
    if SCHEMA_PATH.is_file():
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        where = str(SCHEMA_PATH.relative_to(SCHEMA_PATH.parent.parent))
    else:
        schema, where = FALLBACK_SCHEMA, "built-in example schema"
    print(f"schema: {where}")

    t0 = time.perf_counter()
    model = constrain.load_model("default")
    print(f"model: {model.name} on {model.device} (loaded in {time.perf_counter() - t0:.1f}s)")

    prompt = "Describe a fictional person as JSON."
    print(f"prompt: {prompt}\n")
    result = constrain.generate(model, prompt, schema=schema, max_tokens=384)
    print(result.text)
    t = result.timings
    print(
        f"\n{len(result.token_ids)} tokens in {t['prefill_s'] + t['decode_s']:.1f}s "
        f"({t['tokens_per_s']:.1f} tokens/s), stop: {result.stop_reason}"
    )
    if not result.finished:
        print("FAILED: the output hit the token limit before the JSON was complete", file=sys.stderr)
        return 1
    try:
        jsonschema.validate(result.json(), schema)
    except (ValueError, jsonschema.ValidationError) as exc:
        print(f"FAILED: the output does not validate: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print("valid: the output validates against the schema (jsonschema)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except constrain.ConstrainError as exc:
        print(f"demo: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
