"""Tiny random-init backbones with the real models' shapes of interfaces (tokens, configs, file layout), for
tests and smoke runs of the full pipeline (training, export, distributed) on a CPU in seconds.

Nothing here downloads anything: the tokenizers are byte-level BPEs trained on a few sentences with the
real models' special tokens, the weights are random. The directories have the layout of the real ones, so
the code paths that load a real SmolLM2 / Qwen2-VL / Qwen2.5-VL directory load these unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch

_CORPUS = [
    "a remote sensing image of a dense residential area with many buildings and green trees .",
    "an airport with several airplanes parked near the terminal and a long runway .",
    "Retrieve the remote sensing image or caption that matches this.",
    "Represent the given remote sensing image, image region, location and text.",
    "Identify the scene category of this remote sensing image. farmland forest river bridge port beach",
    "Location: latitude 52.1234, longitude -5.6789 (0,1000) 123456789 user system assistant",
    "You are a helpful assistant. Find the place on Earth that matches this. Answer the question.",
]

SMOL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]


def tiny_bpe_tokenizer(specials: list[str], vocab_size: int = 512, eos: str = "<|im_end|>", pad: str = "<|endoftext|>"):
    """A byte-level BPE (like SmolLM2's and Qwen2's) whose first ids are ``specials`` in order."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad, unk_token=None,
                                   additional_special_tokens=[s for s in specials if s not in (eos, pad)])


def write_tiny_smol(directory: str | Path, seed: int = 0, **overrides) -> Path:
    """A random-init SmolLM2-shaped Llama (GQA, tied embeddings, RoPE) + tokenizer, in the layout of the
    converted SmolLM2 cache directory (config.json, model.safetensors, tokenizer files)."""
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = tiny_bpe_tokenizer(SMOL_SPECIALS)
    cfg = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
               rope_parameters={"rope_theta": 100000.0, "rope_type": "default"}, tie_word_embeddings=True,
               bos_token_id=1, eos_token_id=2, pad_token_id=2, rms_norm_eps=1e-5)
    cfg.update(overrides)
    config = LlamaConfig(**cfg)
    config.architectures = ["LlamaModel"]
    torch.manual_seed(seed)
    model = LlamaModel(config)
    config.save_pretrained(directory)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "model.safetensors"))
    tok.save_pretrained(directory)
    return directory


def write_tiny_qwen2vl(directory: str | Path, variant: str = "qwen2-vl", seed: int = 0, hidden: int = 64,
                       layers: int = 2) -> Path:
    """A random-init Qwen2-VL (or Qwen2.5-VL) checkpoint directory: config.json with the real special
    token ids of this tokenizer and an ``mrope_section``, weights, tokenizer, and the PIL image processor
    config (patch 14, merge 2, temporal patch 2 as in the real models)."""
    from transformers import AutoModelForImageTextToText
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = tiny_bpe_tokenizer(QWEN_SPECIALS)
    ids = {s: tok.convert_tokens_to_ids(s) for s in QWEN_SPECIALS}
    head_dim = hidden // 4
    half = head_dim // 2
    mrope = [half - 2 * (half // 4), half // 4, half // 4]  # (temporal, height, width), sums to head_dim / 2
    text = dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": 1000000.0},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    if variant == "qwen2-vl":
        from transformers import Qwen2VLConfig as Config

        vision = dict(depth=1, embed_dim=32, hidden_size=hidden, num_heads=2, patch_size=14, spatial_merge_size=2,
                      temporal_patch_size=2)
    elif variant == "qwen2.5-vl":
        from transformers import Qwen2_5_VLConfig as Config

        vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                      fullatt_block_indexes=[0])
    else:
        raise ValueError(f"unknown variant {variant!r} (qwen2-vl or qwen2.5-vl)")
    config = Config(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                    video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                    vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=112 * 112).save_pretrained(directory)
    return directory
