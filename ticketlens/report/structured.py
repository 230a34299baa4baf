"""The structured-ticket part of a run's section: FFN neurons by state, the early-bird draws
(``find --early-bird``) and the sizes of the run's exports (``ticketlens export``, given to
``report --export DIR``). Drawn from analysis results and records; nothing computed here."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ticketlens.analysis.earlybird import early_bird
from ticketlens.core.errors import RunFormatError
from ticketlens.report import figures as F
from ticketlens.report import fmt


def e(x: Any) -> str:
    return html.escape(fmt.text(x), quote=True)


def read_exports(folders: Sequence[str | Path], runs: Sequence[Any]) -> dict[Path, list[dict]]:
    """``ticketlens.json`` of each export folder, by the run it was exported from (the run's
    resolved path). An export of a run not in the report is an error (one line)."""
    from ticketlens.exporter import EXPORT_FORMAT, META

    paths = {Path(r.path).resolve() for r in runs}
    out: dict[Path, list[dict]] = {}
    for folder in folders:
        meta_path = Path(folder) / META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise RunFormatError(f"{folder}: not written by `ticketlens export` (no readable "
                                 f"{META})") from None
        if not isinstance(meta, Mapping) or meta.get("format") != EXPORT_FORMAT:
            raise RunFormatError(f"{meta_path}: not a ticketlens export record")
        run = Path(str(meta.get("run", ""))).resolve()
        if run not in paths:
            raise RunFormatError(f"{folder}: exported from {meta.get('run')}, which is not "
                                 "among the runs of this report")
        out.setdefault(run, []).append({**meta, "folder": str(folder)})
    return out


def _export_table(exports: list[dict]) -> str:
    rows = []
    for x in exports:
        units, params, nbytes = x.get("units") or {}, x.get("parameters") or {}, \
            x.get("parameter_bytes") or {}
        heads, neurons = units.get("heads") or {}, units.get("neurons") or {}
        rows.append(
            f"<tr><td>{e(x['folder'])}</td><td>{e(x.get('round'))}</td>"
            f"<td>{fmt.pct(x.get('sparsity'))}</td><td>{'yes' if x.get('sliced') else 'no'}"
            f"</td><td>{fmt.num(heads.get('kept'), ',')} / {fmt.num(heads.get('total'), ',')}"
            f"</td><td>{fmt.num(neurons.get('kept'), ',')} / "
            f"{fmt.num(neurons.get('total'), ',')}</td>"
            f"<td>{fmt.num(params.get('exported'), ',')} / {fmt.num(params.get('dense'), ',')}"
            f"</td><td>{fmt.num(_mb(nbytes.get('exported')), '.2f')} / "
            f"{fmt.num(_mb(nbytes.get('dense')), '.2f')}</td>"
            f"<td>{fmt.num(_mb(x.get('file_bytes')), '.2f')}</td>"
            f"<td>{'yes' if x.get('stock_loadable') else 'no (<code>tl.load_pruned</code>)'}</td>"
            "</tr>")
    return ("<table class='exports'><tr><th>export</th><th>round</th><th>sparsity</th>"
            "<th>sliced</th><th>heads kept</th><th>neurons kept</th><th>parameters "
            "(exported / dense)</th><th>parameter MB (exported / dense)</th><th>file MB</th>"
            "<th>loads with <code>from_pretrained</code></th></tr>" + "".join(rows) + "</table>")


def _mb(n: Any) -> float | None:
    return None if n is None else n / 1e6  # a unit, for the table


def structured_html(run: Any, s: Any, doc: Any, i: int,
                    exports: Mapping[Path, list[dict]] | None = None) -> None:
    """Add the run's neuron states, early-bird draws and export sizes to ``doc``."""
    if F.has_lost_neurons(s):  # else one colour: the histogram's caption gives the counts
        doc.fig(F.neuron_states_drawn(s), f"neuron-states-{i}")
    bird = early_bird(run)
    if bird is not None:
        note = (f"Early-bird: the mask settled at step {bird.stopped_at} of "
                f"{bird.dense_steps} ({bird.steps_saved} dense steps saved, "
                f"{fmt.pct(bird.saved_fraction, 0)})" if bird.settled else
                f"Early-bird: the mask did not settle; dense trained all {bird.dense_steps} "
                "steps")
        doc.add(f"<p class='early-bird'>{e(note)}; a mask drawn every {e(bird.every)} steps, "
                f"stop when {e(bird.window)} distances in a row are below "
                f"{fmt.num(bird.epsilon, 'g')}.</p>")
        doc.fig(F.early_bird_drawn(bird), f"early-bird-{i}")
    mine = (exports or {}).get(Path(run.path).resolve())
    if mine:
        doc.add("<p>Exports (<code>ticketlens export</code>): sizes</p>" + _export_table(mine))
