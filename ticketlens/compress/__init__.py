"""The other compression axes beside tickets: quantization and distillation, in bytes.

``compress(run)`` measures dense and ticket (and a distilled run's ticket) as float32,
float16, torch's dynamic int8 and weight-only int8 / int4, each written to a real file; the
8 cells of {prune, quantize, distill} with their Pareto front are saved as the run's
``compress.json`` (:func:`read_compress`). The measuring, with its heavy imports, is
:func:`ticketlens.compress.engine.compress`; this package's names are light.
"""

from ticketlens.compress.config import SCHEMES, CompressConfig
from ticketlens.compress.result import CELLS, CompressResult, pareto_flags, read_compress

__all__ = ["CELLS", "SCHEMES", "CompressConfig", "CompressResult", "pareto_flags",
           "read_compress"]
