"""CLI: instant help, and bad input -> one clear line, non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import QUICK_FIND, run_cli

from ticketlens.cli.main import main
from ticketlens.core import masks as M
from ticketlens.core.errors import RunFormatError


def test_help_does_not_import_torch():
    code = ("import sys; from ticketlens.cli.main import build_parser; build_parser(); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False False"


@pytest.mark.parametrize("command", [None, "find", "info", "compare", "import", "transfer",
                                     "attribute", "inspect", "report"])
def test_every_help_prints(command, capsys):
    """Every ``--help`` renders (argparse formats help with %: a bare "15%" broke it)."""
    from ticketlens.cli.main import COMMANDS

    assert command is None or command in COMMANDS
    with pytest.raises(SystemExit) as exc:
        main([*([command] if command else []), "--help"])
    assert exc.value.code == 0
    assert "usage: ticketlens" in capsys.readouterr().out


def _one_line_error(capsys, argv, match):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert match in err, err


def test_bad_inputs(tmp_path, capsys):
    csv = tmp_path / "nolabel.csv"
    csv.write_text("text,target\nhello,1\nbye,0\n")
    _one_line_error(capsys, ["find", "--task", str(csv), "--out", str(tmp_path / "a")],
                    "no label column 'label'")
    _one_line_error(capsys, ["find", "--target-sparsity", "1.5", "--out", str(tmp_path / "b")],
                    "--target-sparsity must be in (0, 1)")
    _one_line_error(capsys, ["find", "--target-sparsity", "0", "--out", str(tmp_path / "b")],
                    "--target-sparsity must be in (0, 1)")
    _one_line_error(capsys, ["find", "--model", "no-such-model-xyz", "--out",
                             str(tmp_path / "c")], "no-such-model-xyz")
    _one_line_error(capsys, ["info", str(tmp_path)], "not a ticketlens run")
    _one_line_error(capsys, ["info", str(tmp_path / "missing")], "no such run directory")
    notrun = tmp_path / "notrun"
    notrun.mkdir()
    (notrun / "file.txt").write_text("x")
    _one_line_error(capsys, ["find", "--out", str(notrun)], "not a ticketlens run")


def test_corrupt_and_foreign_masks_in_a_run(quick_run, tmp_path, capsys):
    import shutil

    import ticketlens

    run_dir = tmp_path / "run"
    shutil.copytree(quick_run, run_dir)
    mask_file = run_dir / "masks" / "round_001.safetensors"
    # a mask from another model: right names, wrong shapes
    M.save_masks(mask_file, {n: torch.ones(3, 3, dtype=torch.bool)
                             for n in ticketlens.open_run(run_dir).anatomy.names})
    with pytest.raises(RunFormatError, match=r"round_001\.safetensors: mask is for another "
                       r"model: .* has shape \(3, 3\)"):
        ticketlens.open_run(run_dir).mask(1)
    mask_file.write_bytes(mask_file.read_bytes()[:100])
    with pytest.raises(RunFormatError, match=r"round_001\.safetensors: not a readable "
                                             r"safetensors mask file"):
        ticketlens.open_run(run_dir).mask(1)
    (run_dir / "manifest.json").write_text("{ not json")
    _one_line_error(capsys, ["info", str(run_dir)], "unreadable manifest")


def test_find_cli_subprocess_exit_codes(tmp_path):
    bad = run_cli("find", "--rate", "2", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--rate" in bad.stderr
    assert "Traceback" not in bad.stderr
    ok = run_cli("find", "--quiet", *QUICK_FIND, "--target-sparsity", "0.5", "--no-controls",
                 "--out", str(tmp_path / "ok"))
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    # --no-controls: the required controls are missing, so the verdict cannot be reached
    assert ok.stdout.startswith("inconclusive: ") and ok.stdout.count("\n") == 1
    assert "required controls not run (random mask, random reinit)" in ok.stdout


def test_hub_ids_with_dots_are_not_taken_for_paths():
    """`Qwen/Qwen2.5-0.5B` is a hub id, not a missing folder: offline, the error says hub."""
    from ticketlens.core.errors import ModelError
    from ticketlens.models.load import load_pretrained

    for name in ("Qwen/Qwen2.5-0.5B", "gpt2.5-test"):
        with pytest.raises(ModelError, match="not in the local HF cache"):
            load_pretrained(name, num_labels=2, local_only=True)
    for name in ("./no/such/dir", "/tmp/no-such-model-dir.v2", "a/b/c"):
        with pytest.raises(ModelError, match="no such model folder"):
            load_pretrained(name, num_labels=2, local_only=True)
