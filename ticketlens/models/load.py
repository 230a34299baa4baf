"""The one place models are built or loaded: built-in presets, local folders, HF hub ids.

Presets are small random-init configs built locally (no download):

==================  ==========================================================
``tiny-bert``       BERT, 4 layers, 4 heads, hidden 64, FFN 256 (the default)
``tiny-distilbert`` DistilBERT, 2 layers, 4 heads, dim 64, FFN 256
``tiny-gpt2``       GPT-2, 2 layers, 4 heads, n_embd 64 (fused Conv1D weights)
``tiny-llama``      Llama, 2 layers, 4 query heads, 2 key/value heads, hidden 64
==================  ==========================================================

A model may also be a local folder, an HF hub id, or a ``.gguf`` file (llama.cpp's format:
transformers reads it with ``from_pretrained(folder, gguf_file=name)`` and dequantizes the
weights to fp32; it needs ``pip install 'ticketlens[gguf]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ticketlens.core.errors import ModelError, first_line
from ticketlens.core.hub import hub_offline

PRESETS = ("tiny-bert", "tiny-distilbert", "tiny-gpt2", "tiny-llama")


@dataclass
class LoadedModel:
    model: Any  # a transformers PreTrainedModel
    name: str
    source: str  # "preset" | "folder" | "hub" | "gguf"
    pretrained: bool
    tokenizer_file: Path | None  # the model's own tokenizer.json, if it has one

    @property
    def config_dict(self) -> dict[str, Any]:
        return self.model.config.to_dict()


def preset_config(name: str, vocab_size: int, num_labels: int, pad_id: int) -> Any:
    import transformers as tf

    common = dict(vocab_size=vocab_size, num_labels=num_labels, pad_token_id=pad_id,
                  problem_type=_problem_type(num_labels))
    if name == "tiny-bert":
        return tf.BertConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                             intermediate_size=256, max_position_embeddings=128,
                             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                             **common)
    if name == "tiny-distilbert":
        return tf.DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=256,
                                   max_position_embeddings=128, **common)
    if name == "tiny-gpt2":
        return tf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128,
                             bos_token_id=pad_id, eos_token_id=pad_id, **common)
    if name == "tiny-llama":
        return tf.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2,
                              max_position_embeddings=128, **common)
    raise ModelError(f"unknown preset {name!r} (presets: {', '.join(PRESETS)})")


def _problem_type(num_labels: int) -> str:
    """One output is a regression (STS-B: mean squared error on a score), else classes."""
    return "regression" if num_labels == 1 else "single_label_classification"


def uses_token_types(config: Any) -> bool:
    """Whether the model embeds token types (BERT-style segment A / B)."""
    return int(getattr(config, "type_vocab_size", 0) or 0) >= 2


def model_class(objective: str) -> Any:
    import transformers as tf

    return {
        "classification": tf.AutoModelForSequenceClassification,
        "mlm": tf.AutoModelForMaskedLM,
        "clm": tf.AutoModelForCausalLM,
    }[objective]


def build_preset(name: str, *, vocab_size: int, num_labels: int, pad_id: int, seed: int,
                 objective: str = "classification") -> LoadedModel:
    """A freshly initialised preset; the same ``seed`` gives the same weights."""
    cfg = preset_config(name, vocab_size, num_labels, pad_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(objective).from_config(cfg)
    return LoadedModel(model, name, "preset", False, None)


@contextmanager
def _transformers_quiet(tf: Any) -> Iterator[None]:
    """transformers' logging at errors only for one call, then as it was."""
    level = tf.logging.get_verbosity()
    bars = tf.utils.logging.is_progress_bar_enabled()
    tf.logging.set_verbosity_error()
    tf.utils.logging.disable_progress_bar()  # GGUF loading draws bars on stderr
    try:
        yield
    finally:
        tf.logging.set_verbosity(level)
        if bars:
            tf.utils.logging.enable_progress_bar()


def load_pretrained(name: str, *, num_labels: int, objective: str = "classification",
                    local_only: bool | None = None, seed: int = 0) -> LoadedModel:
    """A local model folder or an HF hub id; offline hubs fail at once with one line.

    For classification the task head is always new, initialised from ``seed`` the way HF
    initialises it (normal, std ``initializer_range``; zero bias), also when the checkpoint
    holds a head (of any size): the search starts from the pretrained body, as Chen et al.
    """
    import transformers as tf

    gguf = gguf_source(name)
    if gguf is not None:
        name = gguf[0]
    folder = Path(name)
    is_folder = folder.is_dir()
    if not is_folder and _looks_like_path(name):
        raise ModelError(f"{name}: no such model folder")
    offline = is_folder or (local_only if local_only is not None else hub_offline())
    # "newly initialized" notes: the head is new by design (the level is put back)
    with _transformers_quiet(tf):
        kwargs: dict[str, Any] = {"local_files_only": True} if offline else {}
        if gguf is not None:  # dequantized to fp32 (the engine trains in fp32)
            kwargs.update(gguf_file=gguf[1])
        try:
            cfg = tf.AutoConfig.from_pretrained(name, num_labels=num_labels, **kwargs)
            if objective == "classification":
                cfg.problem_type = _problem_type(num_labels)
                if getattr(cfg, "pad_token_id", None) is None:
                    eos = getattr(cfg, "eos_token_id", None)
                    cfg.pad_token_id = eos[0] if isinstance(eos, list | tuple) and eos else eos
            if objective == "classification":  # a checkpoint's head of another size is dropped
                kwargs["ignore_mismatched_sizes"] = True
            if gguf is not None:
                kwargs["dtype"] = torch.float32
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # whatever HF initialises is seeded too
                model = model_class(objective).from_pretrained(name, config=cfg, **kwargs)
            if objective == "classification":
                init_task_head(model, seed)
        except OSError as exc:
            if gguf is not None:
                raise ModelError(f"{folder / gguf[1]}: not a loadable GGUF model "
                                 f"({first_line(exc)})") from None
            if is_folder:
                raise ModelError(f"{name}: not a loadable HF model folder ({first_line(exc)})") \
                    from None
            raise ModelError(
                f"model {name!r} is not a preset ({', '.join(PRESETS)}), not a local folder, and "
                f"not in the local HF cache{' (the hub is unreachable)' if offline else ''}"
            ) from None
        except (ValueError, KeyError) as exc:  # GGUF: an unsupported architecture
            where = name if gguf is None else str(folder / gguf[1])
            raise ModelError(f"{where}: cannot build a {objective} model ({first_line(exc)})") \
                from None
    if gguf is not None:
        return LoadedModel(model, str(folder / gguf[1]), "gguf", True,
                           _tokenizer_file(name, local_only=True, gguf_file=gguf[1]))
    return LoadedModel(model, name, "folder" if is_folder else "hub", True,
                       _tokenizer_file(name, local_only=offline))


def gguf_source(name: str) -> tuple[str, str] | None:
    """``(folder, file name)`` when ``name`` is a ``.gguf`` file, else None; a missing file
    or a missing ``gguf`` package is one clear error."""
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        return None
    if not path.is_file():
        raise ModelError(f"{name}: no such GGUF file")
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise ModelError(f"{name}: reading a GGUF file needs the gguf package "
                         "(pip install 'ticketlens[gguf]')") from None
    return str(path.parent), path.name


HEAD_MODULES = ("pre_classifier", "classifier", "score")  # BERT-style/DistilBERT, decoders
# LM heads: decoders, BERT (cls.predictions), DistilBERT (vocab_*)
LM_HEAD_MODULES = ("lm_head", "cls", "vocab_transform", "vocab_layer_norm", "vocab_projector")


def head_parameter_names(model: Any) -> set[str]:
    """Parameters of the task or LM head (top-level modules above the transformer body)."""
    heads = HEAD_MODULES + LM_HEAD_MODULES
    return {n for n, _ in model.named_parameters() if n.split(".")[0] in heads}


def init_task_head(model: Any, seed: int) -> list[str]:
    """Re-initialise the sequence-classification head from ``seed`` (HF's scheme); returns
    the names of the layers it reset."""
    std = getattr(model.config, "initializer_range", None) or 0.02
    g = torch.Generator().manual_seed(seed)
    names = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.split(".")[0] in HEAD_MODULES and isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, std, generator=g)
                if module.bias is not None:
                    module.bias.zero_()
                names.append(name)
    return names


def reinit_like(loaded: LoadedModel, seed: int) -> Any:
    """A fresh random initialisation of the same architecture (the random-reinit control)."""
    cfg = loaded.model.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return type(loaded.model)._from_config(cfg)


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name`` (dots allowed: ``Qwen/Qwen2.5-0.5B``)."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


def _tokenizer_file(name: str, *, local_only: bool, gguf_file: str | None = None
                    ) -> Path | None:
    """The model's ``tokenizer.json``: in its folder, or fetched to (or found in) the HF cache.
    A model with only a vocabulary (``vocab.txt``, a SentencePiece file) gets one converted by
    ``AutoTokenizer`` into a fast tokenizer, written to a temporary file."""
    folder = Path(name)
    if gguf_file is not None:
        pass  # the tokenizer is inside the GGUF file: converted below
    elif folder.is_dir():
        if (folder / "tokenizer.json").is_file():
            return folder / "tokenizer.json"
    else:
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(name, "tokenizer.json", local_files_only=local_only))
        except Exception:  # not in the repo / not cached: try a conversion below
            pass
    try:
        import tempfile

        import transformers as tf

        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tok = tf.AutoTokenizer.from_pretrained(name, local_files_only=local_only, **extra)
        backend = getattr(tok, "backend_tokenizer", None) if tok.is_fast else None
        if backend is None:
            return None
        out = Path(tempfile.mkdtemp(prefix="ticketlens-tok-")) / "tokenizer.json"
        backend.save(str(out))
        return out
    except Exception:  # no tokenizer files at all: prepare() says so in one line
        return None


def model_from_run(run: Any, which: str = "ticket", *,
                   attn_implementation: str | None = None) -> Any:
    """The run's model with its stored ``which`` weights (``rewind``, ``dense``, ``ticket``),
    rebuilt from the manifest's config: no download, nothing unpickled. In eval mode."""
    import transformers as tf

    state = run.weights(which)  # raises a clear error for runs without weights
    info = run.manifest.model
    cfg_dict = dict(info.config)
    model_type = cfg_dict.pop("model_type", None)
    if model_type is None:
        raise ModelError(f"{run.path}: the manifest has no model config")
    cfg = tf.AutoConfig.for_model(model_type, **cfg_dict)
    if attn_implementation:
        cfg._attn_implementation = attn_implementation
    objective = info.objective
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(objective).from_config(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight") or "decoder.weight" in k}
    if set(missing) - tied or unexpected:
        raise ModelError(f"{run.path}: stored {which} weights do not fit the model "
                         f"(missing {sorted(set(missing) - tied)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]})")
    return model.eval()
