"""``ticketlens prune MODEL -o DIR``: one-shot Wanda / SparseGPT / magnitude of a Hugging Face
model folder, one decoder layer at a time (``ticketlens.pruning.stream``), so a model of a
few billion parameters fits beside its own size; ``--int4`` then writes it as ``compress``'s
int4 variant file (``ticketlens.compress.stream``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a Hugging Face model folder with safetensors weights "
                   "(Llama-style decoder layers: Llama, Mistral, Qwen2, ...)")
    p.add_argument("-o", "--out", required=True, help="the folder to write: the pruned model "
                   "(config + one shard per layer), masks.safetensors and oneshot.json")
    p.add_argument("--method", default="wanda", choices=("wanda", "sparsegpt", "magnitude"),
                   help="one-shot method (default: %(default)s)")
    p.add_argument("--sparsity", type=float, default=None, help="fraction pruned in every "
                   "matrix (default: 0.5, or the --pattern's)")
    p.add_argument("--pattern", default="unstructured", help="unstructured or N:M, e.g. 2:4 "
                   "(default: %(default)s)")
    p.add_argument("--calibration", default="", metavar="TEXT_FILE|random",
                   help="a UTF-8 text file tokenized with MODEL/tokenizer.json, from which "
                   "--samples windows of --tokens ids are drawn; 'random' draws uniform "
                   "random ids (for timing only). Required for wanda and sparsegpt")
    p.add_argument("--samples", type=int, default=32, help="calibration sequences "
                   "(default: %(default)s)")
    p.add_argument("--tokens", type=int, default=256, help="tokens per calibration sequence "
                   "(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="calibration sequences per "
                   "forward pass (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="draws the calibration windows "
                   "(default: %(default)s)")
    p.add_argument("--error", action="store_true", help="also measure each matrix's "
                   "reconstruction error (Wanda and magnitude then gather X X^T: slower)")
    p.add_argument("--int4", action="store_true", help="then write DIR/int4-gGROUP."
                   "safetensors: the pruned model as compress's int4 variant (mask bits + "
                   "kept weights)")
    p.add_argument("--group", type=int, default=None, help="with --int4: the group size, "
                   "32, 64 or 128 (default: 64)")
    p.add_argument("--emb", default="none", choices=("none", "int8", "int4"),
                   help="with --int4: the embedding matrices quantized too, one scale a row "
                   "(default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def _calibration(ns: argparse.Namespace) -> tuple[list, dict]:
    from ticketlens.core.errors import ConfigError
    from ticketlens.models.shards import read_config
    from ticketlens.pruning.stream import random_calibration, text_calibration

    if ns.method == "magnitude" and not ns.error:  # no data used: none recorded
        return [], {"kind": "none"}
    if ns.calibration == "random":
        vocab = int(read_config(ns.model).vocab_size)
        return random_calibration(vocab, ns.samples, ns.tokens, ns.seed, ns.batch_size)
    if not ns.calibration:
        raise ConfigError(f"--method {ns.method} needs --calibration (a text file, or "
                          "'random' for timing only)")
    text_path, tok_path = Path(ns.calibration), Path(ns.model) / "tokenizer.json"
    if not text_path.is_file():
        raise ConfigError(f"--calibration {text_path}: no such file")
    if not tok_path.is_file():
        raise ConfigError(f"{ns.model}: no tokenizer.json to tokenize --calibration with")
    from tokenizers import Tokenizer

    text = text_path.read_text(encoding="utf-8", errors="replace")
    ids = Tokenizer.from_file(str(tok_path)).encode(text, add_special_tokens=False).ids
    batches, record = text_calibration(ids, ns.samples, ns.tokens, ns.seed, ns.batch_size)
    return batches, {**record, "file": str(text_path)}


def run(ns: argparse.Namespace) -> int:
    from ticketlens.core.errors import ConfigError
    from ticketlens.pruning.patterns import parse_pattern
    from ticketlens.pruning.stream import oneshot_prune_folder

    pattern = parse_pattern(ns.pattern)
    if not ns.int4 and (ns.group is not None or ns.emb != "none"):
        raise ConfigError("--group and --emb choose the int4 file's layout: add --int4")
    ns.group = 64 if ns.group is None else ns.group
    if ns.int4:  # refused before the pruning, not after it
        from ticketlens.compress.stream import check_request

        check_request("int4", ns.group, None if ns.emb == "none" else ns.emb)
    sparsity = ns.sparsity if ns.sparsity is not None or pattern is not None else 0.5
    batches, cal = _calibration(ns)
    res = oneshot_prune_folder(ns.model, ns.out, batches, ns.method, sparsity, pattern,
                               measure_error=ns.error, record={"calibration": cal})
    out = {"prune": {k: v for k, v in res.to_dict().items() if k != "stats"}}
    if ns.int4:
        from ticketlens.compress.stream import compress_folder

        comp = compress_folder(ns.out, Path(ns.out) / f"int4-g{ns.group}.safetensors", "int4",
                               ns.group, embeddings=None if ns.emb == "none" else ns.emb)
        out["int4"] = comp.to_dict()
    if ns.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    p = out["prune"]
    print(f"wrote {p['output']}: {p['method']} {p['pattern']} at sparsity {p['sparsity']:g}, "
          f"{p['layers']} layers, {p['calibration_tokens']} calibration tokens, "
          f"{p['seconds']:.1f} s, peak memory {p['peak_memory_bytes'] / 2**30:.2f} GiB")
    if ns.int4:
        c = out["int4"]
        print(f"wrote {c['path']}: {c['bytes'] / 1e6:.1f} MB, {c['ratio']:.2f}x smaller than "
              f"fp32 ({c['prunable_ratio']:.2f}x over the pruned matrices), {c['seconds']:.1f} s")
    return 0
