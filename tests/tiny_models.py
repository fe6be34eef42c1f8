"""Tiny random models built on the spot (no Hub): a locally trained tokenizer plus a 2-layer Llama, or a 1-layer BERT
sequence classifier.

Random weights answer garbage, which is the point for unit tests of the plumbing; constrained decoding must still
produce only valid labels. head_dim is 64 because vLLM's CPU attention needs it.
"""

from __future__ import annotations

import itertools
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


def build_tiny_llama(
    folder: Path,
    *,
    seed: int = 0,
    max_position_embeddings: int = 2048,
    corpus: list[str] | None = None,
    vocab_size: int = 400,
) -> Path:
    """Write a tiny Llama (random weights) with a byte-level BPE tokenizer of ``vocab_size`` tokens trained on
    ``corpus`` (default CORPUS) into ``folder``; ``max_position_embeddings``: its context window in tokens."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus or CORPUS, trainer)
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


def _answer(label: str) -> str:
    """The answer constrained generation writes for ``label`` (``ZeroShotBackend.label_completions``)."""
    from bench.backends.zero_shot import ZeroShotBackend

    backend = ZeroShotBackend("unused")
    backend.label_names = [label]
    return backend.label_completions()[0]


def build_cue_llama(
    folder: Path, labels: list[str], cue_answers: dict[str, dict[str, float]], *, floor: float = 1e-4
) -> Path:
    """A tiny Llama (``build_tiny_llama``, its tokenizer trained so that every label word and cue word is one token)
    whose weights make its answer to the kit's prompt follow ``cue_answers``: for a text holding the word ``cue``
    once, the answer ``[[ ## category ## ]]``, label, ``[[ ## completed ## ]]`` (``label_completions``) has label
    ``l`` with probability ``cue_answers[cue][l]`` (labels not named: ``floor``). The right label of every text is
    thus known by construction, and so is what each scoring rule and greedy decoding pick.

    How: the answers' tokens form a tree after their shared start; where answers branch (the last token of the
    shared start; ``good`` before ``good`` / ``good overall``) the cue decides. A branching token may recur later
    in the answers only where every answer has it alike (the end marker's newlines): its other successors then take
    a share of its probability that every answer pays alike, so the answers' ratios, and every rule's ranking of
    whole answers, are as designed (absolute probabilities are smaller). The model is a bigram over those tokens
    (each token's embedding is its own dimension, the final norm passes it, the output head gives its successors
    a logit of 40, every other token 0), plus the cue: layer 0's attention is uniform (zero queries), its values
    carry each cue word's own dimension, so the last position holds the cue's share of the tokens so far, and the
    output head turns that share into log ``P(child | branch)`` for the cue, calibrated on one prompt (texts of
    other lengths move it by a few per cent). Nothing else writes to the residual stream. Raises ValueError when a
    branching token recurs unevenly, or a cue word is not one token."""
    import math

    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from bench.prompts import build_messages

    answers = [_answer(label) for label in labels]
    cues = list(cue_answers)
    words = [*cues, *(f" {c}" for c in cues), *labels, *(f" {w}" for label in labels for w in label.split())]
    build_tiny_llama(folder, corpus=[*CORPUS, *answers * 20, *words * 20], vocab_size=600)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder)
    ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    shared = 0
    while shared < min(map(len, ids)) - 1 and len({a[shared] for a in ids}) == 1:
        shared += 1
    paths = [[*a[shared - 1 :], tokenizer.eos_token_id] for a in ids]  # from the branching root to the end
    successors: dict[int, set[int]] = {}
    for path in paths:
        for here, after in itertools.pairwise(path):
            successors.setdefault(here, set()).add(after)
    # branching nodes: (path prefix) -> children; their last token must identify them
    children: dict[tuple[int, ...], set[int]] = {}
    for path in paths:
        for k in range(1, len(path)):
            children.setdefault(tuple(path[:k]), set()).add(path[k])
    branches = {node: kids for node, kids in children.items() if len(kids) > 1}
    for node in branches:  # elsewhere, a branching token must be followed alike in every answer
        elsewhere = {
            tuple(after for k, (here, after) in enumerate(itertools.pairwise(p)) if here == node[-1] and k >= len(node))
            for p in paths
        }
        if len(elsewhere) > 1:
            raise ValueError(f"build_cue_llama: branching token {tokenizer.decode([node[-1]])!r} recurs unevenly")
    cue_tokens = {}
    for cue in cues:
        variants = {tuple(tokenizer(v, add_special_tokens=False)["input_ids"]) for v in (cue, f" {cue}")}
        if any(len(v) != 1 for v in variants):
            raise ValueError(f"build_cue_llama: cue {cue!r} is not one token")
        cue_tokens[cue] = [v[0] for v in variants]
    answer_tokens = sorted({t for path in paths for t in path})
    dim = {t: i for i, t in enumerate(answer_tokens)}
    cue_in = {cue: len(dim) + j for j, cue in enumerate(cues)}  # a cue token's embedding dimension
    cue_out = {cue: len(dim) + len(cues) + j for j, cue in enumerate(cues)}  # where layer 0 writes its share
    hidden = model.config.hidden_size
    if cue_out[cues[-1]] >= hidden:
        raise ValueError("build_cue_llama: too many answer tokens and cues for the hidden size")

    def shift(cue: str) -> dict[int, float]:
        """log P(child | branch) under ``cue``, per child token (the mass of the answers below each child)."""
        out: dict[int, float] = {}
        mass = {tuple(p): max(cue_answers[cue].get(label, 0.0), floor) for p, label in zip(paths, labels, strict=True)}
        for node, kids in branches.items():
            below = {k: sum(m for p, m in mass.items() if p[: len(node) + 1] == (*node, k)) for k in kids}
            total = sum(below.values())
            out.update({k: math.log(v / total) for k, v in below.items()})
        return out

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        embed = model.model.embed_tokens.weight
        for token, d in dim.items():
            embed[token, d] = 1.0
        for cue, tokens in cue_tokens.items():
            for token in tokens:
                embed[token, cue_in[cue]] = 1.0
        layer = model.model.layers[0]
        layer.input_layernorm.weight.fill_(1.0)
        for j, cue in enumerate(cues):  # zero queries: attention is the mean over the tokens so far
            layer.self_attn.v_proj.weight[j, cue_in[cue]] = 1.0
            layer.self_attn.o_proj.weight[cue_out[cue], j] = 1.0
        model.model.norm.weight.fill_(1.0)
        head = model.lm_head.weight
        scale = math.sqrt(hidden)  # a one-hot embedding after RMS normalization
        for token, after in successors.items():
            for successor in after:
                head[successor, dim[token]] = 40.0 / scale
        for cue in cues:
            for token, value in shift(cue).items():
                head[token, cue_out[cue]] = value
        # calibrate: the cue's share at the last position, after the final norm, on one prompt
        for cue in cues:
            conversation = build_messages(f"the movie was {cue} today", labels)
            prompt = tokenizer.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            state = model.model(input_ids=torch.tensor([list(prompt) + ids[0][:shared]])).last_hidden_state
            head[:, cue_out[cue]] /= float(state[0, -1, cue_out[cue]])
    model.save_pretrained(folder)
    return folder
