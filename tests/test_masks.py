"""Masks: bit packing, magnitude pruning against torch.nn.utils.prune, file validation,
byte-reproducible files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn.utils import prune

from ticketlens.core import masks as M
from ticketlens.core.errors import RunFormatError
from ticketlens.pruning import ops as P


def _layers(seed: int = 0) -> torch.nn.ModuleList:
    torch.manual_seed(seed)
    return torch.nn.ModuleList([torch.nn.Linear(13, 7), torch.nn.Linear(7, 5),
                                torch.nn.Linear(5, 11)])


@pytest.mark.parametrize("shape", [(1,), (7,), (8,), (3, 5), (64, 64), (2, 3, 5)])
def test_pack_roundtrip(shape):
    g = torch.Generator().manual_seed(1)
    m = torch.rand(shape, generator=g) > 0.5
    packed = M.pack(m)
    assert packed.nbytes == (m.numel() + 7) // 8  # 1 bit per weight, padded to a byte
    assert np.array_equal(M.unpack(packed, shape), m.numpy())


def test_global_magnitude_matches_torch_global_unstructured():
    """Reference: torch.nn.utils.prune.global_unstructured with L1Unstructured, 4 rounds."""
    layers = _layers()
    params = [(m, "weight") for m in layers]
    names = [f"l{i}" for i in range(len(layers))]
    ours = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in zip(names, layers)}
    for _ in range(4):
        weights = {n: m.weight.detach().clone() for n, m in zip(names, layers)}
        ours = P.magnitude_prune(weights, ours, 0.2, "global")
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.2)
        for n, m in zip(names, layers):
            assert torch.equal(ours[n], m.weight_mask.bool()), n
    kept, total = M.count_kept(ours)
    assert total - kept == sum(round(0.2 * k) for k in _remaining_counts(total, 4))


def _remaining_counts(total: int, rounds: int) -> list[int]:
    out, k = [], total
    for _ in range(rounds):
        out.append(k)
        k -= round(0.2 * k)
    return out


def test_per_tensor_magnitude_matches_torch_l1_unstructured():
    layers = _layers(3)
    ours = {f"l{i}": torch.ones_like(m.weight, dtype=torch.bool) for i, m in enumerate(layers)}
    for _ in range(3):
        weights = {f"l{i}": m.weight.detach().clone() for i, m in enumerate(layers)}
        ours = P.magnitude_prune(weights, ours, 0.3, "tensor")
        for m in layers:
            prune.l1_unstructured(m, "weight", amount=0.3)
        for i, m in enumerate(layers):
            assert torch.equal(ours[f"l{i}"], m.weight_mask.bool())


def test_prune_amount_lands_exactly_on_target():
    total, kept, rounds = 1000, 1000, 0
    while (amount := M.prune_amount_for_round(kept, total, 0.2, 0.8)) > 0:
        kept -= round(amount * kept)
        rounds += 1
    assert kept == 200  # 80% sparsity exactly
    assert rounds == 8  # 0.8**7 = 0.21 > 0.2, the 8th round is clipped


def test_random_masks_keep_per_tensor_counts():
    masks = {"a": torch.rand(30, 20) > 0.7, "b": torch.rand(50) > 0.2}
    rnd = P.random_masks_like(masks, torch.Generator().manual_seed(0))
    for n in masks:
        assert int(rnd[n].sum()) == int(masks[n].sum())
        assert not torch.equal(rnd[n], masks[n])


def test_save_load_and_size(tmp_path):
    g = torch.Generator().manual_seed(0)
    masks = {"x.weight": torch.rand(512, 512, generator=g) > 0.3,
             "y.weight": torch.rand(512, 2048, generator=g) > 0.8}
    path = tmp_path / "m.safetensors"
    size = M.save_masks(path, masks)
    n = sum(m.numel() for m in masks.values())
    assert size * 8 / n < 1.01  # bits per weight, header included
    back = M.load_masks(path, expected={k: tuple(v.shape) for k, v in masks.items()})
    assert all(np.array_equal(back[k], masks[k].numpy()) for k in masks)


def test_load_rejects_other_model_and_corruption(tmp_path):
    masks = {"x.weight": torch.ones(4, 4, dtype=torch.bool)}
    path = tmp_path / "m.safetensors"
    M.save_masks(path, masks)
    with pytest.raises(RunFormatError, match="another model"):
        M.load_masks(path, expected={"x.weight": (4, 5)})
    with pytest.raises(RunFormatError, match="another model"):
        M.load_masks(path, expected={"z.weight": (4, 4)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFormatError):
        M.load_masks(path)
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(RunFormatError):
        M.load_masks(path)


def test_read_packed_into_fills_slices_of_one_buffer_like_load_packed(tmp_path):
    """The overlap fast path reads each tensor into its slice of one buffer; the bytes are
    those of numpy.packbits (load_packed), the bytes around each slice are untouched, and a
    truncated file is one RunFormatError."""
    rng = np.random.default_rng(0)
    masks = {"a.weight": rng.random((7, 9)) < 0.5, "b.weight": rng.random((3, 64)) < 0.3}
    path = tmp_path / "m.safetensors"
    M.save_masks(path, masks)
    buf = np.full(64, 0xAB, dtype=np.uint8)
    out = {"a.weight": buf[1:9], "b.weight": buf[16:40]}  # ceil(63/8) = 8, 192/8 = 24
    M.read_packed_into(path, out, expected={k: v.shape for k, v in masks.items()})
    ref = M.load_packed(path)
    assert all(np.array_equal(out[k], ref[k]) for k in masks)
    assert all(np.array_equal(out[k], np.packbits(masks[k].reshape(-1))) for k in masks)
    assert buf[0] == buf[9] == buf[15] == buf[40] == 0xAB
    with pytest.raises(RunFormatError, match="another model"):
        M.read_packed_into(path, out, expected={"a.weight": (7, 9)})
    with pytest.raises(ValueError, match="sizes"):
        M.read_packed_into(path, {"a.weight": buf[:8]})
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(RunFormatError):
        M.read_packed_into(path, out)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1001, (1 << 24) + 5])
def test_popcount_of_packed_bytes_counts_every_bit(n):
    """The kept count every mask reader checks (8 bytes at a time, then the tail), against
    numpy.unpackbits, on sizes off the 8-byte words and a buffer not 8-byte aligned."""
    from ticketlens.core.run import _popcount

    packed = np.random.default_rng(n).integers(0, 256, n + 3, dtype=np.uint8)[3:]
    assert _popcount(packed) == int(np.unpackbits(packed).sum())


@pytest.mark.parametrize("scope", ["global", "tensor"])
def test_magnitude_like_matches_torch_prune_with_the_same_counts(scope):
    """Reference: torch.nn.utils.prune with an integer amount (global_unstructured for the
    whole set, l1_unstructured per tensor) pruning the same number of weights."""
    g = torch.Generator().manual_seed(3)
    layers = [torch.nn.Linear(20, 30), torch.nn.Linear(30, 10)]
    for layer in layers:
        layer.weight.data = torch.randn(layer.weight.shape, generator=g)
    weights = {f"l{i}": layer.weight.detach().clone() for i, layer in enumerate(layers)}
    like = P.random_masks_like({"l0": torch.rand(30, 20, generator=g) < 0.4,
                                "l1": torch.rand(10, 30, generator=g) < 0.7}, g)
    ours = P.magnitude_like(weights, like, scope)
    if scope == "global":
        kept, total = M.count_kept(like)
        prune.global_unstructured([(layer, "weight") for layer in layers],
                                  pruning_method=prune.L1Unstructured, amount=total - kept)
    else:
        for i, layer in enumerate(layers):
            prune.l1_unstructured(layer, "weight",
                                  amount=like[f"l{i}"].numel() - int(like[f"l{i}"].sum()))
    for i, layer in enumerate(layers):
        assert torch.equal(ours[f"l{i}"], layer.weight_mask.bool())
    assert M.count_kept(ours) == M.count_kept(like)


_WRITE = """
import sys, numpy as np
from ticketlens.core import masks as M
g = np.random.default_rng(0)
masks = {f"layer.{i}.weight": g.random((33, 17)) > 0.5 for i in (3, 1, 2)}
sys.stdout.buffer.write(M.mask_file_bytes(masks, round="4", control="x", extra="y"))
"""


def test_mask_files_are_byte_identical_across_processes():
    """safetensors.numpy.save writes metadata from a hash map: its bytes differed between
    processes. Ours are the same bytes whatever the hash seed (compared as bytes)."""
    outs = {subprocess.run([sys.executable, "-c", _WRITE], capture_output=True, check=True,
                           env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout
            for seed in (0, 1, 2, 3)}
    assert len(outs) == 1


def test_deterministic_writer_is_read_by_safetensors(tmp_path):
    """Reference: safetensors' own reader returns every tensor and the metadata we wrote."""
    from safetensors import safe_open

    from ticketlens.core.io import safetensors_bytes

    arrays = {"b": np.arange(10, dtype=np.uint8), "a": np.ones((3, 4), dtype=np.float32),
              "c": np.array([True, False, True])}
    path = tmp_path / "t.safetensors"
    path.write_bytes(safetensors_bytes(arrays, {"z": "1", "a": "2"}))
    with safe_open(str(path), framework="numpy") as fh:
        assert fh.metadata() == {"z": "1", "a": "2"}
        for k, v in arrays.items():
            assert np.array_equal(fh.get_tensor(k), v) and fh.get_tensor(k).dtype == v.dtype
