"""Sampling text from the language models: temperature sampling (temperature 0: the argmax)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.data.text import SPECIALS
from components.families.language.models import GPT, CharRNN


def next_token(logits: Tensor, temperature: float, generator: torch.Generator | None = None) -> Tensor:
    """(B, V) logits -> (B,) ids drawn from softmax(logits / temperature); temperature 0: argmax.
    The special tokens (pad, bos, eos, unk) are never drawn."""
    logits = logits.clone()
    logits[:, : len(SPECIALS)] = float("-inf")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


@torch.no_grad()
def sample(net: nn.Module, prompt: Tensor, length: int, temperature: float,
           generator: torch.Generator | None = None) -> list[int]:
    """``length`` token ids continuing ``prompt`` (1-D ids) from a character RNN or a GPT."""
    ids = prompt.view(1, -1)
    out: list[int] = []
    if isinstance(net, CharRNN):
        logits, state = net(ids)
        for _ in range(length):
            token = next_token(logits[:, -1], temperature, generator)
            out.append(int(token))
            logits, state = net(token.view(1, 1), state)
        return out
    if isinstance(net, GPT):
        for _ in range(length):
            token = next_token(net(ids[:, -net.block_size:])[:, -1], temperature, generator)
            out.append(int(token))
            ids = torch.cat([ids, token.view(1, 1)], dim=1)
        return out
    raise TypeError(f"cannot sample from {type(net).__name__}")
