"""Which layers of the teacher a depth-pruned student keeps (`student.layer_selection`).

Methods, each scored on calibration records taken from the training shards (the teacher's own prompts and answers):
    even             N evenly spaced layers, first and last included (no data needed)
    block_influence  keep the N layers that change their input most: 1 - cos(input, output) of each layer's hidden
                     states over the answer tokens (ShortGPT's block influence); one forward pass
    drop_one_kl      drop each layer alone and measure the full-vocabulary KL(teacher || teacher without it) on the
                     answers; keep the N whose removal costs most; L + 1 forward passes
    greedy_kl        remove one layer at a time, each time the one whose removal raises that KL least;
                     about (L + N) (L - N) / 2 passes of the layers after the removed one
    contiguous       remove the contiguous block of L - N layers whose removal raises that KL least (keeping layer 0
                     and the last layer); L - N passes

All of them run the teacher's own decoder layers on hidden states cached from one full forward pass, so a candidate
costs only the layers from the first changed one onwards.
"""

from __future__ import annotations

import torch

from distill.errors import DistillError

METHODS = ("even", "block_influence", "drop_one_kl", "greedy_kl", "contiguous")


def even_layers(n_total: int, n_keep: int) -> list[int]:
    """Indices round(i * (L - 1) / (N - 1)): evenly spaced, first and last included."""
    if not 1 <= n_keep <= n_total:
        raise DistillError(f"student.from_teacher_layers={n_keep}: the teacher has {n_total} layers")
    if n_keep == 1:
        return [0]
    return [round(i * (n_total - 1) / (n_keep - 1)) for i in range(n_keep)]


class LayerRunner:
    """Runs any subsequence of a model's decoder layers on a fixed calibration batch.

    One full forward pass records each layer's input hidden state and keyword arguments (attention mask, rotary
    embeddings: whatever this architecture passes), so the same layers can be called again in any order without
    knowing the architecture. `log_probs(keep)` gives the final log-probabilities at the answer positions.
    """

    def __init__(self, model, batch: dict):
        self.model = model
        self.decoder = model.get_decoder()
        self.layers = list(self.decoder.layers)
        self.norm = getattr(self.decoder, "norm", None)
        if self.norm is None:
            raise DistillError(f"{type(model).__name__}: layer selection needs a decoder with a final `norm`")
        self.head = model.get_output_embeddings()
        self.inputs: list[torch.Tensor] = [None] * len(self.layers)
        self.kwargs: list[dict] = [None] * len(self.layers)
        self.select = batch["response_mask"][:, 1:]  # hidden state t predicts token t + 1
        self._record(batch)
        self.full_log_probs = self.log_probs(list(range(len(self.layers))))

    def _record(self, batch: dict) -> None:
        def hook(index):
            def pre(module, args, kwargs):
                self.inputs[index] = args[0] if args else kwargs["hidden_states"]
                self.kwargs[index] = {k: v for k, v in kwargs.items() if k != "hidden_states"}
            return pre

        handles = [layer.register_forward_pre_hook(hook(i), with_kwargs=True) for i, layer in enumerate(self.layers)]
        try:
            with torch.no_grad():
                self.decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
        finally:
            for h in handles:
                h.remove()

    @torch.no_grad()
    def run(self, keep: list[int], start: int = 0, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """The hidden state after the kept layers keep[start:], entering with `hidden` (default: keep[start]'s
        recorded input, which is exact when every layer before it is kept)."""
        h = self.inputs[keep[start]] if hidden is None else hidden
        for i in keep[start:]:
            out = self.layers[i](h, **self.kwargs[i])
            h = out[0] if isinstance(out, tuple) else out
        return h

    @torch.no_grad()
    def log_probs(self, keep: list[int], start: int = 0, hidden: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(self.run(keep, start, hidden))[:, :-1][self.select]
        return torch.log_softmax(torch.nn.functional.linear(h, self.head.weight, self.head.bias).float(), dim=-1)

    def kl(self, log_q: torch.Tensor) -> float:
        """Mean full-vocabulary KL(full model || candidate) per answer token."""
        log_p = self.full_log_probs
        return float((log_p.exp() * (log_p - log_q)).sum(-1).mean())

    @torch.no_grad()
    def block_influence(self) -> list[float]:
        """1 - cos(input, output) of each layer, averaged over answer tokens."""
        scores = []
        for i in range(len(self.layers)):
            after = self.inputs[i + 1] if i + 1 < len(self.layers) else self.run([i], 0)
            a, b = self.inputs[i][:, :-1][self.select], after[:, :-1][self.select]
            scores.append(float(1 - torch.nn.functional.cosine_similarity(a, b, dim=-1).mean()))
        return scores


def drop_one_scores(runner: LayerRunner) -> list[float]:
    """KL to the full model when layer i alone is dropped: layer i's input goes straight to the layers after it."""
    n = len(runner.layers)
    return [runner.kl(runner.log_probs([j for j in range(n) if j != i], i, runner.inputs[i])) for i in range(n)]


def greedy_removal(runner: LayerRunner, n_keep: int) -> tuple[list[int], list[dict]]:
    """Remove layers one at a time, each time the one whose removal raises the KL least. Returns (kept, trace)."""
    keep = list(range(len(runner.layers)))
    trace = []
    while len(keep) > n_keep:
        # The hidden state entering each kept position under the current selection: removing position `pos` sends
        # it straight to the layers after it, so a candidate reruns only those.
        entering = [runner.inputs[keep[0]]]
        for pos in range(len(keep) - 1):
            entering.append(runner.run([keep[pos]], 0, entering[pos]))
        costs = [runner.kl(runner.log_probs(keep[:pos] + keep[pos + 1:], pos, entering[pos]))
                 for pos in range(len(keep))]
        best = min(range(len(keep)), key=costs.__getitem__)
        trace.append({"removed": keep[best], "kl": costs[best]})
        keep.pop(best)
    return keep, trace


def contiguous_removal(runner: LayerRunner, n_keep: int) -> tuple[list[int], list[float]]:
    """Remove the block of L - N consecutive layers (never the first or last) that raises the KL least."""
    n, gap = len(runner.layers), len(runner.layers) - n_keep
    costs = []
    for start in range(1, n - gap):
        keep = list(range(start)) + list(range(start + gap, n))
        costs.append(runner.kl(runner.log_probs(keep, start, runner.inputs[start])))
    best = 1 + min(range(len(costs)), key=costs.__getitem__)
    return list(range(best)) + list(range(best + gap, n)), costs


def select_layers(method: str, model, batch: dict | None, n_keep: int) -> tuple[list[int], dict]:
    """(kept layer indices, a record of how they were chosen: method, per-layer scores, the KL of the choice)."""
    n_total = len(model.get_decoder().layers)
    even_layers(n_total, n_keep)  # range check
    if method == "even":
        return even_layers(n_total, n_keep), {"method": "even"}
    runner = LayerRunner(model, batch)
    if method == "block_influence":
        scores = runner.block_influence()
        keep = sorted(sorted(range(n_total), key=lambda i: -scores[i])[:n_keep])
        record = {"method": method, "block_influence": scores}
    elif method == "drop_one_kl":
        scores = drop_one_scores(runner)
        keep = sorted(sorted(range(n_total), key=lambda i: -scores[i])[:n_keep])
        record = {"method": method, "drop_one_kl": scores}
    elif method == "greedy_kl":
        keep, trace = greedy_removal(runner, n_keep)
        record = {"method": method, "removal_order": trace}
    elif method == "contiguous":
        if n_keep < 2:
            raise DistillError("student.layer_selection=contiguous keeps the first and last layers: needs at least 2")
        keep, costs = contiguous_removal(runner, n_keep)
        record = {"method": method, "block_start_kl": costs}
    else:
        raise DistillError(f"student.layer_selection: {method!r} is not one of {', '.join(METHODS)}")
    record["calibration_kl"] = runner.kl(runner.log_probs(keep))
    return keep, record
