"""The team network's settings, declared once: the config's defaults and checks, the RLModule's build and the
docs all read this dataclass."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from k24_rllib.models.agent import LAYER_NAMES
from k24_rllib.models.mask_kinds import MASK_KINDS
from k24_rllib.models.mixers import MIXERS
from k24_rllib.sparsity.args import K24Args, KaleiArgs, check_types
from k24_rllib.sparsity.diversity import DiversityLoss

MASKS_PER = ("agent", "unit_type")


@dataclass(frozen=True)
class ModelSettings:
    """What ``K24QMixConfig.training()`` takes about the network (beside DQN's and the trainer's keywords)."""

    mask: str = "k24"  # a registered mask kind: "k24" (2:4 patterns), "kalei" (Kaleidoscope), "none" (QMIX)
    mixer: str = "qmix"  # "qmix" (monotonic hypernetwork mixer) or "vdn" (sum)
    hidden_dim: int = 64  # width of the agent network (GRU and fc layers)
    # which of fc1..fc4 carry masks; the others stay dense and shared by every agent (ignored with mask "none")
    masked_layers: tuple[str, ...] = LAYER_NAMES
    mixer_embed_dim: int = 32  # QMIX mixer embedding (pymarl: 32)
    hypernet_dim: int = 64  # QMIX hypernetwork hidden size (pymarl: 64)
    obs_agent_id: bool = True  # append a one-hot agent id to every agent's observation (pymarl's default)
    # append each agent's previous action, one-hot (zeros at an episode's first step): pymarl's obs_last_action
    obs_last_action: bool = False
    masks_per: str = "agent"  # one mask per "agent", or per "unit_type" (SMACv2; needs the unit-type bits)
    n_unit_types: int = 0  # unit types; filled by environment() from the env family when it knows them
    unit_type_slice: tuple[int, int] | None = None  # where each observation holds its one-hot type (likewise)
    K24_args: dict[str, Any] = field(default_factory=dict)  # K-2:4 settings (K24Args; unknown keys rejected)
    kalei_args: dict[str, Any] = field(default_factory=dict)  # Kaleidoscope settings (KaleiArgs)
    # replaces the mask kind's diversity loss: a DiversityLoss subclass, or its import path "package.module:Class"
    diversity_loss: type | str | None = None

    def __post_init__(self) -> None:
        check_types(self, str)
        choices = {"mask": tuple(MASK_KINDS), "mixer": MIXERS, "masks_per": MASKS_PER}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: choose one of {', '.join(valid)}")
        layers = self.masked_layers
        if not layers or len(set(layers)) < len(layers) or not set(layers) <= set(LAYER_NAMES):
            raise ValueError(f"masked_layers={layers!r} is invalid: name one or more of "
                             f"{', '.join(LAYER_NAMES)}, each once (a network without masks is mask='none')")
        for name in ("hidden_dim", "mixer_embed_dim", "hypernet_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: must be a positive integer")
        self.mask_args()
        self.diversity_loss_class()
        if self.masks_per == "unit_type" and (self.unit_type_slice is None or self.n_unit_types < 1):
            raise ValueError("masks_per='unit_type' needs the env's unit-type bits: use a SMACv2 scenario "
                             "(env 'smacv2') or set n_unit_types and unit_type_slice in training()")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ModelSettings:
        """The settings among ``values`` (a config's attributes or an RLModule's model_config; other keys are
        ignored, missing ones take their defaults)."""
        picked = {name: values[name] for name in cls.names() if name in values}
        for name in ("unit_type_slice", "masked_layers"):  # YAML, the CLI and JSON give lists
            if isinstance(picked.get(name), list):
                picked[name] = tuple(picked[name])
        if isinstance(picked.get("masked_layers"), str):  # --training.masked_layers=fc2,fc3
            picked["masked_layers"] = tuple(name.strip() for name in picked["masked_layers"].split(","))
        return cls(**picked)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names()}

    def mask_args(self) -> tuple[K24Args, KaleiArgs]:
        """``K24_args`` and ``kalei_args`` as validated settings objects."""
        return K24Args.from_dict(self.K24_args), KaleiArgs.from_dict(self.kalei_args)

    def diversity_loss_class(self) -> type[DiversityLoss] | None:
        """The ``diversity_loss`` class (imported when given as a path); None keeps the mask kind's own."""
        loss = self.diversity_loss
        if isinstance(loss, str):
            module, _, name = loss.partition(":")
            try:
                loss = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError, ValueError) as err:
                raise ValueError(f"diversity_loss={self.diversity_loss!r} is invalid: cannot import it ({err}); "
                                 "give 'package.module:Class'") from None
        if loss is not None and not (isinstance(loss, type) and issubclass(loss, DiversityLoss)):
            raise ValueError(f"diversity_loss={self.diversity_loss!r} is invalid: must be a DiversityLoss subclass")
        return loss

    @property
    def per_unit_type(self) -> bool:
        return self.masks_per == "unit_type"
