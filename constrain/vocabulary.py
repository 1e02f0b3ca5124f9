"""Token id -> bytes: the bridge between a tokenizer and byte-level automata.

Constraints are compiled to automata over *bytes*, so every token must be
described by the exact bytes it appends to the output, independently of where
it appears.  Tokenizers do not expose that directly: their ``decode`` works on
whole sequences and applies position-dependent cosmetics (SentencePiece strips
the space it prepended at the start of the text, GPT-2's byte map turns bytes
into printable characters, special tokens are skipped...).  This module reads
the tokenizer's ``tokenizer.json`` description and rebuilds the per-token bytes
once, without calling the tokenizer per token (a 150k vocabulary builds in well
under a second).

Supported decoding schemes (detected from the ``tokenizer.json`` structure):

* **byte-level BPE** (GPT-2, Llama-3, Qwen2/3, DeepSeek-V3, SmolLM2, ...): the
  decoder (or, if there is no decoder, the pre-tokenizer) is ``ByteLevel``;
  token strings are mapped back through the inverse of GPT-2's
  ``bytes_to_unicode`` table.
* **SentencePiece-style** BPE or Unigram (Llama-2, Mistral, T5, ...): the
  decoder replaces ``▁`` with a space (``Replace`` or ``Metaspace`` decoder);
  with byte fallback, ``<0xNN>`` pieces are the single byte ``0xNN``.

Anything else (WordPiece, WordLevel, BPE with ``</w>`` suffixes, unknown
decoders) raises :class:`~constrain.errors.VocabularyError`, because those
decoders insert or remove characters between tokens and a token then has no
position-independent byte string.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import VocabularyError

__all__ = ["Vocabulary", "WELL_KNOWN_EOS"]

#: Contents of added tokens that end generation in common model families.  They
#: are added to the EOS set whenever present as added tokens, because chat and
#: base variants of one family end with different tokens (Llama-3 instruct ends
#: turns with ``<|eot_id|>`` while its config names ``<|end_of_text|>``).  An EOS
#: id is only legal when the constraint accepts, so extra EOS ids are harmless.
WELL_KNOWN_EOS: tuple[str, ...] = (
    "</s>",
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
)

_BYTE_FALLBACK_RE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_BYTE_LEVEL = "byte_level"
_SENTENCEPIECE = "sentencepiece"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (as in openai/gpt-2 encoder.py)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


_BYTE_TO_CHAR = _bytes_to_unicode()
# str.translate table: printable char -> the char whose code point is the byte, so that
# ``token.translate(_CHAR_TO_LATIN1).encode("latin-1")`` is the token's bytes.
_CHAR_TO_LATIN1 = {ord(c): chr(b) for b, c in _BYTE_TO_CHAR.items()}
_NOT_BYTE_CHAR_RE = re.compile("[^" + "".join(re.escape(c) for c in _BYTE_TO_CHAR.values()) + "]")


def _flatten(component: Mapping[str, Any] | None, key: str) -> list[dict[str, Any]]:
    """Flatten a tokenizer.json component, expanding ``Sequence`` nodes (listed under ``key``)."""
    if not component:
        return []
    if component.get("type") == "Sequence":
        out: list[dict[str, Any]] = []
        for child in component.get(key) or []:
            out.extend(_flatten(child, key))
        return out
    return [dict(component)]


def _detect_scheme(spec: Mapping[str, Any]) -> tuple[str, str, bool]:
    """Return ``(scheme, metaspace_char, byte_fallback)`` for a parsed tokenizer.json.

    Detection looks at the *decoder* first, because the decoder is what defines the
    bytes a token contributes; the pre-tokenizer is only a fallback for files that
    omit the decoder.
    """
    model = spec.get("model") or {}
    model_type = model.get("type")
    if model_type not in ("BPE", "Unigram"):
        raise VocabularyError(
            f"unsupported tokenizer model {model_type!r}: only byte-level BPE and SentencePiece-style "
            "BPE/Unigram tokenizers map every token to position-independent bytes "
            "(WordPiece/WordLevel decoders insert spaces and strip '##' between tokens)"
        )
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise VocabularyError(
            "unsupported BPE tokenizer with continuing_subword_prefix/end_of_word_suffix "
            f"({model.get('continuing_subword_prefix')!r}/{model.get('end_of_word_suffix')!r}): "
            "its tokens' text depends on their neighbours"
        )
    decoders = _flatten(spec.get("decoder"), "decoders")
    pre = _flatten(spec.get("pre_tokenizer"), "pretokenizers")
    dtypes = [d.get("type") for d in decoders]
    byte_fallback = bool(model.get("byte_fallback")) or "ByteFallback" in dtypes

    if "ByteLevel" in dtypes or (not decoders and any(p.get("type") == "ByteLevel" for p in pre)):
        unknown = [t for t in dtypes if t not in ("ByteLevel", "Fuse")]
        if unknown:
            raise VocabularyError(f"unsupported byte-level decoder chain {dtypes!r} (unknown steps {unknown!r})")
        return _BYTE_LEVEL, "", False

    metaspace = ""
    for d in decoders:
        if d.get("type") == "Metaspace":
            metaspace = d.get("replacement") or "\u2581"
        elif d.get("type") == "Replace":
            pattern = (d.get("pattern") or {}).get("String")
            if pattern and d.get("content") == " " and len(pattern) == 1:
                metaspace = pattern
    if metaspace:
        unknown = [t for t in dtypes if t not in ("Metaspace", "Replace", "ByteFallback", "Fuse", "Strip")]
        if unknown:
            raise VocabularyError(f"unsupported SentencePiece decoder chain {dtypes!r} (unknown steps {unknown!r})")
        return _SENTENCEPIECE, metaspace, byte_fallback

    raise VocabularyError(
        f"cannot determine how tokens decode to bytes (model {model_type}, decoder chain {dtypes!r}, "
        f"pre-tokenizers {[p.get('type') for p in pre]!r}); supported: byte-level BPE and SentencePiece-style"
    )


def _token_decoder(scheme: str, metaspace: str, byte_fallback: bool):
    """A function token string -> bytes, mirroring the tokenizer's decoder on one token in isolation."""
    if scheme == _BYTE_LEVEL:
        table, not_byte = _CHAR_TO_LATIN1, _NOT_BYTE_CHAR_RE.search

        def decode(tok: str) -> bytes:
            # Same rule as tokenizers' ByteLevel decoder: a token containing a character
            # outside the byte map (typical of added tokens) passes through as UTF-8.
            if not_byte(tok):
                return tok.encode("utf-8")
            return tok.translate(table).encode("latin-1")

        return decode

    fullmatch = _BYTE_FALLBACK_RE.fullmatch

    def decode_sp(tok: str) -> bytes:
        if byte_fallback and len(tok) == 6:
            m = fullmatch(tok)
            if m:
                return bytes((int(m.group(1), 16),))
        return tok.replace(metaspace, " ").encode("utf-8")

    return decode_sp


def _backend_of(tok: Any):
    """The ``tokenizers.Tokenizer`` behind ``tok`` (a transformers fast tokenizer or a raw one)."""
    import tokenizers

    if isinstance(tok, tokenizers.Tokenizer):
        return tok
    for attr in ("backend_tokenizer", "_tokenizer"):
        try:
            backend = getattr(tok, attr, None)
        except Exception:  # some slow tokenizers raise from the property
            backend = None
        if isinstance(backend, tokenizers.Tokenizer):
            return backend
    raise VocabularyError(
        f"{type(tok).__name__} has no tokenizers.Tokenizer backend; constrain needs a fast tokenizer "
        "(tokenizer.json): load it with use_fast=True or pass a tokenizers.Tokenizer"
    )


def _token_name(value: Any) -> str | None:
    """A token name from tokenizer_config.json (a string or an AddedToken dict)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VocabularyError(f"cannot read {path}: {exc}") from exc


class Vocabulary:
    """Immutable mapping from token id to the exact bytes the token contributes to the output.

    ``token_bytes[i]`` is ``None`` for ids that must never be produced as text:
    special/control tokens (including EOS and the model's unknown token), ids of
    tokens that decode to nothing (allowing them could loop forever without
    progress), holes in the tokenizer's id space, and padding rows between the
    tokenizer's length and the model's logits size.

    ``special_ids`` are the control tokens (they include ``eos_ids``); padding rows
    and empty tokens are ``None`` without being special.

    Build it with :meth:`from_tokenizer`, :meth:`from_file` or :meth:`from_pretrained`;
    the constructor takes the raw table (handy for tests and custom tokenizers).
    """

    __slots__ = (
        "_size",
        "_token_bytes",
        "_eos_ids",
        "_special_ids",
        "_name",
        "_tokenizer",
        "_fingerprint",
        "_max_token_len",
        "_encoder",
        "_bytes_index",
        "_lock",
    )

    def __init__(
        self,
        token_bytes: Sequence[bytes | None],
        eos_ids: Iterable[int],
        special_ids: Iterable[int] = frozenset(),
        *,
        name: str = "",
        tokenizer: Any = None,
    ) -> None:
        rows: list[bytes | None] = []
        for i, b in enumerate(token_bytes):
            if b is None:
                rows.append(None)
            elif isinstance(b, (bytes, bytearray, memoryview)):
                # b"" would let a matcher accept a token without progress: never allow it.
                rows.append(bytes(b) or None)
            else:
                raise VocabularyError(f"token {i}: expected bytes or None, got {type(b).__name__}")
        size = len(rows)
        eos = frozenset(self._check_ids(eos_ids, size, "eos id"))
        special = frozenset(self._check_ids(special_ids, size, "special id")) | eos
        # EOS and special tokens are control tokens: they must never match text.
        for i in special:
            rows[i] = None
        set_ = object.__setattr__
        set_(self, "_size", size)
        set_(self, "_token_bytes", tuple(rows))
        set_(self, "_eos_ids", eos)
        set_(self, "_special_ids", special)
        set_(self, "_name", str(name))
        set_(self, "_tokenizer", tokenizer)
        set_(self, "_fingerprint", None)
        set_(self, "_max_token_len", max((len(b) for b in rows if b is not None), default=0))
        set_(self, "_encoder", None)
        set_(self, "_bytes_index", None)
        set_(self, "_lock", threading.Lock())

    @staticmethod
    def _check_ids(ids: Iterable[int], size: int, what: str) -> list[int]:
        out = []
        for i in ids:
            try:
                j = int(i)
            except (TypeError, ValueError):
                raise VocabularyError(f"{what} {i!r} is not an integer") from None
            if not 0 <= j < size:
                raise VocabularyError(f"{what} {j} is out of range for a vocabulary of size {size}")
            out.append(j)
        return out

    # ------------------------------------------------------------------ immutability

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"Vocabulary is immutable (cannot set {key!r})")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"Vocabulary is immutable (cannot delete {key!r})")

    def __getstate__(self) -> dict[str, Any]:
        # Caches (encoder copy, byte index, lock) are rebuilt on demand after unpickling.
        return {
            "token_bytes": self._token_bytes,
            "eos_ids": self._eos_ids,
            "special_ids": self._special_ids,
            "name": self._name,
            "tokenizer": self._tokenizer,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        Vocabulary.__init__(
            self,
            state["token_bytes"],
            state["eos_ids"],
            state["special_ids"],
            name=state["name"],
            tokenizer=state["tokenizer"],
        )

    # ------------------------------------------------------------------ attributes

    @property
    def size(self) -> int:
        """Number of rows in the model's logits (>= the tokenizer's length)."""
        return self._size

    @property
    def token_bytes(self) -> tuple[bytes | None, ...]:
        """For every id < size, the bytes that token appends to the output, or None."""
        return self._token_bytes

    @property
    def eos_ids(self) -> frozenset[int]:
        """Every id that ends generation."""
        return self._eos_ids

    @property
    def special_ids(self) -> frozenset[int]:
        """Control tokens (a superset of ``eos_ids``); their ``token_bytes`` are None."""
        return self._special_ids

    @property
    def name(self) -> str:
        return self._name

    @property
    def tokenizer(self) -> Any:
        """The tokenizer this vocabulary came from (transformers or ``tokenizers.Tokenizer``), or None."""
        return self._tokenizer

    @property
    def max_token_len(self) -> int:
        """Length in bytes of the longest token (bounds look-ahead in token tries)."""
        return self._max_token_len

    @property
    def fingerprint(self) -> str:
        """Stable sha256 hex of size, every row's bytes and the EOS ids: a cache key for compiled artefacts."""
        fp = self._fingerprint
        if fp is None:
            rows = self._token_bytes
            h = hashlib.sha256(b"constrain.Vocabulary/v1\0")
            h.update(self._size.to_bytes(8, "little"))
            h.update(array("q", (-1 if b is None else len(b) for b in rows)).tobytes())
            h.update(b"".join(b for b in rows if b is not None))
            h.update(array("q", sorted(self._eos_ids)).tobytes())
            fp = h.hexdigest()
            object.__setattr__(self, "_fingerprint", fp)
        return fp

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self is other or self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"Vocabulary(name={self._name!r}, size={self._size}, eos_ids={sorted(self._eos_ids)})"

    # ------------------------------------------------------------------ encode / decode

    def decode(self, ids: Iterable[int]) -> bytes:
        """Concatenate the bytes of ``ids``.

        Ids whose row is None (special tokens, EOS, padding) contribute nothing, like
        ``skip_special_tokens=True``: a generated sequence ending in EOS decodes to its
        text.  Ids outside ``[0, size)`` raise :class:`VocabularyError`.
        """
        rows, size = self._token_bytes, self._size
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < size:
                raise VocabularyError(f"token id {i} is out of range for a vocabulary of size {size}")
            b = rows[i]
            if b is not None:
                out.append(b)
        return b"".join(out)

    def encode(self, text: str | bytes) -> list[int]:
        """Token ids for ``text`` such that ``decode(encode(text)) == text.encode("utf-8")``.

        No special tokens are added, and special-token look-alikes in ``text`` (e.g. the
        literal string ``"<|im_end|>"``) are encoded as ordinary text.

        The tokenizer is used when there is one, through a private copy adjusted for
        exactness, following the approach of llguidance/outlines:

        * SentencePiece tokenizers prepend ``▁`` to the input (``Prepend`` normalizer or
          ``Metaspace(prepend_scheme="always")``) and their ``decode`` strips it again.
          Our token bytes do not depend on position (``▁Hello`` is always ``b" Hello"``),
          so the copy has prefix-space insertion switched off: ``"Hello"`` encodes to
          tokens spelling ``Hello`` and ``" Hello"`` to ``▁Hello``.
        * Text-changing normalizers (e.g. Qwen's NFC) are dropped so that the bytes are
          preserved exactly (only SentencePiece's ``" " -> "▁"`` replacement is kept).

        ``bytes`` are accepted too; bytes that are not valid UTF-8 skip the tokenizer.
        If the result still does not spell ``text`` (or there is no tokenizer), a
        shortest segmentation over the vocabulary's own byte strings is used; if no
        segmentation exists :class:`VocabularyError` is raised.
        """
        if isinstance(text, str):
            data = text.encode("utf-8")
        else:
            data = bytes(text)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:  # not text: only the byte-level segmentation applies
                return self._encode_by_bytes(data)
        if not data:
            return []
        encoder = self._get_encoder()
        if encoder is not None:
            ids = list(encoder.encode(text, add_special_tokens=False).ids)
            try:
                if self.decode(ids) == data:
                    return ids
            except VocabularyError:
                pass
        return self._encode_by_bytes(data)

    def _get_encoder(self):
        """Lazily build the tokenizer copy used by :meth:`encode` (see there for why a copy)."""
        if self._tokenizer is None:
            return None
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    object.__setattr__(self, "_encoder", _exact_encoder(_backend_of(self._tokenizer)))
        return self._encoder

    def _encode_by_bytes(self, data: bytes) -> list[int]:
        index = self._bytes_index
        if index is None:
            index = {}
            for i, b in enumerate(self._token_bytes):
                if b is not None and b not in index:
                    index[b] = i
            object.__setattr__(self, "_bytes_index", index)
        n, maxlen = len(data), self._max_token_len
        inf = n + 1
        # best[j]: fewest tokens spelling data[:j]; back[j]: (start, id) of the last token.
        best = [0] + [inf] * n
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        for j in range(1, n + 1):
            for i in range(max(0, j - maxlen), j):
                if best[i] + 1 < best[j]:
                    tid = index.get(data[i:j])
                    if tid is not None:
                        best[j] = best[i] + 1
                        back[j] = (i, tid)
        if best[n] >= inf:
            reachable = max(j for j in range(n + 1) if best[j] < inf)
            raise VocabularyError(
                f"vocabulary {self._name!r} cannot spell the text: no token sequence covers byte "
                f"{data[reachable:reachable + 1]!r} at offset {reachable}"
            )
        out: list[int] = []
        j = n
        while j > 0:
            i, tid = back[j]
            out.append(tid)
            j = i
        out.reverse()
        return out

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_tokenizer(
        cls,
        tok: Any,
        *,
        model_vocab_size: int | None = None,
        eos_ids: Iterable[int] | None = None,
        allow_special: Iterable[str | int] = (),
    ) -> Vocabulary:
        """Build from a transformers fast tokenizer or a raw ``tokenizers.Tokenizer``.

        ``model_vocab_size`` is the number of rows of the model's logits; ids between
        the tokenizer's length and it are padding (None).  A smaller value than the
        tokenizer's length raises :class:`VocabularyError`, since the model could
        then never produce some tokens and ids would be misaligned.

        ``eos_ids`` replaces the default EOS set, which is the tokenizer's own
        ``eos_token`` (transformers tokenizers) plus any :data:`WELL_KNOWN_EOS` added
        token present.  ``allow_special`` names special tokens (content or id) that
        may appear as literal text; they get their content bytes.
        """
        backend = _backend_of(tok)
        spec = json.loads(backend.to_str())
        extra_eos: list[int] = []
        special: set[int] = set()
        if backend is not tok:
            eid = getattr(tok, "eos_token_id", None)
            if isinstance(eid, int):
                extra_eos.append(eid)
            try:
                special.update(int(i) for i in (getattr(tok, "all_special_ids", None) or ()))
            except (TypeError, ValueError):
                pass
        name = getattr(tok, "name_or_path", "") or ""
        return cls._from_spec(
            spec,
            tokenizer=tok,
            name=str(name),
            model_vocab_size=model_vocab_size,
            eos_ids=eos_ids,
            allow_special=allow_special,
            config_eos_ids=extra_eos,
            extra_special_ids=special,
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        model_vocab_size: int | None = None,
        eos_ids: Iterable[int] | None = None,
        allow_special: Iterable[str | int] = (),
    ) -> Vocabulary:
        """Build from a ``tokenizer.json`` or a folder holding one (no transformers needed).

        A ``tokenizer_config.json`` beside it supplies the EOS token and the special
        flags of added tokens (``added_tokens_decoder``, ``additional_special_tokens``,
        bos/eos/unk/pad); a ``generation_config.json`` beside it supplies extra EOS ids.
        Other arguments as in :meth:`from_tokenizer`.
        """
        import tokenizers

        p = Path(path)
        file = p / "tokenizer.json" if p.is_dir() else p
        if not file.is_file():
            raise VocabularyError(f"no tokenizer.json at {p}")
        try:
            text = file.read_text(encoding="utf-8")
            spec = json.loads(text)
            backend = tokenizers.Tokenizer.from_str(text)
        except Exception as exc:  # OSError, JSON errors, and tokenizers raises a bare Exception
            raise VocabularyError(f"cannot load tokenizer {file}: {exc}") from exc

        folder = file.parent
        eos_names: list[str] = []
        eos_id_list: list[int] = []
        special_names: set[str] = set()
        flags: dict[int, bool] = {}
        cfg_path = folder / "tokenizer_config.json"
        if cfg_path.is_file():
            cfg = _read_json(cfg_path)
            if isinstance(cfg, Mapping):
                eos = _token_name(cfg.get("eos_token"))
                if eos:
                    eos_names.append(eos)
                for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
                    nm = _token_name(cfg.get(key))
                    if nm:
                        special_names.add(nm)
                for v in cfg.get("additional_special_tokens") or ():
                    nm = _token_name(v)
                    if nm:
                        special_names.add(nm)
                for k, v in (cfg.get("added_tokens_decoder") or {}).items():
                    if isinstance(v, Mapping) and "special" in v:
                        try:
                            flags[int(k)] = bool(v["special"])
                        except ValueError:
                            pass
        gen_path = folder / "generation_config.json"
        if gen_path.is_file():
            gen = _read_json(gen_path)
            if isinstance(gen, Mapping):
                e = gen.get("eos_token_id")
                eos_id_list.extend([e] if isinstance(e, int) else [x for x in (e or ()) if isinstance(x, int)])
        name = folder.name if file.name == "tokenizer.json" else file.stem
        return cls._from_spec(
            spec,
            tokenizer=backend,
            name=name,
            model_vocab_size=model_vocab_size,
            eos_ids=eos_ids,
            allow_special=allow_special,
            config_eos_names=eos_names,
            config_eos_ids=eos_id_list,
            special_flags=flags,
            special_names=special_names,
        )

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        model_vocab_size: int | None = None,
        eos_ids: Iterable[int] | None = None,
        allow_special: Iterable[str | int] = (),
        **tokenizer_kwargs: Any,
    ) -> Vocabulary:
        """Build via ``transformers.AutoTokenizer.from_pretrained(name_or_path, **tokenizer_kwargs)``.

        Also adds the EOS ids of the model's ``generation_config.json`` when it can be
        found (instruct models often end with a token other than ``eos_token``).
        """
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:  # pragma: no cover - transformers is a dependency
            raise VocabularyError("from_pretrained needs transformers; use Vocabulary.from_file") from exc
        try:
            tok = AutoTokenizer.from_pretrained(str(name_or_path), **tokenizer_kwargs)
        except Exception as exc:
            raise VocabularyError(f"cannot load tokenizer {name_or_path!r}: {exc}") from exc
        vocab = cls.from_tokenizer(
            tok, model_vocab_size=model_vocab_size, eos_ids=eos_ids, allow_special=allow_special
        )
        if eos_ids is None:
            extra = _generation_eos_ids(name_or_path, tokenizer_kwargs)
            extra = {i for i in extra if 0 <= i < vocab.size} - vocab.eos_ids
            if extra:
                vocab = cls(
                    vocab.token_bytes,
                    vocab.eos_ids | extra,
                    vocab.special_ids,
                    name=vocab.name,
                    tokenizer=tok,
                )
        return vocab

    @classmethod
    def _from_spec(
        cls,
        spec: Mapping[str, Any],
        *,
        tokenizer: Any,
        name: str,
        model_vocab_size: int | None,
        eos_ids: Iterable[int] | None,
        allow_special: Iterable[str | int],
        config_eos_names: Iterable[str] = (),
        config_eos_ids: Iterable[int] = (),
        special_flags: Mapping[int, bool] | None = None,
        special_names: Iterable[str] = (),
        extra_special_ids: Iterable[int] = (),
    ) -> Vocabulary:
        """Shared builder over a parsed tokenizer.json plus what configs say about specials/EOS."""
        scheme, metaspace, byte_fallback = _detect_scheme(spec)
        decode = _token_decoder(scheme, metaspace, byte_fallback)
        model = spec["model"]

        # id -> token string, model vocabulary first, then added tokens (which win).
        id_to_tok: dict[int, str] = {}
        raw_vocab = model.get("vocab") or {}
        if model["type"] == "Unigram":
            for i, entry in enumerate(raw_vocab):
                id_to_tok[i] = entry[0]
        else:
            id_to_tok = {int(i): t for t, i in raw_vocab.items()}
        model_tok_to_id = {t: i for i, t in id_to_tok.items()}
        model_ids = set(id_to_tok)
        added: dict[int, dict[str, Any]] = {}
        for a in spec.get("added_tokens") or ():
            added[int(a["id"])] = a
            id_to_tok[int(a["id"])] = a["content"]
        if not id_to_tok:
            raise VocabularyError("the tokenizer has an empty vocabulary")
        tok_len = max(id_to_tok) + 1
        size = tok_len if model_vocab_size is None else int(model_vocab_size)
        if size < tok_len:
            raise VocabularyError(
                f"model vocabulary size {size} is smaller than the tokenizer's length {tok_len}: "
                "the tokenizer does not belong to this model"
            )

        # Name -> id, added tokens taking precedence (they are matched first when encoding).
        name_to_id = dict(model_tok_to_id)
        for i, a in added.items():
            name_to_id[a["content"]] = i

        # Control tokens.
        flags = dict(special_flags or {})
        special: set[int] = set()
        for i, a in added.items():
            # Added tokens outside the model's own vocabulary are control tokens
            # (<tool_call>, <|fim_prefix|>...) even when not flagged special:
            # never text unless asked for with allow_special.
            if flags.get(i, bool(a.get("special"))) or i not in model_ids:
                special.add(i)
        special.update(i for i, f in flags.items() if f and i in id_to_tok)
        special.update(name_to_id[n] for n in special_names if n in name_to_id)
        special.update(int(i) for i in extra_special_ids if 0 <= int(i) < tok_len)
        if model["type"] == "Unigram":
            unk_id = model.get("unk_id")
            if isinstance(unk_id, int):
                special.add(unk_id)
        elif model.get("unk_token") in model_tok_to_id:
            special.add(model_tok_to_id[model["unk_token"]])

        allowed: set[int] = set()
        for item in allow_special:
            if isinstance(item, str):
                if item not in name_to_id:
                    raise VocabularyError(f"allow_special: no token {item!r} in the tokenizer")
                allowed.add(name_to_id[item])
            else:
                j = int(item)
                if not 0 <= j < tok_len:
                    raise VocabularyError(f"allow_special: token id {j} is out of range (tokenizer length {tok_len})")
                allowed.add(j)
        special -= allowed

        if eos_ids is None:
            eos = {int(i) for i in config_eos_ids if 0 <= int(i) < tok_len}
            eos.update(name_to_id[n] for n in config_eos_names if n in name_to_id)
            eos.update(name_to_id[n] for n in WELL_KNOWN_EOS if n in name_to_id and name_to_id[n] in added)
            eos -= allowed
        else:
            eos = set(Vocabulary._check_ids(eos_ids, size, "eos id"))
            both = eos & allowed
            if both:
                raise VocabularyError(f"token ids {sorted(both)} are both in eos_ids and allow_special")

        rows: list[bytes | None] = [None] * size
        for i, t in id_to_tok.items():
            if i in special:
                continue
            rows[i] = decode(t) or None
        return cls(rows, eos, special, name=name, tokenizer=tokenizer)


def _exact_encoder(backend: Any):
    """A copy of ``backend`` whose encode spells text exactly in this module's token bytes.

    See :meth:`Vocabulary.encode`: no prefix space, no text-changing normalisation,
    special tokens' text treated as ordinary text, no BPE dropout.
    """
    import tokenizers

    spec = json.loads(backend.to_str())
    scheme, metaspace, _ = _detect_scheme(spec)
    normalizers = _flatten(spec.get("normalizer"), "normalizers")
    if scheme == _SENTENCEPIECE:
        kept = [
            n
            for n in normalizers
            if n.get("type") == "Replace"
            and (n.get("pattern") or {}).get("String") == " "
            and n.get("content") == metaspace
        ]
    else:
        kept = []
    if not kept:
        spec["normalizer"] = None
    else:
        spec["normalizer"] = kept[0] if len(kept) == 1 else {"type": "Sequence", "normalizers": kept}

    def patch_pre(node: Any) -> None:
        if isinstance(node, dict):
            t = node.get("type")
            if t == "ByteLevel":
                node["add_prefix_space"] = False
            elif t == "Metaspace":
                node["prepend_scheme"] = "never"
                if "add_prefix_space" in node:
                    node["add_prefix_space"] = False
            for v in node.values():
                patch_pre(v)
        elif isinstance(node, list):
            for v in node:
                patch_pre(v)

    patch_pre(spec.get("pre_tokenizer"))
    if isinstance(spec.get("model"), dict) and "dropout" in spec["model"]:
        spec["model"]["dropout"] = None
    enc = tokenizers.Tokenizer.from_str(json.dumps(spec))
    enc.no_truncation()
    enc.no_padding()
    try:
        enc.encode_special_tokens = True
    except AttributeError:  # pragma: no cover - tokenizers < 0.19; encode's fallback keeps it exact
        pass
    return enc


def _generation_eos_ids(name_or_path: str | Path, kwargs: Mapping[str, Any]) -> set[int]:
    """EOS ids from a model's generation config, or an empty set when there is none."""
    p = Path(str(name_or_path))
    data: Any = None
    if p.is_dir():
        gen = p / "generation_config.json"
        if gen.is_file():
            try:
                data = json.loads(gen.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return set()
    else:
        try:
            from transformers import GenerationConfig

            names = ("revision", "cache_dir", "local_files_only", "token", "subfolder")
            keep = {k: kwargs[k] for k in names if k in kwargs}
            data = GenerationConfig.from_pretrained(str(name_or_path), **keep).to_dict()
        except Exception:
            return set()
    if not isinstance(data, Mapping):
        return set()
    e = data.get("eos_token_id")
    if isinstance(e, int):
        return {e}
    if isinstance(e, (list, tuple)):
        return {x for x in e if isinstance(x, int)}
    return set()
