"""One adapter per constrained-decoding engine, behind a common interface.

The benchmarks (``bench/regex_masks.py``, ``constrain maskbench``,
``constrain bench jsonschemabench``) compare constrain with llguidance,
xgrammar and outlines-core on the same tokenizer, in the same process, with
the same mask layout. Each engine differs in how it is fed a tokenizer, what
it compiles and how its masks are written, so this module hides that:

1. **prepare** (tokenizer level, once): ``PeerTokenizer.load(path_or_name)``
   then ``make_adapter(engine, tok)`` builds the engine's tokenizer object
   (constrain's token trie, llguidance's ``LLTokenizer``, xgrammar's
   ``TokenizerInfo`` + ``GrammarCompiler``, outlines-core's ``Vocabulary``).
2. **compile**: ``adapter.compile(schema=... | regex=... | grammar=..., options=CompileOptions(...))``
   -> :class:`Compiled`. Options are translated so that every engine
   enforces the same serialisation: compact JSON by default (llguidance
   ``whitespace_flexible=False``, xgrammar ``any_whitespace=False`` with
   ``(",", ":")`` separators, outlines-core ``whitespace_pattern=""``).
3. **match**: ``adapter.matcher(compiled)`` -> :class:`PeerMatcher` with
   ``fill(out)`` (packed uint32 words, bit ``i % 32`` of word ``i // 32``,
   ``(vocab.size + 31) // 32`` words: constrain's layout), ``accept(token)``,
   ``is_accepting()``.

:class:`PeerConstraint` wraps any adapter's compiled object in constrain's
:class:`~constrain.tokens.base.Constraint` / ``Matcher`` API, so
``constrain.generate(model, prompt, constraint=PeerConstraint(...))`` drives a
peer with exactly the loop constrain itself uses.

The peers are optional (``pip install 'constrain[bench]'``); importing this
module does not import them, and building an adapter for a missing one raises
:class:`PeerNotInstalledError` naming the extra.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import ConstrainError, ConstraintError, VocabularyError
from ..tokens.base import Constraint, Matcher
from ..tokens.bitmask import allocate_mask, as_uint32_words, is_allowed

__all__ = [
    "ENGINES",
    "CompileOptions",
    "Compiled",
    "PeerTokenizer",
    "PeerAdapter",
    "PeerMatcher",
    "PeerConstraint",
    "PeerNotInstalledError",
    "PeerCompileError",
    "make_adapter",
    "installed_engines",
    "default_tokenizer_dir",
    "force_tokens",
]

#: Engine names, in the order tables list them.
ENGINES: tuple[str, ...] = ("constrain", "llguidance", "xgrammar", "outlines")

_DISTRIBUTIONS = {"llguidance": "llguidance", "xgrammar": "xgrammar", "outlines": "outlines-core"}
_MODULES = {"llguidance": "llguidance", "xgrammar": "xgrammar", "outlines": "outlines_core"}


class PeerNotInstalledError(ConstrainError, ImportError):
    """A peer engine's package is not installed (it comes with the ``[bench]`` extra)."""


class PeerCompileError(ConstraintError):
    """A peer engine refused to compile the constraint (its own message is kept)."""


def _import_peer(engine: str) -> Any:
    import importlib

    module = _MODULES[engine]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PeerNotInstalledError(
            f"the {engine} adapter needs the {_DISTRIBUTIONS[engine]!r} package, which is not installed: "
            f"pip install 'constrain[bench]' (or pip install {_DISTRIBUTIONS[engine]}) ({exc})"
        ) from exc


def installed_engines() -> list[str]:
    """The engines whose packages can be imported here (constrain always)."""
    import importlib.util

    return [e for e in ENGINES if e == "constrain" or importlib.util.find_spec(_MODULES[e]) is not None]


def _pkg_version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - metadata is best effort
        return ""


def default_tokenizer_dir() -> Path:
    """``$CONSTRAIN_TOKENIZERS`` or ``../shared/data/tokenizers`` beside the checkout."""
    env = os.environ.get("CONSTRAIN_TOKENIZERS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tokenizers"


# --------------------------------------------------------------------------------------------
# Options and compiled objects


@dataclass(frozen=True)
class CompileOptions:
    """What every engine is asked to enforce, translated per engine.

    ``whitespace``: ``"compact"`` (no whitespace outside strings, constrain's
    default) or ``"flexible"`` (JSON whitespace between tokens, at most
    ``max_whitespace`` characters per gap where the engine can bound it).
    ``additional_properties``: whether an object schema without
    ``additionalProperties`` admits undeclared keys (JSON Schema and
    JSONSchemaBench say yes; xgrammar's ``strict_mode`` and constrain's
    generation default say no). ``strict``: constrain raises on keywords it
    cannot enforce exactly (False: approximate and report them); for
    llguidance False means ``lenient`` (ignore unimplemented keywords).
    """

    whitespace: str = "compact"
    max_whitespace: int = 16
    additional_properties: bool = True
    strict: bool = True

    def __post_init__(self) -> None:
        if self.whitespace not in ("compact", "flexible"):
            raise ConstraintError(f"whitespace must be 'compact' or 'flexible', not {self.whitespace!r}")
        if not isinstance(self.max_whitespace, int) or self.max_whitespace < 1:
            raise ConstraintError(f"max_whitespace must be a positive int, not {self.max_whitespace!r}")


@dataclass
class Compiled:
    """An engine's compiled object plus what it was compiled from.

    ``approximations`` lists ``(json_pointer, message)`` pairs for keywords the
    engine declared it did not enforce exactly (only constrain reports them).
    """

    engine: str
    kind: str  # "schema", "regex" or "grammar"
    native: Any
    approximations: list[tuple[str, str]] = field(default_factory=list)


def _schema_text(schema: Any) -> str:
    if isinstance(schema, (str, bytes)):
        text = schema.decode("utf-8") if isinstance(schema, bytes) else schema
        try:
            json.loads(text)
        except json.JSONDecodeError:
            path = Path(text).expanduser()
            if path.is_file():
                return path.read_text(encoding="utf-8")
            raise ConstraintError(f"schema is neither JSON text nor an existing file: {text[:80]!r}") from None
        return text
    if isinstance(schema, os.PathLike):
        return Path(schema).read_text(encoding="utf-8")
    if isinstance(schema, type) and callable(getattr(schema, "model_json_schema", None)):
        schema = schema.model_json_schema()
    return json.dumps(schema)


def _one_source(schema: Any, regex: str | None, grammar: str | None) -> tuple[str, Any]:
    given = [(k, v) for k, v in (("schema", schema), ("regex", regex), ("grammar", grammar)) if v is not None]
    if len(given) != 1:
        raise ConstraintError("give exactly one of schema=, regex= or grammar=")
    return given[0]


# --------------------------------------------------------------------------------------------
# Tokenizer


class PeerTokenizer:
    """A tokenizer as every engine needs it: constrain's Vocabulary, the file, the HF tokenizer.

    Built from a ``tokenizer.json`` path, a folder holding one, a folder name
    under :func:`default_tokenizer_dir` (``"qwen3"``), a Hugging Face hub name,
    or a Hugging Face tokenizer object. The HF tokenizer (needed by xgrammar
    and for canonical tokenisation) is loaded lazily.
    """

    def __init__(self, vocab: Any, *, path: Path | None = None, hf: Any = None, name: str | None = None) -> None:
        self.vocab = vocab
        self.path = path  # tokenizer.json, when known
        self._hf = hf
        self.name = name or (path.parent.name if path is not None else getattr(vocab, "name", "") or "tokenizer")
        if not vocab.eos_ids:
            raise VocabularyError(f"tokenizer {self.name!r} has no EOS token")
        hf_eos = getattr(hf, "eos_token_id", None)
        self.eos_id = int(hf_eos) if hf_eos in vocab.eos_ids else int(min(vocab.eos_ids))
        self.size = int(vocab.size)
        self.words = (self.size + 31) // 32

    @classmethod
    def load(cls, source: Any) -> "PeerTokenizer":
        from ..vocabulary import Vocabulary

        if not isinstance(source, (str, os.PathLike)):
            if not callable(getattr(source, "encode", None)):
                raise VocabularyError(f"expected a tokenizer path, name or Hugging Face tokenizer, not {type(source).__name__}")
            return cls(Vocabulary.from_tokenizer(source), hf=source)
        path = Path(source).expanduser()
        if not path.exists() and not os.path.isabs(str(source)):
            local = default_tokenizer_dir() / str(source)
            if local.exists():
                path = local
        if path.exists():
            file = path / "tokenizer.json" if path.is_dir() else path
            if not file.is_file():
                raise VocabularyError(f"no tokenizer.json in {path}")
            return cls(Vocabulary.from_file(file), path=file, name=file.parent.name)
        vocab = Vocabulary.from_pretrained(str(source))  # a hub name; raises VocabularyError/ModelError
        return cls(vocab, hf=vocab.tokenizer, name=str(source))

    @property
    def hf(self) -> Any:
        """A transformers tokenizer for the same vocabulary (loaded on first use)."""
        if self._hf is None:
            import transformers

            if self.path is None:
                raise VocabularyError("no tokenizer file to build a Hugging Face tokenizer from")
            folder = self.path.parent
            if (folder / "tokenizer_config.json").is_file() and self.path.name == "tokenizer.json":
                self._hf = transformers.AutoTokenizer.from_pretrained(str(folder))
            else:
                self._hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(self.path))
        return self._hf

    def tokenizer_json(self) -> str:
        if self.path is not None:
            return self.path.read_text(encoding="utf-8")
        backend = getattr(self._hf, "backend_tokenizer", None)
        if backend is None:
            raise VocabularyError("llguidance needs a fast (tokenizer.json) tokenizer")
        return backend.to_str()

    def tokenize(self, text: str) -> list[int]:
        """The canonical (HF) token ids for ``text``, checked to spell it byte for byte.

        Falls back to constrain's own encoder when the HF ids do not decode to
        exactly ``text`` (normalisers, added tokens matched inside the text).
        """
        data = text.encode("utf-8")
        try:
            ids = list(self.hf.encode(text, add_special_tokens=False))
        except VocabularyError:
            ids = []
        if ids and self.vocab.decode(ids) == data:
            return ids
        return list(self.vocab.encode(text))


# --------------------------------------------------------------------------------------------
# Matchers


class PeerMatcher(ABC):
    """A cursor over a compiled object: the minimum the benchmarks time and check."""

    def __init__(self, tok: PeerTokenizer) -> None:
        self.tok = tok

    @abstractmethod
    def fill(self, out: np.ndarray) -> None:
        """Write the allowed-token bitmask (constrain's layout) into ``out`` (uint32, C-contiguous)."""

    @abstractmethod
    def accept(self, token: int) -> bool:
        """Advance by one (non-EOS) token; False when the engine refuses it."""

    @abstractmethod
    def is_accepting(self) -> bool:
        """The text so far is a complete member of the language."""

    def rollback(self, n: int) -> None:
        raise ConstraintError(f"{type(self).__name__} cannot roll back")

    def copy(self) -> "PeerMatcher":
        raise ConstraintError(f"{type(self).__name__} cannot be copied")

    def forced_bytes(self) -> bytes:
        return b""

    def accept_string(self, data: bytes) -> bool | None:
        """Advance by raw bytes if the engine can (None: it has no byte-level API)."""
        return None


class _ConstrainMatcher(PeerMatcher):
    def __init__(self, tok: PeerTokenizer, m: Any) -> None:
        super().__init__(tok)
        self.m = m

    def fill(self, out: np.ndarray) -> None:
        self.m.fill_mask(out)

    def accept(self, token: int) -> bool:
        return bool(self.m.accept_token(token))

    def is_accepting(self) -> bool:
        return bool(self.m.is_accepting())

    def rollback(self, n: int) -> None:
        self.m.rollback(n)

    def copy(self) -> "PeerMatcher":
        return _ConstrainMatcher(self.tok, self.m.copy())

    def forced_bytes(self) -> bytes:
        return self.m.forced_bytes()

    def accept_string(self, data: bytes) -> bool | None:
        return bool(self.m.accept_bytes(data))


class _LLGuidanceMatcher(PeerMatcher):
    def __init__(self, tok: PeerTokenizer, m: Any) -> None:
        super().__init__(tok)
        self.m = m

    def fill(self, out: np.ndarray) -> None:
        # what llguidance.numpy.fill_next_token_bitmask does, minus its per-call checks
        self.m.unsafe_compute_mask_ptr(out.ctypes.data, out.nbytes)

    def accept(self, token: int) -> bool:
        # try_consume_tokens leaves the matcher usable when the token is refused
        # (consume_token would put it into its sticky error state)
        return self.m.try_consume_tokens([token]) == 1

    def is_accepting(self) -> bool:
        return bool(self.m.is_accepting())

    def rollback(self, n: int) -> None:
        if n and not self.m.rollback(n):
            raise ConstraintError(f"llguidance could not roll back {n} tokens: {self.m.get_error()}")

    def copy(self) -> "PeerMatcher":
        return _LLGuidanceMatcher(self.tok, self.m.deep_copy())

    def forced_bytes(self) -> bytes:
        return bytes(self.m.compute_ff_bytes())


class _XGrammarMatcher(PeerMatcher):
    def __init__(self, tok: PeerTokenizer, m: Any) -> None:
        super().__init__(tok)
        self.m = m
        self._views: tuple[int, Any, np.ndarray] | None = None

    def _tensor(self, out: np.ndarray) -> Any:
        """A [1, words] int32 torch view of ``out`` (cached per buffer: building one costs ~1 us)."""
        ptr = out.ctypes.data
        if self._views is None or self._views[0] != ptr:
            import torch

            self._views = (ptr, torch.from_numpy(out.view(np.int32)).view(1, -1), out)  # keep out alive
        return self._views[1]

    def fill(self, out: np.ndarray) -> None:
        self.m.fill_next_token_bitmask(self._tensor(out))

    def accept(self, token: int) -> bool:
        return bool(self.m.accept_token(token))

    def is_accepting(self) -> bool:
        return bool(self.m.is_completed())

    def rollback(self, n: int) -> None:
        if n:
            self.m.rollback(n)

    def copy(self) -> "PeerMatcher":
        return _XGrammarMatcher(self.tok, self.m.fork())

    def forced_bytes(self) -> bytes:
        return self.m.find_jump_forward_string().encode("utf-8")

    def accept_string(self, data: bytes) -> bool | None:
        try:
            return bool(self.m.accept_string(data))
        except Exception:  # noqa: BLE001 - xgrammar raises on bytes that are not UTF-8 complete
            return False


class _OutlinesMatcher(PeerMatcher):
    def __init__(self, tok: PeerTokenizer, index: Any, guide: Any, history: list[int] | None = None) -> None:
        super().__init__(tok)
        self.index = index
        self.m = guide
        self.history = list(history or [])  # tokens accepted, to fork by replaying
        self._ptr = 0

    def fill(self, out: np.ndarray) -> None:
        self.m.write_mask_into(out.ctypes.data, out.shape[-1], 4)

    def accept(self, token: int) -> bool:
        try:
            self.m.advance(token, return_tokens=False)
        except Exception:  # noqa: BLE001 - outlines-core raises ValueError on a refused token
            return False
        self.history.append(token)
        return True

    def is_accepting(self) -> bool:
        return bool(self.m.is_finished())

    def rollback(self, n: int) -> None:
        if n:
            self.m.rollback_state(n)
            del self.history[-n:]

    def copy(self) -> "PeerMatcher":
        import outlines_core

        g = outlines_core.Guide(self.index)
        for t in self.history:
            g.advance(t, return_tokens=False)
        return _OutlinesMatcher(self.tok, self.index, g, self.history)


# --------------------------------------------------------------------------------------------
# Adapters


class PeerAdapter(ABC):
    """Tokenizer-level preparation (in ``__init__``) + compile + matchers for one engine."""

    name = "?"
    #: the constraint kinds :meth:`compile` accepts
    kinds: tuple[str, ...] = ("schema", "regex")

    def __init__(self, tok: PeerTokenizer) -> None:
        self.tok = tok

    def compile(self, *, schema: Any = None, regex: str | None = None, grammar: str | None = None,
                options: CompileOptions | None = None) -> Compiled:
        """Compile exactly one of a JSON Schema (dict / JSON text / path), a regex or a lark grammar."""
        kind, source = _one_source(schema, regex, grammar)
        if kind not in self.kinds:
            raise PeerCompileError(f"{self.name} does not take {kind} constraints here")
        return self._compile(kind, source, options or CompileOptions())

    @abstractmethod
    def _compile(self, kind: str, source: Any, options: CompileOptions) -> Compiled: ...

    @abstractmethod
    def matcher(self, compiled: Compiled) -> PeerMatcher: ...

    def version(self) -> str:
        return _pkg_version(_DISTRIBUTIONS.get(self.name, "constrain"))


class ConstrainAdapter(PeerAdapter):
    name = "constrain"
    kinds = ("schema", "regex", "grammar")

    def __init__(self, tok: PeerTokenizer) -> None:
        super().__init__(tok)
        from ..tokens.trie import trie_for

        trie_for(tok.vocab)  # the tokenizer-level index, built once

    def _compile(self, kind: str, source: Any, options: CompileOptions) -> Compiled:
        vocab = self.tok.vocab
        if kind == "regex":
            from ..compile import compile_regex

            return Compiled(self.name, kind, compile_regex(source, vocab))
        if kind == "grammar":
            from ..grammar import compile_grammar

            return Compiled(self.name, kind, compile_grammar(source, vocab))
        try:
            from ..schema import compile_json_schema
        except ImportError:  # an older tree: the regex fast path only
            from ..generation import get_constraint

            if options.whitespace != "compact" or not options.strict:
                raise PeerCompileError("this constrain build compiles schemas only compact and strict") from None
            return Compiled(self.name, kind, get_constraint(vocab, schema=source))
        c = compile_json_schema(source, vocab, whitespace=options.whitespace, max_whitespace=options.max_whitespace,
                                strict=options.strict, additional_properties=options.additional_properties)
        approx = [(getattr(a, "pointer", a[0] if isinstance(a, tuple) else ""),
                   getattr(a, "message", a[1] if isinstance(a, tuple) else str(a)))
                  for a in getattr(c, "approximations", ()) or ()]
        return Compiled(self.name, kind, c, approx)

    def clear_caches(self) -> None:
        """Forget per-pattern / per-schema byte-level caches so the next compile is cold."""
        import sys

        for mod, attr in (("constrain.compile", "_cached_regex_dfa"),):
            fn = getattr(getattr(sys.modules.get(mod), attr, None), "cache_clear", None)
            if fn is not None:
                fn()
        sc = sys.modules.get("constrain.schema.compile")
        cache = getattr(sc, "_byte_cache", None)
        if cache is not None:
            lock = getattr(sc, "_byte_lock", None)
            if lock is not None:
                with lock:
                    cache.clear()
            else:
                cache.clear()

    def matcher(self, compiled: Compiled) -> PeerMatcher:
        return _ConstrainMatcher(self.tok, compiled.native.matcher())

    def version(self) -> str:
        from .. import __version__

        return __version__ if isinstance(__version__, str) else ""


class LLGuidanceAdapter(PeerAdapter):
    name = "llguidance"
    kinds = ("schema", "regex", "grammar")

    def __init__(self, tok: PeerTokenizer) -> None:
        super().__init__(tok)
        self.llg = _import_peer("llguidance")
        self.lltok = self.llg.LLTokenizer(tok.tokenizer_json(), n_vocab=tok.size, eos_token=sorted(tok.vocab.eos_ids))

    def _compile(self, kind: str, source: Any, options: CompileOptions) -> Compiled:
        M = self.llg.LLMatcher
        if kind == "regex":
            grammar = M.grammar_from_regex(source)
        elif kind == "grammar":
            grammar = M.grammar_from_lark(Path(source).read_text(encoding="utf-8")
                                          if isinstance(source, os.PathLike) else source)
        else:
            opts: dict[str, Any] = {"whitespace_flexible": options.whitespace == "flexible",
                                    "lenient": not options.strict}
            if options.whitespace == "flexible":
                opts["whitespace_pattern"] = rf"[\x20\x0A\x0D\x09]{{0,{options.max_whitespace}}}"
            schema = json.loads(_schema_text(source))
            if not options.additional_properties:
                schema = _close_objects(schema)
            grammar = M.grammar_from_json_schema(json.dumps(schema), overrides=opts)
        m = M(self.lltok, grammar)
        if m.is_error():
            raise PeerCompileError(f"llguidance: {m.get_error()}")
        return Compiled(self.name, kind, m)

    def matcher(self, compiled: Compiled) -> PeerMatcher:
        # the compiled form is a pristine matcher; each cursor is a copy of it
        return _LLGuidanceMatcher(self.tok, compiled.native.deep_copy())


class XGrammarAdapter(PeerAdapter):
    name = "xgrammar"
    kinds = ("schema", "regex", "grammar")  # grammar = xgrammar's EBNF (GBNF), not lark

    def __init__(self, tok: PeerTokenizer, *, cache: bool = False, max_threads: int = 1) -> None:
        super().__init__(tok)
        self.xgr = _import_peer("xgrammar")
        info = self.xgr.TokenizerInfo.from_huggingface(tok.hf, vocab_size=tok.size, stop_token_ids=sorted(tok.vocab.eos_ids))
        self.compiler = self.xgr.GrammarCompiler(info, max_threads=max_threads, cache_enabled=cache)

    def _compile(self, kind: str, source: Any, options: CompileOptions) -> Compiled:
        if kind == "regex":
            return Compiled(self.name, kind, self.compiler.compile_regex(source))
        if kind == "grammar":
            text = Path(source).read_text(encoding="utf-8") if isinstance(source, os.PathLike) else source
            return Compiled(self.name, kind, self.compiler.compile_grammar(text))
        flexible = options.whitespace == "flexible"
        kwargs: dict[str, Any] = {"any_whitespace": flexible, "strict_mode": not options.additional_properties}
        if flexible:
            kwargs["max_whitespace_cnt"] = options.max_whitespace
        else:
            kwargs["separators"] = (",", ":")
        return Compiled(self.name, kind, self.compiler.compile_json_schema(_schema_text(source), **kwargs))

    def matcher(self, compiled: Compiled) -> PeerMatcher:
        return _XGrammarMatcher(self.tok, self.xgr.GrammarMatcher(compiled.native))


class OutlinesAdapter(PeerAdapter):
    name = "outlines"
    kinds = ("schema", "regex")

    def __init__(self, tok: PeerTokenizer) -> None:
        super().__init__(tok)
        self.oc = _import_peer("outlines")
        table: dict[bytes, list[int]] = {}
        for i, b in enumerate(tok.vocab.token_bytes):
            if b is not None:
                table.setdefault(b, []).append(i)
        self.ovocab = self.oc.Vocabulary(tok.eos_id, table)

    def regex_for_schema(self, source: Any, options: CompileOptions) -> str:
        from outlines_core.json_schema import build_regex_from_schema

        ws = "" if options.whitespace == "compact" else rf"[ \t\n\r]{{0,{options.max_whitespace}}}"
        return build_regex_from_schema(_schema_text(source), ws)

    def _compile(self, kind: str, source: Any, options: CompileOptions) -> Compiled:
        pattern = source if kind == "regex" else self.regex_for_schema(source, options)
        return Compiled(self.name, kind, self.oc.Index(pattern, self.ovocab))

    def matcher(self, compiled: Compiled) -> PeerMatcher:
        return _OutlinesMatcher(self.tok, compiled.native, self.oc.Guide(compiled.native))


def _close_objects(schema: Any) -> Any:
    """A copy of ``schema`` where object schemas without ``additionalProperties`` get ``false``."""
    if isinstance(schema, list):
        return [_close_objects(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _close_objects(v) if k not in ("const", "enum", "default", "examples") else v for k, v in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema and "patternProperties" not in schema:
        out["additionalProperties"] = False
    return out


_ADAPTERS: dict[str, type[PeerAdapter]] = {
    "constrain": ConstrainAdapter,
    "llguidance": LLGuidanceAdapter,
    "xgrammar": XGrammarAdapter,
    "outlines": OutlinesAdapter,
}


def make_adapter(engine: str, tok: PeerTokenizer | Any, **kwargs: Any) -> PeerAdapter:
    """The adapter for ``engine`` (one of :data:`ENGINES`), prepared for ``tok``.

    ``tok`` is a :class:`PeerTokenizer` or anything :meth:`PeerTokenizer.load`
    takes. Raises :class:`PeerNotInstalledError` when the engine's package is
    missing.
    """
    cls = _ADAPTERS.get(engine)
    if cls is None:
        raise ConstraintError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if not isinstance(tok, PeerTokenizer):
        tok = PeerTokenizer.load(tok)
    return cls(tok, **kwargs)


# --------------------------------------------------------------------------------------------
# constrain's Constraint / Matcher API over any adapter


class PeerConstraint(Constraint):
    """Any engine's compiled object behind constrain's :class:`Constraint` API.

    ``constrain.generate(model, prompt, constraint=PeerConstraint(adapter, compiled))``
    then runs the peer with constrain's own decoding loop. Masks are
    intersected with the tokens constrain's vocabulary can emit (text tokens
    and EOS) so a peer never offers a control token the loop would refuse;
    EOS is handled here uniformly: legal exactly when the peer says the text is
    complete, and it finishes the matcher.
    """

    def __init__(self, adapter: PeerAdapter, compiled: Compiled) -> None:
        self.adapter = adapter
        self.compiled = compiled
        self.vocab = adapter.tok.vocab
        self.engine = adapter.name
        self.approximations = list(compiled.approximations)
        # vocabulary-level masks, built once per adapter (a scan of the vocabulary, milliseconds)
        cached = getattr(adapter, "_peer_constraint_masks", None)
        if cached is None:
            vocab = self.vocab
            keep = np.zeros(vocab.size, dtype=bool)
            keep[[i for i, b in enumerate(vocab.token_bytes) if b is not None]] = True
            eos = np.zeros(vocab.size, dtype=bool)
            eos[sorted(vocab.eos_ids)] = True
            cached = (_pack_words(keep), _pack_words(eos))
            adapter._peer_constraint_masks = cached
        self._keep_text, self._eos_words = cached

    @classmethod
    def build(cls, engine: str, tok: Any, *, schema: Any = None, regex: str | None = None, grammar: str | None = None,
              options: CompileOptions | None = None) -> "PeerConstraint":
        adapter = make_adapter(engine, tok)
        return cls(adapter, adapter.compile(schema=schema, regex=regex, grammar=grammar, options=options))

    def matcher(self) -> "PeerConstraintMatcher":
        return PeerConstraintMatcher(self, self.adapter.matcher(self.compiled))

    def __repr__(self) -> str:
        return f"<PeerConstraint engine={self.engine} kind={self.compiled.kind}>"


def _pack_words(bits: np.ndarray) -> np.ndarray:
    words = (len(bits) + 31) // 32
    padded = np.zeros(words * 32, dtype=bool)
    padded[: len(bits)] = bits
    return np.packbits(padded, bitorder="little").view(np.uint32).copy()


class PeerConstraintMatcher(Matcher):
    """constrain's :class:`Matcher` contract implemented over a :class:`PeerMatcher`."""

    def __init__(self, constraint: PeerConstraint, inner: PeerMatcher, steps: list[int] | None = None,
                 finished: bool = False) -> None:
        self.constraint = constraint
        self.inner = inner
        self._steps = list(steps or [])  # native tokens per accepted step; 0 = the EOS step
        self._finished = finished
        self._buf = allocate_mask(constraint.vocab.size)

    def fill_mask(self, out: Any) -> None:
        words = as_uint32_words(out)
        c = self.constraint
        if self._finished:
            words[...] = 0
            return
        buf = self._buf
        self.inner.fill(buf)
        accepting = self.inner.is_accepting()
        np.bitwise_and(buf, c._keep_text, out=words)
        if accepting:
            np.bitwise_or(words, c._eos_words, out=words)

    def accept_token(self, token_id: int) -> bool:
        if self._finished:
            return False
        t = int(token_id)
        if t in self.constraint.vocab.eos_ids:
            if not self.inner.is_accepting():
                return False
            self._finished = True
            self._steps.append(0)
            return True
        if not 0 <= t < self.constraint.vocab.size or self.constraint.vocab.token_bytes[t] is None:
            return False
        if not self.inner.accept(t):
            return False
        self._steps.append(1)
        return True

    def accept_bytes(self, data: bytes) -> bool:
        if self._finished:
            return False
        if not data:
            self._steps.append(0)
            return True
        got = self.inner.accept_string(bytes(data))
        if got is not None:
            if got:
                self._steps.append(-1)  # a byte step the engine tracks itself
            return got
        ids = self.constraint.vocab.encode(bytes(data))
        n = 0
        for t in ids:
            if not self.inner.accept(int(t)):
                if n:
                    self.inner.rollback(n)
                return False
            n += 1
        self._steps.append(n)
        return True

    def is_accepting(self) -> bool:
        return self._finished or self.inner.is_accepting()

    def is_finished(self) -> bool:
        return self._finished

    def rollback(self, n: int = 1) -> None:
        if n > len(self._steps):
            raise ConstraintError(f"cannot roll back {n} steps, only {len(self._steps)} taken")
        for _ in range(n):
            k = self._steps.pop()
            if k == 0 and self._finished:
                self._finished = False
            elif k == -1:
                raise ConstraintError("cannot roll back a byte step on this engine")
            elif k > 0:
                self.inner.rollback(k)

    def copy(self) -> "PeerConstraintMatcher":
        return PeerConstraintMatcher(self.constraint, self.inner.copy(), self._steps, self._finished)

    def forced_bytes(self) -> bytes:
        return b"" if self._finished else self.inner.forced_bytes()

    def allowed(self, token_id: int) -> bool:
        out = allocate_mask(self.constraint.vocab.size)
        self.fill_mask(out)
        return is_allowed(out, token_id)


def force_tokens(m: PeerMatcher, ids: Iterable[int], buf: np.ndarray) -> tuple[bool, int]:
    """Force ``ids`` through ``m``, each checked against the mask first; (all accepted, how many)."""
    n = 0
    for t in ids:
        m.fill(buf)
        if not is_allowed(buf, t) or not m.accept(t):
            return False, n
        n += 1
    return True, n


def describe(engines: Mapping[str, PeerAdapter]) -> dict[str, str]:
    """Engine name -> version string, for reports."""
    return {k: a.version() for k, a in engines.items()}
