"""The default `find` (the embedded tiny-bert + sentiment, every default flag) gives the
masks it gave before the engine was restructured (typed record, arms, controls as plug-ins).

The checksums are of the masks' content (sha256 over each tensor's name and bit-packed bits
in anatomy order), recorded from the wave-1 engine (commit d98c8c8) before the refactor;
they change only when the defaults change on purpose (then re-record them and say so).
"""

from __future__ import annotations

import hashlib

import pytest
from conftest import run_cli

import ticketlens
from ticketlens.core.masks import pack

DEFAULT_TICKET = "bf8ce04ed111236006911ef7f78bf11b5c76935fece26cf869a840a1d0e42aec"
DEFAULT_RANDOM_MASK = "d4b585927bdda84631e39c8451570c24cee173cfa2a06faddb5115036fb51f55"


def content_checksum(names, masks) -> str:
    h = hashlib.sha256()
    for n in names:
        h.update(n.encode())
        h.update(pack(masks[n]).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden") / "default"
    proc = run_cli("find", "--quiet", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr
    return ticketlens.open_run(out)


def test_default_find_gives_the_recorded_masks(default_run):
    run = default_run
    assert run.ticket.index == 8 and run.ticket.sparsity == pytest.approx(0.8, abs=1e-5)
    assert content_checksum(run.anatomy.names, run.mask()) == DEFAULT_TICKET
    assert content_checksum(run.anatomy.names, run.control_mask("random_mask")) == \
        DEFAULT_RANDOM_MASK


def test_default_find_is_byte_reproducible(default_run, tmp_path):
    """The same command in another process (another hash seed) writes cmp-identical mask
    files (the safetensors header's metadata order used to differ between processes)."""
    again = tmp_path / "again"
    proc = run_cli("find", "--quiet", "--out", str(again), "--target-sparsity", "0.36",
                   "--no-controls", env={"PYTHONHASHSEED": "7"})
    assert proc.returncode == 0, proc.stderr
    for r in (0, 1, 2):  # the rounds both runs made: 0%, 20%, 36%
        rel = f"masks/round_{r:03d}.safetensors"
        assert (again / rel).read_bytes() == (default_run.path / rel).read_bytes(), rel
