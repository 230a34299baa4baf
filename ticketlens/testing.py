"""Helpers for tests and examples: tiny models of every family, built locally."""

from __future__ import annotations

from typing import Any

FAMILY_PRESETS = {"bert": "tiny-bert", "distilbert": "tiny-distilbert", "gpt2": "tiny-gpt2",
                  "llama": "tiny-llama"}


def tiny_model(family: str = "bert", *, objective: str = "classification", seed: int = 0,
               vocab_size: int = 100, num_labels: int = 2) -> Any:
    """A random-init tiny model of ``family`` in eval mode."""
    from ticketlens.models.load import build_preset

    loaded = build_preset(FAMILY_PRESETS[family], vocab_size=vocab_size, num_labels=num_labels,
                          pad_id=0, seed=seed, objective=objective)
    return loaded.model.eval()


def tiny_inputs(batch: int = 3, length: int = 7, vocab_size: int = 100, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (batch, length), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def induction_circuit(vocab: int = 64, *, rope_theta: float = 1e6) -> Any:
    """A hand-wired 2-layer attention-only Llama that runs Olsson et al.'s induction circuit
    on tokens ``0 .. vocab-1``: head L0H0 copies the previous token into its own subspace
    (rotary dimensions of high frequency, peaked at offset -1), head L1H0 attends from a
    token to the token after its earlier occurrence (query: the token; key: the copied
    previous token, in rotary dimensions slow enough to ignore position) and writes that
    token out, where the LM head reads it. L0H1, L1H1 and the MLPs are zero.

    The residual stream (``4 * vocab`` wide): token one-hot ``[0, V)``, a constant ``V``,
    previous token ``[V + 1, 2V + 1)``, output ``[2V + 1, 3V + 1)``; every position's vector
    has the same norm, so RMSNorm scales them all alike."""
    import math

    import torch
    import transformers as tf

    V, d = vocab, 128
    if d // 2 < V:
        raise ValueError(f"vocab must be at most {d // 2}")
    hidden = 4 * V
    tok, bias, prev, out = 0, V, V + 1, 2 * V + 1
    cfg = tf.LlamaConfig(vocab_size=V, hidden_size=hidden, intermediate_size=8,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         head_dim=d, max_position_embeddings=256, rms_norm_eps=1e-6,
                         tie_word_embeddings=False, rope_theta=rope_theta,
                         attention_bias=False, mlp_bias=False)
    model = tf.LlamaForCausalLM(cfg).eval()
    inv_freq = rope_theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    fast = range(8)  # rotary pairs (m, m + d/2) of the highest frequencies
    slow = [*range(d // 4, d // 2), *range(3 * d // 4, d)]  # the slowest pairs' dimensions
    # previous-token logits: sum_m cos(((i - j) - 1) theta_m), largest at j = i - 1; scale so
    # the nearest rival offset is ~20 nats below it
    offs = torch.arange(0, 256, dtype=torch.float64)
    fm = inv_freq[list(fast)]
    score = torch.cos((offs[:, None] - 1) * fm[None]).sum(-1)
    gap = float(score[1] - torch.cat([score[:1], score[2:]]).max())
    alpha = math.sqrt(20.0 * math.sqrt(d) / gap)
    beta = math.sqrt(20.0 * math.sqrt(d))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for m in model.modules():  # RMSNorm weights back to 1
            if type(m).__name__.endswith("RMSNorm"):
                m.weight.fill_(1.0)
        emb = model.model.embed_tokens.weight  # (V, hidden)
        emb[torch.arange(V), tok + torch.arange(V)] = 1.0
        emb[:, bias] = 1.0
        s0, s1 = math.sqrt(hidden / 2), math.sqrt(hidden / 3)  # RMSNorm's scale per layer
        a0, a1 = model.model.layers[0].self_attn, model.model.layers[1].self_attn
        for m in fast:
            th = float(inv_freq[m])
            a0.q_proj.weight[m, bias] = alpha / s0
            a0.k_proj.weight[m, bias] = alpha * math.cos(th) / s0
            a0.k_proj.weight[m + d // 2, bias] = alpha * math.sin(th) / s0
        for t in range(V):
            a0.v_proj.weight[t, tok + t] = 1.0 / s0
            a0.o_proj.weight[prev + t, t] = 1.0
            a1.q_proj.weight[slow[t], tok + t] = beta / s1
            a1.k_proj.weight[slow[t], prev + t] = beta / s1
            a1.v_proj.weight[t, tok + t] = 1.0 / s1
            a1.o_proj.weight[out + t, t] = 1.0
            model.lm_head.weight[t, out + t] = 4.0
    return model


def write_tiny_gguf(path: Any, *, seed: int = 0) -> Any:
    """Write a tiny Llama (2 layers, 4 query heads over 2 key/value heads, hidden 64) with a
    byte-level BPE tokenizer to ``path`` as llama.cpp writes GGUF files (fp32 tensors, Q and
    K rows permuted to llama.cpp's rotary layout), and return the HF model it holds."""
    import gguf
    import numpy as np
    import torch
    import transformers as tf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "Ġ i", "e r", "o n"]
    tokens = [*chars, *(m.replace(" ", "") for m in merges), "<|endoftext|>"]
    eos = len(tokens) - 1
    cfg = tf.LlamaConfig(vocab_size=len(tokens), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, rms_norm_eps=1e-6,
                         tie_word_embeddings=False, bos_token_id=eos, eos_token_id=eos)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.LlamaForCausalLM(cfg).eval()
    heads, kv, d = 4, 2, 16

    def permute(w: np.ndarray, n: int) -> np.ndarray:  # llama.cpp's convert_hf_to_gguf
        return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2) \
            .reshape(w.shape)

    names = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    parts = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("ticketlens-tiny-llama")
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_block_count(2)
    w.add_feed_forward_length(128)
    w.add_rope_dimension_count(d)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(tokens) - 1) + [gguf.TokenType.CONTROL])
    w.add_token_merges(merges)
    w.add_bos_token_id(eos)
    w.add_eos_token_id(eos)
    for name, p in model.state_dict().items():
        arr = p.detach().float().numpy()
        if name in names:
            out = names[name]
        else:
            layer, rest = name.removeprefix("model.layers.").split(".", 1)
            out = f"blk.{layer}.{parts[rest.removesuffix('.weight')]}.weight"
            if rest.startswith("self_attn.q_proj"):
                arr = permute(arr, heads)
            elif rest.startswith("self_attn.k_proj"):
                arr = permute(arr, kv)
        w.add_tensor(out, np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model


def train_induction_model(*, steps: int = 600, seed: int = 0, vocab: int = 64,
                          length: int = 64) -> Any:
    """A 2-layer attention-only Llama (hidden 128, 4 heads; the MLPs zero and frozen) trained
    on sequences of ``length`` tokens made of random prefixes (4-24 distinct tokens out of
    ``vocab``) each followed by its repeat, the setting where Olsson et al. 2022 see a
    previous-token head in layer 1 and induction heads in layer 2 form. Prefix lengths vary,
    so a fixed positional offset cannot stand in for the circuit. In eval mode."""
    import torch
    import transformers as tf

    cfg = tf.LlamaConfig(vocab_size=vocab, hidden_size=128, intermediate_size=8,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         head_dim=32, max_position_embeddings=128, tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.LlamaForCausalLM(cfg)
    for layer in model.model.layers:
        for p in layer.mlp.parameters():
            p.data.zero_()
            p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                            weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)

    def sequence() -> list[int]:
        out: list[int] = []
        while len(out) < length:
            t = int(torch.randint(4, 25, (1,), generator=g))
            prefix = torch.randperm(vocab, generator=g)[:t].tolist()
            out += prefix + prefix
        return out[:length]

    model.train()
    for _ in range(steps):
        ids = torch.tensor([sequence() for _ in range(64)])
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
