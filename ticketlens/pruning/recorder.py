"""The record of a search as it goes: the run's manifest, and the files each round adds.

:class:`Recorder` holds the :class:`~ticketlens.core.record.Manifest` of the run being written
and is the one place that changes it: a round (its mask, its trained weights, its unit masks,
its :class:`~ticketlens.core.record.RoundRecord`), an arm (control), the extra records, the
status. Every :meth:`Recorder.save` writes the manifest atomically (``RunWriter``) and waits
for the other processes, so a killed run resumes from the last saved state. ``find``
(``pruning.imp``) and ``transfer`` (``pruning.transfer``) record through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ticketlens.core import masks as M
from ticketlens.core.anatomy import Anatomy
from ticketlens.core.record import ArmRecord, Manifest, RoundRecord
from ticketlens.core.run import RunWriter
from ticketlens.pruning import rules
from ticketlens.pruning.arms import ArmResult
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.structured import Units


class Recorder:
    """The manifest of the run in ``writer``'s directory, and the writes that change it.

    ``kinds``: the unit kinds a structured search prunes (``()`` for weights); ``metric`` and
    ``tolerance``: what decides which rounds' weights stay on disk (``rules.needed_weights``);
    ``acc``: the accelerator whose processes wait for each other after a save."""

    def __init__(self, writer: RunWriter, manifest: Manifest, *, acc: Any,
                 reporter: Reporter, anatomy: Anatomy, kinds: Sequence[str], metric: str,
                 tolerance: float):
        self.writer = writer
        self.manifest = manifest
        self.acc = acc
        self.reporter = reporter
        self.anatomy = anatomy
        self.kinds = tuple(kinds)
        self.metric = metric
        self.tolerance = tolerance

    def update(self, **changes: Any) -> Manifest:
        """Change fields of the manifest (written at the next :meth:`save`)."""
        self.manifest = dataclasses.replace(self.manifest, **changes)
        return self.manifest

    def add_extra(self, **extra: Any) -> Manifest:
        """Add records to the manifest's ``extra`` (written at the next :meth:`save`)."""
        self.manifest = self.manifest.with_extra(**extra)
        return self.manifest

    def save(self, manifest: Manifest | None = None) -> None:
        """Write the manifest (``manifest`` when given: it becomes the record)."""
        if manifest is not None:
            self.manifest = manifest
        self.writer.manifest(self.manifest)
        self.acc.wait_for_everyone()

    def round(self, r: int, masks: Mapping[str, torch.Tensor], state: Mapping[str, Any],
              res: ArmResult, amount: float, units: Units | None = None,
              extra: Mapping[str, Any] | None = None) -> RoundRecord:
        """Round ``r``: its mask, its trained weights ``state`` and (structured) its unit
        masks (``units``; every unit kept when None) written, the round added to the
        manifest, the weights no resume or ticket choice will read deleted, the manifest
        saved, one line reported."""
        rel = self.writer.mask(r, masks)
        self.writer.weights(r, state)
        unit_rel, unit_sparsity = None, None
        if self.kinds:
            units = units or Units.all(self.anatomy)
            if r:
                unit_rel = self.writer.units(r, units.head, units.neuron)
            unit_sparsity = units.sparsity(self.kinds)
        rec = RoundRecord(index=r, pruned_fraction_of_remaining=amount,
                          sparsity=M.sparsity(masks),
                          sparsity_per_tensor=M.sparsity_per_tensor(masks),
                          metrics=res.metrics, steps=res.steps, wall_time_s=res.wall_time_s,
                          mask=rel, units=unit_rel, unit_sparsity=unit_sparsity,
                          extra=dict(extra or {}))
        manifest = self.manifest.with_round(rec)
        self.writer.remove_weights([x.index for x in manifest.rounds], keep=rules.needed_weights(
            manifest.rounds, self.metric, self.tolerance))
        self.save(manifest)
        self.reporter.line(
            f"round {r:>2}  sparsity {rec.sparsity:6.1%}  {self.metric} "
            f"{res.metrics[self.metric]:.4f}  dev loss {res.metrics['loss']:.4f}  "
            f"{res.steps} steps  {res.wall_time_s:.1f}s")
        return rec

    def arm(self, name: str, rec: ArmRecord) -> None:
        """The arm (control) ``name`` added to the manifest, and the manifest saved."""
        self.save(self.manifest.with_arm(name, rec))
