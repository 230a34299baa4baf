"""``ticketlens export``: a ticket as a Hugging Face model folder others can load.

::

    DIR/
      config.json, model.safetensors    save_pretrained of the masked (and sliced) model
      tokenizer.json, tokenizer_config.json   the run's tokenizer, for AutoTokenizer
      ticketlens.json                   run, round, sparsity, units kept per layer, sizes

The ticket round's trained weights times its mask are baked in. When whole heads or FFN
neurons are removable (:mod:`ticketlens.models.slice_plan`) the model is also *sliced*: those
units leave the matrices, their constant contributions move into the output biases, and the
outputs stay those of the masked model (checked by a forward pass at export). A sliced
model loads with :func:`load_pruned`; stock ``from_pretrained`` loads it too when every
layer keeps the same counts and the config can say so (always for the FFN width; head counts
only for Llama-style configs, which carry ``head_dim``; BERT, DistilBERT and GPT-2 derive
the head size from hidden / heads). Otherwise ``config.json`` keeps the dense sizes, so a
stock load fails loudly on the shapes instead of loading wrong weights.
"""

from ticketlens.exporter.load import load_pruned
from ticketlens.exporter.record import EXPORT_FORMAT, META, ExportResult
from ticketlens.exporter.write import export_run

__all__ = ["EXPORT_FORMAT", "META", "ExportResult", "export_run", "load_pruned"]
