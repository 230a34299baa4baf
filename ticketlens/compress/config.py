"""The settings of ``ticketlens compress`` (typed, frozen; the CLI builds one)."""

from __future__ import annotations

from dataclasses import dataclass

from ticketlens.core.errors import ConfigError

SCHEMES = ("dynamic-int8", "int8", "int4")
GROUPS = (32, 64, 128)  # int4 group sizes
EMB_SCHEMES = ("int8", "int4")  # of the embedding matrices (word, position, token type)


@dataclass(frozen=True)
class CompressConfig:
    """``schemes``: the quantizations applied to dense and ticket (torch's dynamic int8 of
    every ``nn.Linear``; weight-only int8 per output channel; weight-only int4 per ``group``
    inputs). ``cell_scheme`` fills the table's quantize cells (auto: int8 when it is measured,
    else the first scheme). ``keep_dir``: write the variant
    files there and keep them ("" = a temporary folder, deleted after measuring)."""

    schemes: tuple[str, ...] = SCHEMES
    group: int = 64
    cell_scheme: str = "auto"  # auto: int8 when measured, else the first scheme
    fp16: bool = True  # also the ticket with float16 kept weights
    latency: bool = True
    latency_repeats: int = 10
    keep_dir: str = ""
    # the embedding matrices quantized too, each beside the weights of the same scheme
    # (int8 embeddings with int8 matrices, ...): one scale per row (emb_group 0) or group
    embeddings: tuple[str, ...] = EMB_SCHEMES
    emb_group: int = 0
    vocab: bool = True  # vocabulary trimming to the task's train + dev tokens
    sliced: bool = True  # tickets with whole dead heads / neurons: the sliced model too

    def __post_init__(self) -> None:
        unknown = [s for s in self.schemes if s not in SCHEMES]
        if unknown:
            raise ConfigError(f"unknown quantization scheme {unknown[0]!r} (choose from "
                              f"{', '.join(SCHEMES)})")
        if not self.schemes:
            raise ConfigError("--schemes needs at least one of " + ", ".join(SCHEMES))
        if self.group not in GROUPS:
            raise ConfigError(f"--group must be one of {', '.join(map(str, GROUPS))}, got "
                              f"{self.group}")
        if self.cell_scheme == "auto":
            object.__setattr__(self, "cell_scheme",
                               "int8" if "int8" in self.schemes else self.schemes[0])
        if self.cell_scheme not in self.schemes:
            raise ConfigError(f"--cell-scheme {self.cell_scheme!r} must be one of the "
                              f"--schemes ({', '.join(self.schemes)})")
        bad = [s for s in self.embeddings if s not in EMB_SCHEMES]
        if bad:
            raise ConfigError(f"unknown embedding scheme {bad[0]!r} (choose from "
                              f"{', '.join(EMB_SCHEMES)})")
        if self.emb_group not in (0, *GROUPS):
            raise ConfigError(f"--emb-group must be 0 (per row) or one of "
                              f"{', '.join(map(str, GROUPS))}, got {self.emb_group}")
        if self.latency_repeats < 1:
            raise ConfigError("--latency-repeats must be >= 1")

    def scheme_label(self, scheme: str) -> str:
        """``int4`` -> ``int4-g64`` (the group is part of what was measured)."""
        return f"int4-g{self.group}" if scheme == "int4" else scheme

    def emb_label(self, scheme: str) -> str:
        """``int8`` -> ``emb-int8`` (per row), ``emb-int4-g64`` (per group of 64)."""
        return f"emb-{scheme}" + (f"-g{self.emb_group}" if self.emb_group else "")
