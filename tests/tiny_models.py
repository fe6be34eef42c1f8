"""Tiny random models built on the spot (no Hub): a locally trained tokenizer plus a 2-layer Llama, or a 1-layer BERT
sequence classifier.

Random weights answer garbage, which is the point for unit tests of the plumbing; constrained decoding must still
produce only valid labels. head_dim is 64 because vLLM's CPU attention needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "[[ ## text ## ]] [[ ## category ## ]] [[ ## completed ## ]]",
    "Classify the text as one of the following categories: neg pos World Sports Business Sci/Tech",
    "Your input fields are: text. Your output fields are: category. All interactions will be structured",
    "Respond with the corresponding output fields, starting with the field and then ending with the marker",
    "a great movie, a bad film, boring plot, wonderful acting, the rock is destined to be a star",
]


def build_tiny_llama(folder: Path, *, seed: int = 0, max_position_embeddings: int = 2048) -> Path:
    """Write a tiny Llama (random weights) with a byte-level BPE tokenizer trained on CORPUS into ``folder``;
    ``max_position_embeddings``: its context window in tokens."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", bos_token="<|im_start|>", eos_token="<|im_end|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def favour_tokens(model: Any, favoured: set[int]) -> None:
    """Rewire a loaded tiny Llama (``build_tiny_llama``) in place so that the tokens ``favoured`` are the likeliest
    next tokens at every position, whatever the input: the right label of a scoring test, known by construction.

    Every token embedding gets +1 in dimension 0 and no layer writes to it, so the residual stream's dimension 0 is 1
    at every position; the final norm keeps only that dimension (positive after RMS normalization), and the output
    head maps it to a logit of 10 for the favoured tokens and 0 for every other token. Raises ValueError when
    ``favoured`` is empty."""
    import torch

    if not favoured:
        raise ValueError("favour_tokens: no token to favour")
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        for token in favoured:
            model.lm_head.weight[token, 0] = 10.0


def build_tiny_llama_favouring(folder: Path, labels: list[str], label: str, *, seed: int = 0) -> Path:
    """A tiny Llama (``build_tiny_llama``) saved to ``folder`` with the tokens of ``label`` that no other label of
    ``labels`` has made the likeliest everywhere (``favour_tokens``): for a backend that loads weights from disk
    (vLLM). Raises ValueError when ``label`` shares every token with the other labels."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_llama(folder, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = {name: set(tokenizer(name, add_special_tokens=False)["input_ids"]) for name in labels}
    others = {t for name, tokens in ids.items() if name != label for t in tokens}
    model = AutoModelForCausalLM.from_pretrained(folder)
    favour_tokens(model, ids[label] - others)
    model.save_pretrained(folder)
    return folder


def build_tiny_classifier(folder: Path, id2label: dict[int, str], *, seed: int = 0, max_length: int = 64) -> Path:
    """Write a tiny BERT sequence classifier (random weights, ``id2label`` as given) with a word-level tokenizer
    trained on CORPUS into ``folder``: what ``bench run --model clf:FOLDER`` loads."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    fast.model_max_length = max_length
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_length,
        pad_token_id=fast.pad_token_id,
        id2label=dict(id2label),
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder
