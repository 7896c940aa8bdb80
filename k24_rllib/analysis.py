"""Pictures and a markdown summary of what a trained agent network's masks learned (pure torch + matplotlib).

Everything takes a ``RecurrentAgent`` (no RLlib), so it works on a network from a checkpoint, from a test or from a
notebook. K-2:4 networks get per-layer maps of each mask's argmax pattern per group, agent-by-agent similarity
matrices, pattern usage and sparsity; Kaleidoscope networks get the mask-agreement matrix and sparsity; plain
networks (mask "none") get a summary saying there is nothing to picture. Figures are rendered by Agg through
matplotlib's ``Figure`` API (no pyplot, no display, no global backend switch).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from k24_rllib.models.agent import LAYER_NAMES, RecurrentAgent
from k24_rllib.sparsity.k24_linear import K24Linear


def pattern_labels(agent: RecurrentAgent) -> list[str]:
    """Kept in-group positions of each N:M pattern, e.g. "01" .. "23" for 2:4 (the pattern_k_prob order)."""
    patterns = agent.masked_layers()[0].patterns
    return ["".join(str(int(i)) for i in row.nonzero().flatten()) for row in patterns]


@torch.no_grad()
def pattern_choices(agent: RecurrentAgent) -> dict[str, torch.Tensor]:
    """Per K-2:4 layer, the argmax pattern index of every group: [n_masks, out, groups] (what acting uses)."""
    return {name: layer.pattern_logits().argmax(dim=-1) for name, layer in agent.named_masked_layers()}


def _pooled(per_layer: Iterable[torch.Tensor], end_dim: int = -1) -> torch.Tensor:
    """Per-layer tensors [n_masks, ...] -> [n_masks, N, ...]: axes 1..``end_dim`` flattened, all layers pooled
    side by side (``end_dim=-2`` keeps a trailing pattern axis)."""
    return torch.cat([t.flatten(1, end_dim) for t in per_layer], dim=1)


@torch.no_grad()
def pattern_agreement(agent: RecurrentAgent) -> torch.Tensor:
    """[n_masks, n_masks]: fraction of groups (all layers pooled) where masks i and j choose the same pattern."""
    choices = _pooled(pattern_choices(agent).values())
    return (choices[:, None] == choices[None]).float().mean(dim=-1)


@torch.no_grad()
def pattern_overlap(agent: RecurrentAgent) -> torch.Tensor:
    """[n_masks, n_masks]: mean over groups of sum_p pi_i[p] pi_j[p] at the layers' current temperature.

    The quantity the diversity loss minimises; off the diagonal its mean is ``pattern_mean_similarity``.
    """
    probs = _pooled((layer.pattern_probs() for layer in agent.masked_layers()), end_dim=-2)
    return torch.einsum("igp,jgp->ij", probs, probs) / probs.shape[1]


@torch.no_grad()
def pattern_usage(agent: RecurrentAgent) -> torch.Tensor:
    """[n_masks, n_patterns]: share of each mask's groups (all layers pooled) whose argmax is each pattern."""
    choices = _pooled(pattern_choices(agent).values())
    n_patterns = agent.masked_layers()[0].patterns.shape[0]
    return torch.nn.functional.one_hot(choices, n_patterns).float().mean(dim=1)


@torch.no_grad()
def mask_agreement(agent: RecurrentAgent) -> torch.Tensor:
    """[n_masks, n_masks]: fraction of weight positions (all layers pooled) where two binary masks agree."""
    masks = _pooled(layer.hard_masks() for layer in agent.masked_layers())
    return (masks[:, None] == masks[None]).float().mean(dim=-1)


CUT_OFF_BELOW = 0.05  # an input kept by fewer than this share of a layer's (mask, output row) pairs is cut off


@torch.no_grad()
def cut_off_inputs(agent: RecurrentAgent, below: float = CUT_OFF_BELOW) -> dict[str, float]:
    """Per masked layer, the share of its input features that fewer than ``below`` of the (mask, output row)
    pairs keep. Random 2:4 masks keep every input in about half the rows; a score that follows the inputs'
    activation EMA can prune a quiet input in nearly every row, which then cuts its unit off downstream."""
    shares = {}
    for name, layer in agent.named_masked_layers():
        kept = layer.hard_masks()[..., : layer.in_features].float().mean(dim=(0, 1))  # [in]
        shares[name] = float((kept < below).float().mean())
    return shares


def _pattern_cmap(n_patterns: int) -> ListedColormap:
    base = colormaps["tab10" if n_patterns <= 10 else "viridis"].resampled(n_patterns)
    return ListedColormap([base(k) for k in range(n_patterns)])


def plot_pattern_map(name: str, choice: torch.Tensor, labels: Sequence[str], mask_labels: Sequence[str]) -> Figure:
    """One layer: each mask's argmax pattern per (output row, input group), masks side by side."""
    n_masks, out, groups = choice.shape
    size = (1.0 + n_masks * max(2.0, groups / 8), 1.5 + max(2.0, out / 16))
    fig = Figure(figsize=size, layout="constrained")
    cmap = _pattern_cmap(len(labels))
    axes = fig.subplots(1, n_masks, squeeze=False)[0]
    for k, ax in enumerate(axes):
        ax.imshow(choice[k].numpy(), cmap=cmap, vmin=-0.5, vmax=len(labels) - 0.5, aspect="auto", interpolation="none")
        ax.set_title(mask_labels[k], fontsize=9)
        ax.set_xlabel("input group")
        ax.set_ylabel("output unit" if k == 0 else "")
    if len(labels) <= 10:
        handles = [Patch(color=cmap(k), label=f"keep {label}") for k, label in enumerate(labels)]
        fig.legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle(f"{name}: argmax pattern per group ({out} x {groups} groups per mask)", fontsize=10)
    return fig


def plot_matrices(matrices: dict[str, torch.Tensor], mask_labels: Sequence[str]) -> Figure:
    """Annotated agent-by-agent heatmaps (values in [0, 1]), one panel per matrix."""
    fig = Figure(figsize=(4.8 * len(matrices), 4.0), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    n = len(mask_labels)
    for ax, (title, matrix) in zip(axes, matrices.items()):
        image = ax.imshow(matrix.numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
        for i in range(n):
            for j in range(n):
                value = float(matrix[i, j])
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color="w" if value < 0.6 else "k")
        ax.set_xticks(range(n), mask_labels, rotation=30, fontsize=8)
        ax.set_yticks(range(n), mask_labels, fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.85)
    return fig


def plot_bars(
    values: torch.Tensor, groups: Sequence[str], mask_labels: Sequence[str], ylabel: str, title: str
) -> Figure:
    """Grouped bars: values [n_masks, n_groups], one bar per mask within each group."""
    n_masks, n_groups = values.shape
    fig = Figure(figsize=(max(5.0, 1.2 * n_groups + 2), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / n_masks
    for k in range(n_masks):
        ax.bar([g + (k - (n_masks - 1) / 2) * width for g in range(n_groups)], values[k].tolist(), width,
               label=mask_labels[k])
    ax.set_xticks(range(n_groups), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncols=min(n_masks, 4))
    return fig


def _md_grid(corner: str, columns: Sequence[str], rows: Sequence[str], values: torch.Tensor) -> list[str]:
    """Markdown table of values [len(rows), len(columns)] with labelled rows and columns."""
    lines = [f"| {corner} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(f"{float(v):.3f}" for v in row) + " |" for label, row in zip(rows, values)]
    return lines + [""]


def _sparsity_md(agent: RecurrentAgent, mask_labels: Sequence[str]) -> list[str]:
    per_layer, detail, overall = agent.get_sparsities()
    values = torch.tensor([per_layer, *detail.values()]).T  # [layers, 1 + n_masks]; no masks: [layers, 1]
    columns = ["all masks", *mask_labels[: len(detail)]]
    return ["## Sparsity (pruned fraction of each layer's weights)", ""] + _md_grid(
        "layer", columns, LAYER_NAMES, values
    ) + [f"Overall sparsity of the masked layers: {overall:.3f}", ""] + _cut_off_md(agent)


def _cut_off_md(agent: RecurrentAgent) -> list[str]:
    shares = cut_off_inputs(agent)
    if not shares:
        return []
    return [f"Share of each masked layer's inputs kept by fewer than {CUT_OFF_BELOW:.0%} of the rows of all masks "
            "(cut off): "
            + ", ".join(f"{name} {share:.2f}" for name, share in shares.items()) + ".", ""]


def _sparsity_figure(agent: RecurrentAgent, mask_labels: Sequence[str]) -> Figure:
    _, detail, overall = agent.get_sparsities()
    values = torch.tensor(list(detail.values()))
    return plot_bars(values, LAYER_NAMES, mask_labels, "pruned fraction", f"Sparsity per layer (masked layers overall {overall:.3f})")


def analyze(
    agent: RecurrentAgent, output_dir: Path, title: str = "Mask analysis", mask_labels: Sequence[str] | None = None
) -> dict[str, Path]:
    """Writes the PNGs and ``summary.md`` for ``agent`` into ``output_dir``; returns {name: path} of every file.

    ``mask_labels`` name the masks (default "mask k"; e.g. "agent k" or "unit type k").
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    labels = list(mask_labels or [f"mask {k}" for k in range(agent.n_masks)])
    figures: dict[str, Figure] = {}
    masks = f"{agent.n_masks} masks" if agent.masked_layers() else "no masks"
    md = [f"# {title}", "", f"Mask kind: `{agent.mask}` ({masks}), hidden {agent.hidden_dim}.", ""]
    layers = agent.masked_layers()
    if layers and all(isinstance(layer, K24Linear) for layer in layers):  # N:M patterns (k24 or a preset of it)
        md += _k24_section(agent, labels, figures)
    elif layers:  # any other binary masks, Kaleidoscope's among them
        agreement = mask_agreement(agent)
        figures["mask_agreement"] = plot_matrices({"binary mask agreement": agreement}, labels)
        md += ["## Mask agreement (fraction of weight positions where two masks agree)", "", "![](mask_agreement.png)",
               ""] + _md_grid("", labels, labels, agreement)
        md += [f"- {key}: {value:.4f}" for key, value in agent.get_pattern_stats().items()] + [""]
    else:
        md += ['This network has no masks (plain parameter-shared QMIX), so there are no patterns or '
               "mask similarities to picture; every layer is dense.", ""]
    if agent.masked_layers():
        figures["sparsity"] = _sparsity_figure(agent, labels)
        md += ["![](sparsity.png)", ""]
    md += _sparsity_md(agent, labels)

    paths = {}
    for name, fig in figures.items():
        paths[name] = output_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=110, bbox_inches="tight")
    paths["summary"] = output_dir / "summary.md"
    paths["summary"].write_text("\n".join(md))
    return paths


@torch.no_grad()
def shared_choice_share(agent: RecurrentAgent) -> torch.Tensor:
    """Per mask, the share of groups (all layers) whose argmax pattern is the one the shared |W| * EMA alone
    picks (``K24Linear.shared_choice``). Near 1 for every mask, the masks barely differ from it or each other."""
    same = [layer.pattern_logits().argmax(-1) == layer.shared_choice() for layer in agent.masked_layers()]
    return _pooled(same).float().mean(dim=1)


@torch.no_grad()
def acting_pattern_probability(agent: RecurrentAgent) -> torch.Tensor:
    """Per mask, the mean probability over groups (all layers) that a training draw at the stored temperature keeps
    the acting (argmax) pattern: how much of the network that greedy tests run the TD loss trains. 1/6 for
    uniform 2:4 distributions, 1 when the draws are the argmax."""
    kept = [layer.pattern_probs().max(dim=-1).values for layer in agent.masked_layers()]
    return _pooled(kept).mean(dim=1)


@torch.no_grad()
def flip_share(agent: RecurrentAgent, parameter: str, step: float, seed: int = 0) -> dict[str, float]:
    """Per masked K-2:4 layer, the share of argmax mask entries that change when every entry of ``parameter``
    ("weight" or "alpha") moves by ``step`` with a random sign: how sensitive the acting masks are to one update
    of that size (an Adam step moves each entry by about the learning rate). The agent is left as it was."""
    generator = torch.Generator().manual_seed(seed)
    shares = {}
    for name, layer in agent.named_masked_layers():
        if not isinstance(layer, K24Linear):
            continue
        tensor = getattr(layer, parameter)
        before, masks = tensor.clone(), layer.hard_masks()
        signs = torch.randint(0, 2, tensor.shape, generator=generator).to(tensor) * 2 - 1
        tensor.add_(step * signs)
        shares[name] = float((layer.hard_masks() != masks).float().mean())
        tensor.copy_(before)
    return shares


def _k24_section(agent: RecurrentAgent, labels: Sequence[str], figures: dict[str, Figure]) -> list[str]:
    """K-2:4 figures (added to ``figures``) and their markdown."""
    names = pattern_labels(agent)
    md = []
    for name, choice in pattern_choices(agent).items():
        figures[f"patterns_{name}"] = plot_pattern_map(name, choice, names, labels)
        md += [f"![](patterns_{name}.png)", ""]
    temperature = float(agent.masked_layers()[0].temperature)
    agreement, overlap = pattern_agreement(agent), pattern_overlap(agent)
    figures["similarity"] = plot_matrices(
        {"argmax pattern agreement": agreement, f"expected pattern overlap (tau={temperature:.3g})": overlap}, labels
    )
    shared = shared_choice_share(agent)
    usage = pattern_usage(agent)
    figures["pattern_usage"] = plot_bars(
        usage, [f"keep {n}" for n in names], labels, "share of groups", "Argmax pattern usage per mask"
    )
    md += ["## Pattern similarity", "", "![](similarity.png)", "",
           "Argmax agreement: fraction of groups where two masks choose the same pattern (1/6 by chance for 2:4).",
           ""] + _md_grid("", labels, labels, agreement)
    md += [f"Expected overlap sum_p pi_i pi_j at the stored temperature tau = {temperature:.3g} (what the "
           "diversity loss minimises; 1/6 for uniform 2:4 distributions).", ""] + _md_grid("", labels, labels, overlap)
    md += ["Share of groups where a mask picks the pattern that the shared |W| * EMA alone picks (alpha = 0): "
           + ", ".join(f"{label} {value:.2f}" for label, value in zip(labels, shared.tolist()))
           + " (1 = the mask adds nothing of its own).", ""]
    md += [f"Probability that a training draw at tau = {temperature:.3g} keeps the acting (argmax) pattern, mean "
           "over groups: " + ", ".join(f"{label} {value:.2f}"
                                       for label, value in zip(labels, acting_pattern_probability(agent).tolist()))
           + " (1/6 for uniform distributions).", ""]
    md += ["## Pattern usage (argmax)", "", "![](pattern_usage.png)", ""] + _md_grid("mask", names, labels, usage)
    stats = agent.get_pattern_stats()
    md += ["Logged statistics (`get_pattern_stats()`):", ""]
    md += [f"- {key}: {value:.4f}" for key, value in stats.items() if isinstance(value, float)] + [""]
    return md
