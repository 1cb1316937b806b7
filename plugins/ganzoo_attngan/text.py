"""The text side of AttnGAN: vocabulary and tokenizer (shared with the datasets, which tokenize), the DAMSM text and
image encoders, and the DAMSM matching losses (Xu et al. 2018, section 3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# The datasets tokenize, and the core must not import plugins: the vocabulary lives in the core's data package.
from ganzoo.data.captions import Vocabulary, tokenize

__all__ = [
    "ImageEncoder",
    "TextEncoder",
    "Vocabulary",
    "damsm_loss",
    "sentence_scores",
    "tokenize",
    "word_mask",
    "word_scores",
]


def word_mask(lengths: Tensor, max_words: int) -> Tensor:
    """``bool (B, L)``: True at real words, False at padding."""
    return torch.arange(max_words, device=lengths.device)[None, :] < lengths[:, None]


class TextEncoder(nn.Module):
    """AttnGAN's RNN_ENCODER: embedding, dropout, a bidirectional LSTM. Word features are the per-step outputs of
    both directions ``(B, nef, L)`` (zero at padding); the sentence feature joins the two final hidden states."""

    def __init__(self, vocab_size: int, emb_dim: int = 300, nef: int = 256, dropout: float = 0.5):
        super().__init__()
        if nef % 2:
            raise ValueError(f"nef must be even (two LSTM directions), got {nef}")
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=Vocabulary.PAD)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.LSTM(emb_dim, nef // 2, batch_first=True, bidirectional=True)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)  # AttnGAN's init of the embedding

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        b, n = tokens.shape
        # Unknown ids (a vocabulary larger than the embedding) read as UNK rather than indexing out of range.
        tokens = torch.where(tokens < self.embed.num_embeddings, tokens, torch.full_like(tokens, Vocabulary.UNK))
        emb = self.drop(self.embed(tokens))
        # The LSTM always runs in fp32: cuDNN/oneDNN bf16 LSTMs are slow or missing, and it is tiny next to G/D.
        with torch.autocast(tokens.device.type, enabled=False):
            packed = pack_padded_sequence(emb.float(), lengths.cpu().clamp_min(1), True, enforce_sorted=False)
            out, (h, _) = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=n)
        words = out.transpose(1, 2).contiguous()
        sent = h.transpose(0, 1).reshape(b, -1)
        return words, sent


class ImageEncoder(nn.Module):
    """DAMSM's image encoder: a timm backbone (``features_only``) trained from scratch. A middle feature map gives
    the local region features ``(B, nef, h, w)`` (AttnGAN's Inception ``mixed_6e``), the last map average-pooled
    gives the global feature ``(B, nef)``, each through a linear projection to the common space."""

    def __init__(self, nef: int, channels: int = 3, backbone: str = "resnet18", width: int = 64, local_index: int = 2):
        super().__init__()
        import timm

        kw = {"channels": tuple(width * 2**i for i in range(4))} if backbone.startswith("resnet") else {}
        probe = timm.create_model(backbone, pretrained=False, features_only=True, in_chans=channels, **kw)
        last = len(probe.feature_info) - 1
        if not 0 <= local_index < last:
            raise ValueError(f"local_index must be in 0..{last - 1} for {backbone}, got {local_index}")
        del probe
        self.backbone = timm.create_model(
            backbone, pretrained=False, features_only=True, in_chans=channels, out_indices=(local_index, last), **kw
        )
        c_local, c_global = self.backbone.feature_info.channels()
        self.local_proj = nn.Conv2d(c_local, nef, 1, bias=False)
        self.global_proj = nn.Linear(c_global, nef)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        local, last = self.backbone(images)
        return self.local_proj(local), self.global_proj(last.mean((2, 3)))


def word_scores(regions: Tensor, words: Tensor, mask: Tensor, gamma1: float, gamma2: float) -> tuple[Tensor, Tensor]:
    """Word-level image-text matching scores R(Q_i, D_j) of every image i against every caption j, ``(B, B)``, and
    the attention of each caption's words over its own image's regions ``(B, L, h, w)``.

    Following the paper: ``s = e^T v``; normalised over the words of a caption for each region; each word attends
    over the regions with ``softmax(gamma1 * s)``, giving a region context ``c``; ``R(c, e)`` is the cosine; the
    caption-level score is ``log(sum_words exp(gamma2 R)) / gamma2``. Padding words take no part.
    """
    b, d, h, w = regions.shape
    v = regions.float().flatten(2)  # (B, D, N)
    e = words.float()  # (B, D, L)
    s = torch.einsum("idn,jdl->ijln", v, e)  # image i, caption j, word l, region n
    pad = ~mask[None, :, :, None]
    s = s.masked_fill(pad, float("-inf")).softmax(dim=2).masked_fill(pad, 0.0)
    alpha = (gamma1 * s).softmax(dim=3)
    context = torch.einsum("ijln,idn->ijld", alpha, v)
    cos = F.cosine_similarity(context, e.transpose(1, 2)[None], dim=3, eps=1e-8)  # (B_img, B_cap, L)
    cos = cos.masked_fill(~mask[None], float("-inf"))
    scores = torch.logsumexp(gamma2 * cos, dim=2) / gamma2
    idx = torch.arange(b, device=regions.device)
    own = alpha[idx, idx].reshape(b, -1, h, w)
    return scores, own


def sentence_scores(global_feats: Tensor, sent: Tensor) -> Tensor:
    """Cosine similarity of every image's global feature with every sentence, ``(B_img, B_cap)``."""
    return F.normalize(global_feats.float(), dim=1) @ F.normalize(sent.float(), dim=1).T


def _match_loss(scores: Tensor) -> Tensor:
    # -log P(D_i | Q_i) - log P(Q_i | D_i): cross-entropy over the batch in both directions (paper eqs. 10-12).
    target = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(scores, target) + F.cross_entropy(scores.T, target)


def damsm_loss(
    regions: Tensor,
    global_feats: Tensor,
    words: Tensor,
    sent: Tensor,
    mask: Tensor,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    gamma3: float = 10.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(word loss, sentence loss, word attention)``: the DAMSM loss is the sum of the two losses."""
    w_scores, attn = word_scores(regions, words, mask, gamma1, gamma2)
    w_loss = _match_loss(gamma3 * w_scores)
    s_loss = _match_loss(gamma3 * sentence_scores(global_feats, sent))
    return w_loss, s_loss, attn
