"""LoRA / DoRA adapters on peft, one door for every architecture: one set of settings, ``get_peft_model`` to add
them, ``merge_and_unload`` to fold them into the weights they adapt.

Settings (a dict in a training config's ``lora`` or a Qwen2-VL config's ``extra.lora``)::

    {"r": 16, "alpha": 64, "dropout": 0.0, "dora": false, "target_modules": ["query", "value"]}

``target_modules`` are module-name suffixes of the adapted transformer (default: the backbone's own, e.g.
``query`` / ``value`` for MiniLM, ``q_proj`` / ``v_proj`` for SmolLM2, every linear layer of the language model
for Qwen2-VL). ``targets`` is the old name of ``target_modules``: still read, with a DeprecationWarning.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

from torch import nn

KEYS = ("r", "alpha", "dropout", "dora", "target_modules")
DEPRECATED_KEYS = {"targets": "target_modules"}


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 64
    dropout: float = 0.0
    dora: bool = False
    target_modules: tuple[str, ...] | None = None  # None: the adapted model's default

    @classmethod
    def of(cls, value: "LoraSettings | Mapping | None") -> "LoraSettings":
        """Settings from a config dict (the old key ``targets`` is read as ``target_modules``, with a warning)."""
        if isinstance(value, LoraSettings):
            return value
        d = dict(value or {})
        for old, new in DEPRECATED_KEYS.items():
            if old in d:
                warnings.warn(f"LoRA setting {old!r} is deprecated: call it {new!r}", DeprecationWarning, stacklevel=3)
                given = d.pop(old)
                if d.get(new) is not None and list(d[new]) != list(given):
                    raise ValueError(f"LoRA settings give both {old!r} and {new!r}, with different modules")
                d[new] = given
        unknown = sorted(set(d) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown LoRA setting(s) {unknown}; known: {list(KEYS)}")
        targets = d.get("target_modules")
        return cls(r=int(d.get("r", 16)), alpha=int(d.get("alpha", 64)), dropout=float(d.get("dropout", 0.0)),
                   dora=bool(d.get("dora", False)), target_modules=tuple(targets) if targets else None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules) if self.target_modules else None
        return d

    def peft_config(self, default_targets: Sequence[str], scope: str | None = None):
        """peft's ``LoraConfig``; ``scope`` (a regex over module names, e.g. ``.*language_model.*``) limits the
        adapted modules to those under it."""
        from peft import LoraConfig

        targets = list(self.target_modules or default_targets)
        target_modules = rf"{scope}\.({'|'.join(targets)})" if scope else targets
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, use_dora=self.dora,
                          target_modules=target_modules, bias="none")


def add_lora(module: nn.Module, settings: LoraSettings | Mapping, default_targets: Sequence[str],
             scope: str | None = None) -> nn.Module:
    """``module`` wrapped by peft (``get_peft_model``) with adapters as ``settings`` say; only the adapters train."""
    from peft import get_peft_model

    return get_peft_model(module, LoraSettings.of(settings).peft_config(default_targets, scope))


def is_adapted(module: nn.Module) -> bool:
    """Whether ``module`` is wrapped by peft."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(module, PeftModel)


def base_model(module: nn.Module) -> nn.Module:
    """The model under a peft wrapper (``module`` itself when it has none)."""
    return module.get_base_model() if is_adapted(module) else module


def merged(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its adapters folded into the weights (``merge_and_unload``): a plain model
    without peft modules, under the parameter names it had before adapters were added. ``module`` is unchanged."""
    out = copy.deepcopy(module)
    return out.merge_and_unload() if is_adapted(out) else out


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapter parameters in ``model``."""
    return [n for n, _ in model.named_parameters() if "lora_" in n]


def unwrapped_name(name: str) -> str:
    """A parameter name under a peft wrapper as the plain model names it (``...base_model.model.x.base_layer.w``
    -> ``...x.w``)."""
    return name.replace("base_model.model.", "", 1).replace(".base_layer.", ".")


def adapted_weights(module: nn.Module) -> list[str]:
    """Plain-model names of the weights that adapters of ``module`` modify (``encoder.layer.0...query.weight``)."""
    from peft.tuners.lora import LoraLayer

    return sorted(unwrapped_name(f"{name}.weight") for name, m in module.named_modules() if isinstance(m, LoraLayer))
