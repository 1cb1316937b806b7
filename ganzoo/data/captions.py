"""Captioned image data for the ``text_to_image`` task: the vocabulary, the ``shapes-captions`` procedural scenes,
``mnist-captions:DIR`` (coloured, placed MNIST digits) and the ``captions:DIR`` folder format.

Items follow the task's batch schema ``{"image": uint8 C x H x W, "tokens": int64 (L,), "length": int64,
"caption": str}`` (``shapes-captions`` adds ``"attrs"``, the scene's attribute ids, for evaluation).

Token ids need a vocabulary, and a trained model must re-tokenize new captions exactly as its training data was
tokenized. ``DataRequest.options["vocab"]`` is the model's word list (a resumed run, a loaded model), used as it
is; without one the dataset fits its own vocabulary on the train split's captions (deterministically), and the
variant adopts it in ``prepare_data`` and saves it with the model.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ganzoo.data.base import BatchDataset, DataError, DataRequest, no_arg, path_arg
from ganzoo.data.files import list_images, load_image
from ganzoo.data.procedural import SHAPE_NAMES, _shape_sdf, check_split, counter_uniform, stream_key, wrap_indices

__all__ = [
    "COLOURS",
    "PLACES",
    "SHAPES",
    "SIZES",
    "CaptionFolderDataset",
    "MnistCaptionsDataset",
    "ShapesCaptionsDataset",
    "Vocabulary",
    "mnist_captions",
    "parse_caption",
    "scene_captions",
    "register_datasets",
    "tokenize",
]

_WORD = re.compile(r"\w+")


def tokenize(caption: str) -> list[str]:
    """Lower-cased runs of word characters (AttnGAN's ``RegexpTokenizer(r"\\w+")``); punctuation is dropped."""
    return _WORD.findall(caption.lower())


class Vocabulary:
    """Words <-> ids. Id 0 is padding, id 1 unknown words; the rest are the training words sorted by decreasing
    frequency, ties alphabetically, so the same captions always give the same ids.

    :param words: the full id -> word list, specials included (as :meth:`to_list` returns it); empty for a
        vocabulary still to be :meth:`fit`.
    """

    PAD, UNK = 0, 1
    SPECIALS = ("<pad>", "<unk>")

    def __init__(self, words: Sequence[str] = ()) -> None:
        self.load(words)

    def load(self, words: Sequence[str]) -> None:
        """Replace the contents in place (datasets holding this object see the change)."""
        words = list(words) or list(self.SPECIALS)
        if tuple(words[:2]) != self.SPECIALS:
            raise DataError(f"a vocabulary must start with {self.SPECIALS}, got {words[:2]}")
        if len(set(words)) != len(words):
            raise DataError("a vocabulary lists some word twice")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    @property
    def is_empty(self) -> bool:
        return len(self.words) <= len(self.SPECIALS)

    def fit(self, captions: Iterable[str], max_size: int | None = None) -> Vocabulary:
        """Fill from ``captions``, keeping the ``max_size - 2`` most frequent words when ``max_size`` is given."""
        counts = Counter(w for c in captions for w in tokenize(c))
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        ranked = [w for w in ranked if w not in self.SPECIALS]
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(self.SPECIALS))]
        self.load(list(self.SPECIALS) + ranked)
        return self

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    def to_list(self) -> list[str]:
        return list(self.words)

    def ids(self, caption: str) -> list[int]:
        return [self.index.get(w, self.UNK) for w in tokenize(caption)]

    def encode(self, caption: str, max_words: int) -> tuple[torch.Tensor, int]:
        """``(tokens (max_words,), length)``: the first ``max_words`` word ids, zero-padded. A caption without any
        word becomes one UNK, so every caption has a length >= 1 (an LSTM cannot read an empty sequence)."""
        ids = self.ids(caption)[:max_words] or [self.UNK]
        tokens = torch.zeros(max_words, dtype=torch.int64)
        tokens[: len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return tokens, len(ids)

    def encode_batch(self, captions: Sequence[str], max_words: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens (B, max_words), lengths (B,))``."""
        pairs = [self.encode(c, max_words) for c in captions]
        return torch.stack([t for t, _ in pairs]), torch.tensor([n for _, n in pairs], dtype=torch.int64)

    def decode(self, tokens: Sequence[int] | torch.Tensor, length: int | None = None) -> list[str]:
        ids = [int(t) for t in tokens][: length if length is not None else None]
        return [self.words[i] if 0 <= i < len(self.words) else self.SPECIALS[1] for i in ids if i != self.PAD]


# ------------------------------------------------------------------------------------------------ shapes-captions

COLOURS = ["red", "green", "blue", "yellow", "purple", "white"]
_RGB = torch.tensor(
    [[230, 40, 40], [40, 190, 60], [50, 90, 240], [240, 220, 40], [165, 60, 215], [235, 235, 235]],
    dtype=torch.float32,
)
SHAPES = ["circle", "square", "triangle", "cross"]
_SHAPE_KIND = [SHAPE_NAMES.index(s) for s in SHAPES]  # rendered by procedural.py's signed distance functions
SIZES = ["small", "large"]
PLACES = ["left", "right", "top", "bottom"]
_OPPOSITE = [1, 0, 3, 2]
_PLACE_PHRASE = ["on the left", "on the right", "at the top", "at the bottom"]
_RELATION = ["left of", "right of", "above", "below"]  # "a REL b" where a is at PLACES[i] and b opposite
_RADIUS = [0.12, 0.19]  # shape scale as a fraction of the side; the shape fits in 1.2x this radius
ATTR_NAMES = ["count", "colour_a", "shape_a", "size_a", "place_a", "colour_b", "shape_b", "size_b", "place_b"]
# Classes per attribute; "count" (1 or 2) is read as class count - 1 and absent attributes (-1) are ignored.
ATTR_CLASSES = [
    2,
    len(COLOURS),
    len(SHAPES),
    len(SIZES),
    len(PLACES),
    len(COLOURS),
    len(SHAPES),
    len(SIZES),
    len(PLACES),
]
N_TEMPLATES = 4


def _phrase(colour: int, shape: int, size: int) -> str:
    return f"a {SIZES[size]} {COLOURS[colour]} {SHAPES[shape]}"


def scene_captions(attrs: Sequence[int]) -> list[str]:
    """The :data:`N_TEMPLATES` phrasings of a scene. Every phrasing names every attribute, and the same template
    applied to scenes differing in one attribute gives captions differing in one word."""
    count, ca, sa, za, pa, cb, sb, zb, pb = (int(a) for a in attrs)
    a = _phrase(ca, sa, za)
    if count == 1:
        return [
            f"{a} {_PLACE_PHRASE[pa]}",
            f"there is {a} {_PLACE_PHRASE[pa]}",
            f"{_PLACE_PHRASE[pa]} is {a}",
            f"{a} placed {_PLACE_PHRASE[pa]} of the picture",
        ]
    b = _phrase(cb, sb, zb)
    return [
        f"{a} {_RELATION[pa]} {b}",
        f"{b} {_RELATION[pb]} {a}",
        f"there is {a} {_RELATION[pa]} {b}",
        f"{a} and {b} , the {COLOURS[ca]} one {_PLACE_PHRASE[pa]}",
    ]


@functools.cache
def _caption_index() -> dict[tuple[str, ...], tuple[int, ...]]:
    """Tokenized phrasing -> scene attributes, over every scene and template (about 16k phrasings)."""
    scenes: list[tuple[int, ...]] = []
    for c, s, z, p in itertools.product(range(len(COLOURS)), range(len(SHAPES)), range(len(SIZES)), range(len(PLACES))):
        scenes.append((1, c, s, z, p, -1, -1, -1, -1))
    for ca, cb, sa, sb, za, zb, pa in itertools.product(
        range(len(COLOURS)), range(len(COLOURS)), *[range(len(SHAPES))] * 2, *[range(len(SIZES))] * 2, (0, 2)
    ):
        if ca != cb:
            scenes.append((2, ca, sa, za, pa, cb, sb, zb, _OPPOSITE[pa]))
    index: dict[tuple[str, ...], tuple[int, ...]] = {}
    for attrs in scenes:
        for caption in scene_captions(attrs):
            key = tuple(tokenize(caption))
            # Every phrasing names every attribute, so no two scenes may share one.
            assert index.setdefault(key, attrs) == attrs, caption
    return index


def parse_caption(caption: str) -> list[int] | None:
    """The scene attributes (as :data:`ATTR_NAMES`, -1 for an absent second shape) a ``shapes-captions`` phrasing
    states, or ``None`` for a sentence that is none of :func:`scene_captions`' phrasings of any scene.

    Case and punctuation do not matter (both sides go through :func:`tokenize`).

    :param caption: a sentence.
    :returns: 9 attribute ids, or ``None``.
    """
    attrs = _caption_index().get(tuple(tokenize(caption)))
    return list(attrs) if attrs is not None else None


class ShapesCaptionsDataset(BatchDataset):
    """Scenes of one or two coloured shapes with sizes and positions, each with :data:`N_TEMPLATES` captions.

    Item ``k``: the scene of ``k % len`` (its attributes fixed per item), a small jitter of placement and rotation
    drawn from ``k`` itself, and one of the scene's phrasings, also chosen by ``k`` so every epoch reads new ones.
    ``"attrs"`` is ``int64 (9,)`` (see :data:`ATTR_NAMES`): shape count, then colour/shape/size/place of object
    ``a`` and of object ``b`` (-1 when absent). With two shapes ``a`` is the one on the left or at the top, so the
    attributes are a function of the image (captions mention either first).

    :param vocab: tokenizes the captions; an empty one is filled from the train split's captions.
    :param max_words: caption length in tokens (longer captions are truncated, shorter ones padded).
    """

    EPOCH_SIZES = {"train": 10_000, "val": 2_000, "test": 2_000}
    attr_names = ATTR_NAMES
    attr_classes = ATTR_CLASSES

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        split: str = "train",
        seed: int = 0,
        vocab: Vocabulary | None = None,
        max_words: int = 18,
        vocab_size: int | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise DataError(f"shapes-captions: unsupported channels {channels}; valid: 1 (grayscale), 3 (colour)")
        if not isinstance(image_size, int) or image_size < 8:
            raise DataError(f"shapes-captions: unsupported image_size {image_size!r}; valid: an integer >= 8")
        if max_words < 1:
            raise DataError(f"shapes-captions: max_words must be >= 1, got {max_words}")
        self.image_size, self.channels, self.split, self.seed = image_size, channels, check_split(split), seed
        self.max_words = max_words
        self._look_key = stream_key("shapes-captions/look", seed, split)
        self._phrase_key = stream_key("shapes-captions/phrase", seed, split)
        self.attrs = self.scene_attrs(seed, split, self.EPOCH_SIZES[split])
        self.vocab = vocab if vocab is not None else Vocabulary()
        if self.vocab.is_empty:
            # Always the train split's words, so every split of one seed shares one vocabulary.
            train = self.attrs if split == "train" else self.scene_attrs(seed, "train", self.EPOCH_SIZES["train"])
            self.vocab.fit((c for a in train.tolist() for c in scene_captions(a)), vocab_size)
        side = torch.arange(image_size, dtype=torch.float32) + 0.5
        self._side = side

    @staticmethod
    def scene_attrs(seed: int, split: str, n: int) -> torch.Tensor:
        """``int64 (n, 9)`` attributes of the first ``n`` scenes of a split (a pure function of its arguments)."""
        u = counter_uniform(stream_key("shapes-captions/scene", seed, split), range(n), 9)
        count = 1 + (u[:, 0] < 0.5)
        ca = (u[:, 1] * len(COLOURS)).astype(np.int64)
        # The second colour differs from the first, so "the red one" always names one shape.
        cb = (ca + 1 + (u[:, 5] * (len(COLOURS) - 1)).astype(np.int64)) % len(COLOURS)
        sa, sb = ((u[:, i] * len(SHAPES)).astype(np.int64) for i in (2, 6))
        za, zb = ((u[:, i] * len(SIZES)).astype(np.int64) for i in (3, 7))
        one_place = (u[:, 4] * len(PLACES)).astype(np.int64)
        two_place = 2 * (u[:, 8] < 0.5)  # left (0) or top (2): object a is the first in reading order
        pa = np.where(count == 1, one_place, two_place)
        pb = np.array(_OPPOSITE)[pa]
        two = count == 2
        cols = [count, ca, sa, za, pa] + [np.where(two, x, -1) for x in (cb, sb, zb, pb)]
        return torch.from_numpy(np.stack(cols, 1).astype(np.int64))

    def __len__(self) -> int:
        return len(self.attrs)

    def captions_of(self, index: int) -> list[str]:
        return scene_captions(self.attrs[index % len(self)].tolist())

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor | str]]:
        raw, items = wrap_indices(indices, len(self))
        if not raw:
            return []
        attrs = self.attrs[items]
        images = self.render(attrs, counter_uniform(self._look_key, raw, 6))
        which = (counter_uniform(self._phrase_key, raw, 1)[:, 0] * N_TEMPLATES).astype(np.int64)
        out = []
        for i in range(len(raw)):
            caption = scene_captions(attrs[i].tolist())[which[i]]
            tokens, length = self.vocab.encode(caption, self.max_words)
            out.append(
                {
                    "image": images[i],
                    "tokens": tokens,
                    "length": torch.tensor(length, dtype=torch.int64),
                    "caption": caption,
                    "attrs": attrs[i].clone(),
                }
            )
        return out

    def render(self, attrs: torch.Tensor, u: np.ndarray) -> torch.Tensor:
        """Render scenes ``attrs (N, 9)`` with jitter from 6 uniforms each; ``uint8 (N, C, S, S)``."""
        n, size = len(attrs), self.image_size
        jit = torch.from_numpy(u).float() - 0.5
        canvas = torch.empty(n, 3, size, size)
        # A dark, slightly graded background so every colour (white included) stands out.
        ramp = (self._side / size - 0.5)[None, :] * 16
        canvas[:] = 28 + ramp[:, None, :]
        for obj, base in (("a", 1), ("b", 5)):
            colour, shape, sz, place = (attrs[:, base + j] for j in range(4))
            present = colour >= 0
            if not present.any():
                continue
            idx = present.nonzero()[:, 0]
            two = attrs[idx, 0] == 2
            # Centre of the named half; two shapes sit a little further apart so large ones do not overlap.
            off = torch.where(two, torch.tensor(0.25), torch.tensor(0.22))
            p = place[idx]
            cx = 0.5 + torch.where(p == 0, -off, torch.where(p == 1, off, torch.zeros_like(off)))
            cy = 0.5 + torch.where(p == 2, -off, torch.where(p == 3, off, torch.zeros_like(off)))
            j = 0 if obj == "a" else 3
            cx = (cx + 0.06 * jit[idx, j]) * size
            cy = (cy + 0.06 * jit[idx, j + 1]) * size
            radius = torch.tensor(_RADIUS)[sz[idx]] * size
            angle = jit[idx, j + 2] * (math.pi * 30 / 180)
            cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
            gx = (self._side[None, :] - cx[:, None])[:, None, :]
            gy = (self._side[None, :] - cy[:, None])[:, :, None]
            u_rot, v_rot = cos * gx + sin * gy, cos * gy - sin * gx
            cover = torch.empty(len(idx), size, size)
            kinds = shape[idx]
            for k in kinds.unique().tolist():
                m = kinds == k
                sdf = _shape_sdf(_SHAPE_KIND[k], u_rot[m], v_rot[m], radius[m, None, None])
                cover[m] = (0.5 - sdf).clamp(0, 1)
            rgb = _RGB[colour[idx]][:, :, None, None]
            canvas[idx] = torch.lerp(canvas[idx], rgb.expand(-1, -1, size, size), cover[:, None])
        if self.channels == 1:
            canvas = (canvas * torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
        return canvas.add_(0.5).clamp_(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------------------------------- mnist-captions

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MNIST_ATTR_NAMES = ["digit", "colour", "size", "place"]
MNIST_ATTR_CLASSES = [10, len(COLOURS), len(SIZES), len(PLACES)]
_DIGIT_SIDE = [0.5, 0.78]  # digit box side as a fraction of the image side, small and large


def mnist_captions(attrs: Sequence[int]) -> list[str]:
    """The phrasings of an MNIST scene ``(digit, colour, size, place)``: "a large red seven on the left"."""
    d, c, z, p = (int(a) for a in attrs)
    a = f"a {SIZES[z]} {COLOURS[c]} {DIGIT_WORDS[d]}"
    return [f"{a} {_PLACE_PHRASE[p]}", f"there is {a} {_PLACE_PHRASE[p]}", f"{_PLACE_PHRASE[p]} is {a}"]


class MnistCaptionsDataset(BatchDataset):
    """MNIST digits coloured, sized and placed on a dark canvas, captioned from their attributes.

    Item ``k``: digit image ``k % len`` with its colour, size and place fixed per item (``"attrs"`` = ``int64
    (4,)``: digit, colour, size, place ids), a small placement jitter and the phrasing drawn from ``k``.
    """

    attr_names = MNIST_ATTR_NAMES
    attr_classes = MNIST_ATTR_CLASSES

    def __init__(
        self,
        root: str | os.PathLike,
        image_size: int = 64,
        channels: int = 3,
        split: str = "train",
        seed: int = 0,
        vocab: Vocabulary | None = None,
        max_words: int = 18,
        vocab_size: int | None = None,
    ) -> None:
        from ganzoo.data.files import MnistDataset

        if channels not in (1, 3):
            raise DataError(f"mnist-captions: unsupported channels {channels}; valid: 1 (grayscale), 3 (colour)")
        if not isinstance(image_size, int) or image_size < 16:
            raise DataError(f"mnist-captions: unsupported image_size {image_size!r}; valid: an integer >= 16")
        self.image_size, self.channels, self.split, self.max_words = image_size, channels, check_split(split), max_words
        self.mnist = MnistDataset(root, split, 28, 1)
        n = len(self.mnist)
        u = counter_uniform(stream_key("mnist-captions/scene", seed, split), range(n), 3)
        cols = [self.mnist.labels] + [
            torch.from_numpy((u[:, i] * k).astype(np.int64)) for i, k in enumerate(MNIST_ATTR_CLASSES[1:])
        ]
        self.attrs = torch.stack(cols, 1)
        self._look_key = stream_key("mnist-captions/look", seed, split)
        self._phrase_key = stream_key("mnist-captions/phrase", seed, split)
        self.vocab = vocab if vocab is not None else Vocabulary()
        if self.vocab.is_empty:
            if split == "train":
                self.vocab.fit((c for a in self.attrs.tolist() for c in mnist_captions(a)), vocab_size)
            else:  # every split of one seed shares the train split's vocabulary
                train = MnistCaptionsDataset(root, image_size, channels, "train", seed, None, max_words, vocab_size)
                self.vocab.load(train.vocab.to_list())

    def __len__(self) -> int:
        return len(self.attrs)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor | str]]:
        raw, items = wrap_indices(indices, len(self))
        if not raw:
            return []
        attrs = self.attrs[items]
        size = self.image_size
        jit = torch.from_numpy(counter_uniform(self._look_key, raw, 2)).float() - 0.5
        which = (counter_uniform(self._phrase_key, raw, 1)[:, 0] * 3).astype(np.int64)
        digits = self.mnist.images[torch.tensor(items)].float()[:, None] / 255.0
        out = []
        for i in range(len(raw)):
            _, colour, sz, place = attrs[i].tolist()
            side = max(4, round(_DIGIT_SIDE[sz] * size))
            glyph = F.interpolate(digits[i : i + 1], size=(side, side), mode="bilinear", antialias=True)[0, 0]
            # Centre of the named half (or, for a large digit, as far towards it as the frame allows), jittered.
            off = min(0.22, 0.5 - _DIGIT_SIDE[sz] / 2)
            cx = 0.5 + (-off if place == 0 else off if place == 1 else 0.0) + 0.05 * float(jit[i, 0])
            cy = 0.5 + (-off if place == 2 else off if place == 3 else 0.0) + 0.05 * float(jit[i, 1])
            x0 = min(max(round(cx * size - side / 2), 0), size - side)
            y0 = min(max(round(cy * size - side / 2), 0), size - side)
            cover = torch.zeros(size, size)
            cover[y0 : y0 + side, x0 : x0 + side] = glyph.clamp(0, 1)
            canvas = torch.full((3, size, size), 28.0)
            canvas = torch.lerp(canvas, _RGB[colour][:, None, None].expand(3, size, size), cover[None])
            if self.channels == 1:
                canvas = (canvas * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
            caption = mnist_captions(attrs[i].tolist())[which[i]]
            tokens, length = self.vocab.encode(caption, self.max_words)
            out.append(
                {
                    "image": canvas.add_(0.5).clamp_(0, 255).to(torch.uint8),
                    "tokens": tokens,
                    "length": torch.tensor(length, dtype=torch.int64),
                    "caption": caption,
                    "attrs": attrs[i].clone(),
                }
            )
        return out


# ---------------------------------------------------------------------------------------------- captions folder


def _read_captions(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"caption file missing: {path} (each image needs a same-named .txt file)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read caption file {path}: {e}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"caption file {path} is empty; write one caption per line")
    return lines


class CaptionFolderDataset(Dataset):
    """Images under a folder, each with its captions in the same-named ``.txt`` file, one caption per line.

    Item ``k`` is image ``k % len`` with one of its captions chosen by ``k``. Every caption file is read (and a
    missing or empty one reported) when the dataset is built, not in the middle of training.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        image_size: int = 64,
        channels: int = 3,
        seed: int = 0,
        vocab: Vocabulary | None = None,
        max_words: int = 18,
        vocab_size: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.image_size, self.channels, self.max_words = image_size, channels, max_words
        self.files = list_images(self.root)
        self.captions = [_read_captions(f.with_suffix(".txt")) for f in self.files]
        self.vocab = vocab if vocab is not None else Vocabulary()
        if self.vocab.is_empty:
            self.vocab.fit((c for cs in self.captions for c in cs), vocab_size)
        self._phrase_key = stream_key("captions/phrase", seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        (raw,), (item,) = wrap_indices([index], len(self))
        caps = self.captions[item]
        caption = caps[int(counter_uniform(self._phrase_key, [raw], 1)[0, 0] * len(caps))]
        tokens, length = self.vocab.encode(caption, self.max_words)
        image = load_image(self.files[item], self.channels, self.image_size)
        return {"image": image, "tokens": tokens, "length": torch.tensor(length, dtype=torch.int64), "caption": caption}


# ------------------------------------------------------------------------------------------------- registration

_TASKS = ("text_to_image",)


def _text_options(request: DataRequest) -> dict:
    """The tokenizer settings a text-to-image variant passes through ``DataRequest.options``."""
    opts = request.options
    words = opts.get("vocab")
    return {
        "vocab": Vocabulary(words) if words else None,
        "max_words": int(opts.get("max_words", 18)),
        "vocab_size": opts.get("vocab_size"),
    }


def shapes_captions_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``shapes-captions``: procedural captioned scenes of one or two shapes."""
    no_arg("shapes-captions", arg)
    return ShapesCaptionsDataset(
        request.image_size,
        request.channels,
        request.split,
        request.seed,
        **_text_options(request),
    )


def captions_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``captions:DIR``: images with same-named .txt caption files."""
    return CaptionFolderDataset(
        path_arg("captions", arg, "images_and_txt"),
        request.image_size,
        request.channels,
        request.seed,
        **_text_options(request),
    )


def mnist_captions_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``mnist-captions:DIR``: MNIST digits coloured, sized and placed, with captions."""
    return MnistCaptionsDataset(
        path_arg("mnist-captions", arg, "mnist_dir"),
        request.image_size,
        request.channels,
        request.split,
        request.seed,
        **_text_options(request),
    )


def register_datasets(register: Callable[..., None]) -> None:
    """Register the captioned datasets through a ``ganzoo_register_datasets`` ``register`` callback."""
    register(
        "shapes-captions",
        shapes_captions_factory,
        tasks=_TASKS,
        help="procedural scenes of 1-2 coloured shapes with 4 caption phrasings each; attrs for evaluation",
    )
    register(
        "captions",
        captions_factory,
        tasks=_TASKS,
        help="captions:DIR, images with same-named .txt files holding one caption per line",
    )
    register(
        "mnist-captions",
        mnist_captions_factory,
        tasks=_TASKS,
        help="mnist-captions:DIR, MNIST digits coloured, sized and placed: 'a large red seven on the left'",
    )
