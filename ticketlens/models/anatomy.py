"""Family adapters: from an HF model to its :class:`~ticketlens.core.anatomy.Anatomy`.

Each family is a table of parameter-name patterns (any prefix, so ``bert.``, ``roberta.``,
``electra.`` all match) mapped to roles, plus how to read its sizes from the config. The
default prunable set follows Chen et al. 2020: every attention and FFN weight matrix of every
layer; embeddings, LayerNorms, biases and task heads are not pruned.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ticketlens.core.anatomy import Anatomy, TensorInfo
from ticketlens.core.errors import ConfigError, ModelError


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    patterns: tuple[tuple[str, str], ...]  # (regex with a (\d+) layer group, role)
    layout: str
    sizes: Callable[[Any], dict[str, int]]


def _get(cfg: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def _bert_sizes(c: Any) -> dict[str, int]:
    heads = c.num_attention_heads
    return dict(num_layers=c.num_hidden_layers, num_heads=heads, num_kv_heads=heads,
                head_dim=c.hidden_size // heads, hidden=c.hidden_size,
                intermediate=c.intermediate_size)


def _distilbert_sizes(c: Any) -> dict[str, int]:
    return dict(num_layers=c.n_layers, num_heads=c.n_heads, num_kv_heads=c.n_heads,
                head_dim=c.dim // c.n_heads, hidden=c.dim, intermediate=c.hidden_dim)


def _gpt2_sizes(c: Any) -> dict[str, int]:
    return dict(num_layers=c.n_layer, num_heads=c.n_head, num_kv_heads=c.n_head,
                head_dim=c.n_embd // c.n_head, hidden=c.n_embd,
                intermediate=_get(c, "n_inner", default=None) or 4 * c.n_embd)


def _llama_sizes(c: Any) -> dict[str, int]:
    heads = c.num_attention_heads
    return dict(num_layers=c.num_hidden_layers, num_heads=heads,
                num_kv_heads=_get(c, "num_key_value_heads", default=heads),
                head_dim=_get(c, "head_dim", default=None) or c.hidden_size // heads,
                hidden=c.hidden_size, intermediate=c.intermediate_size)


L = r"(?:^|\.)"  # any prefix
FAMILIES: tuple[Family, ...] = (
    Family(
        "bert",
        ("bert", "roberta", "xlm-roberta", "electra", "camembert", "ernie", "minilm"),
        (
            (L + r"encoder\.layer\.(\d+)\.attention\.self\.query\.weight$", "q"),
            (L + r"encoder\.layer\.(\d+)\.attention\.self\.key\.weight$", "k"),
            (L + r"encoder\.layer\.(\d+)\.attention\.self\.value\.weight$", "v"),
            (L + r"encoder\.layer\.(\d+)\.attention\.output\.dense\.weight$", "o"),
            (L + r"encoder\.layer\.(\d+)\.intermediate\.dense\.weight$", "ffn_in"),
            (L + r"encoder\.layer\.(\d+)\.output\.dense\.weight$", "ffn_out"),
        ),
        "linear",
        _bert_sizes,
    ),
    Family(
        "distilbert",
        ("distilbert",),
        (
            (L + r"transformer\.layer\.(\d+)\.attention\.q_lin\.weight$", "q"),
            (L + r"transformer\.layer\.(\d+)\.attention\.k_lin\.weight$", "k"),
            (L + r"transformer\.layer\.(\d+)\.attention\.v_lin\.weight$", "v"),
            (L + r"transformer\.layer\.(\d+)\.attention\.out_lin\.weight$", "o"),
            (L + r"transformer\.layer\.(\d+)\.ffn\.lin1\.weight$", "ffn_in"),
            (L + r"transformer\.layer\.(\d+)\.ffn\.lin2\.weight$", "ffn_out"),
        ),
        "linear",
        _distilbert_sizes,
    ),
    Family(
        "gpt2",
        ("gpt2",),
        (
            (L + r"h\.(\d+)\.attn\.c_attn\.weight$", "qkv"),
            (L + r"h\.(\d+)\.attn\.c_proj\.weight$", "o"),
            (L + r"h\.(\d+)\.mlp\.c_fc\.weight$", "ffn_in"),
            (L + r"h\.(\d+)\.mlp\.c_proj\.weight$", "ffn_out"),
        ),
        "conv1d",
        _gpt2_sizes,
    ),
    Family(
        "llama",
        ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo", "phi3"),
        (
            (L + r"layers\.(\d+)\.self_attn\.q_proj\.weight$", "q"),
            (L + r"layers\.(\d+)\.self_attn\.k_proj\.weight$", "k"),
            (L + r"layers\.(\d+)\.self_attn\.v_proj\.weight$", "v"),
            (L + r"layers\.(\d+)\.self_attn\.o_proj\.weight$", "o"),
            (L + r"layers\.(\d+)\.mlp\.gate_proj\.weight$", "ffn_gate"),
            (L + r"layers\.(\d+)\.mlp\.up_proj\.weight$", "ffn_in"),
            (L + r"layers\.(\d+)\.mlp\.down_proj\.weight$", "ffn_out"),
        ),
        "linear",
        _llama_sizes,
    ),
)


def _match(family: Family, names: Sequence[str]) -> list[tuple[str, int, str]]:
    out = []
    compiled = [(re.compile(p), role) for p, role in family.patterns]
    for name in names:
        for rx, role in compiled:
            m = rx.search(name)
            if m:
                out.append((name, int(m.group(1)), role))
                break
    return out


def detect_family(model_type: str | None, names: Sequence[str]) -> Family:
    """By ``config.model_type`` first, else the family whose patterns match most names."""
    for fam in FAMILIES:
        if model_type in fam.model_types:
            return fam
    best = max(FAMILIES, key=lambda f: len(_match(f, names)))
    if not _match(best, names):
        raise ModelError(
            f"unsupported architecture {model_type!r}: no BERT-, DistilBERT-, GPT-2- or "
            "Llama-style attention/FFN weights found"
        )
    return best


def build_anatomy(
    config: Any,
    named_shapes: Sequence[tuple[str, tuple[int, ...]]],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Anatomy:
    """Anatomy from an HF config and ``(parameter name, shape)`` pairs in model order."""
    names = [n for n, _ in named_shapes]
    shapes = dict(named_shapes)
    fam = detect_family(getattr(config, "model_type", None), names)
    matched = _match(fam, names)
    if include:
        # include narrows the default set, and may add other weight matrices (role "other",
        # e.g. embeddings): they are pruned but belong to no head or neuron.
        default = {m[0] for m in matched}
        matched = [m for m in matched if any(fnmatch.fnmatchcase(m[0], p) for p in include)]
        for name in names:
            if (name not in default and len(shapes[name]) >= 2
                    and any(fnmatch.fnmatchcase(name, p) for p in include)):
                layer = re.search(r"\.(\d+)\.", name)
                matched.append((name, int(layer.group(1)) if layer else -1, "other"))
        order = {n: i for i, n in enumerate(names)}
        matched.sort(key=lambda m: order[m[0]])
    if exclude:
        matched = [m for m in matched if not any(fnmatch.fnmatchcase(m[0], p) for p in exclude)]
    if not matched:
        raise ConfigError("the include/exclude patterns leave no prunable weight")
    tensors = tuple(
        TensorInfo(name, layer, role, tuple(shapes[name]), fam.layout)
        for name, layer, role in matched
    )
    return Anatomy(family=fam.name, tensors=tensors, **fam.sizes(config))


def anatomy_of(model: Any, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Anatomy:
    """Anatomy of an instantiated HF model."""
    named = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    return build_anatomy(model.config, named, include, exclude)
