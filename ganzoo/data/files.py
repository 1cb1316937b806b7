"""Readers for data people already have on disk: MNIST-style IDX files and folders of images.

The folder helpers (:func:`list_images`, :func:`class_layout`, :func:`open_image`, :func:`fit_image`,
:func:`load_image`) are the building blocks of every folder layout (class folders, pix2pix A|B pairs, CycleGAN
trainA/trainB, SR high-resolution folders, anomaly good/defect folders). Every failure the user can cause is a
one-line :class:`~ganzoo.data.base.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import stat
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from ganzoo.data.base import BatchDataset, DataError
from ganzoo.data.procedural import check_split, wrap_indices

__all__ = [
    "IDX_DTYPES",
    "IMAGE_EXTENSIONS",
    "ImageFolderDataset",
    "ImageTensorDataset",
    "MnistDataset",
    "StackedMnistDataset",
    "class_layout",
    "check_channels",
    "find_mnist_files",
    "fit_image",
    "image_inputs",
    "image_to_tensor",
    "is_regular_file",
    "list_images",
    "load_image",
    "open_image",
    "read_idx",
    "resize_images",
]

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); the data is big-endian.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def check_channels(channels: int, what: str) -> int:
    if channels not in (1, 3):
        raise DataError(f"{what}: unsupported channels {channels}; valid: 1 (grayscale), 3 (colour)")
    return channels


def _check_size(image_size: int, what: str) -> int:
    if not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"{what}: unsupported image_size {image_size!r}; valid: a positive integer")
    return image_size


# ----------------------------------------------------------------------------------------------------------- IDX


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        # Sniff the gzip magic instead of trusting the extension: mirrors ship both, sometimes misnamed.
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        return raw
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a native-endian numpy array.

    The header is checked against the payload: a wrong magic number, an unknown type code, or a size that does
    not match the dimensions (truncated or padded file) raises :class:`DataError` naming the file.
    """
    path = Path(path)
    data = _read_maybe_gzip(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{path}: IDX file {state}: {len(data)} bytes, dimensions {dims} need {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_mnist_files(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Paths of the images and labels IDX files of ``split`` (``train``; ``val`` and ``test`` both use t10k)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"MNIST directory not found: {root}")
    prefix = "train" if check_split(split) == "train" else "t10k"
    found = []
    for kind, rank in (("images", 3), ("labels", 1)):
        # The official name, the dotted variant some mirrors use, each optionally gzipped.
        names = [f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"]
        candidates = [root / (n + ext) for n in names for ext in (".gz", "")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DataError(f"no {prefix} {kind} in {root}; expected one of: {', '.join(p.name for p in candidates)}")
        found.append(path)
    return found[0], found[1]


def resize_images(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize ``uint8 (N, H, W)`` images to ``(N, size, size)``: bilinear with antialiasing, in chunks.

    Chunking bounds the float intermediate (one 60k x 64 x 64 float batch would be ~1 GB).
    """
    out = torch.empty(len(images), size, size, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk, None].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = part[:, 0].round_().clamp_(0, 255).to(torch.uint8)
    return out


class ImageTensorDataset(BatchDataset):
    """Images held in memory as ``uint8 (N, H, W)`` (grayscale) or ``(N, C, H, W)`` with int64 labels.

    Grayscale is replicated to 3 channels per item when ``channels == 3`` (cheaper than storing three copies).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, channels: int = 1, what: str = "images") -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.to(torch.int64)
        self.channels = check_channels(channels, what)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        _, items = wrap_indices(indices, len(self))
        rows = torch.tensor(items, dtype=torch.int64)
        images = self.images[rows]
        if images.dim() == 3:
            images = images.unsqueeze(1)
        if self.channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1).contiguous()
        labels = self.labels[rows]
        return [{"image": images[i], "label": labels[i]} for i in range(len(items))]


class MnistDataset(ImageTensorDataset):
    """MNIST (or any same-format set: Fashion-MNIST, KMNIST) from its IDX files, held in memory as uint8.

    Item ``k`` is ``{"image": uint8 C x S x S, "label": int64 digit}`` of image ``k % len(self)``. Resizing happens
    once at load; grayscale is replicated to 3 channels per item when asked for (cheaper than storing 3 copies).

    :param root: directory holding ``train-*`` and ``t10k-*`` IDX files, gzipped or not.
    :param split: ``train`` (60,000 images) or ``val``/``test`` (the 10,000 t10k images).
    """

    class_names = [str(d) for d in range(10)]
    num_classes = 10

    def __init__(self, root: str | os.PathLike, split: str = "train", image_size: int = 28, channels: int = 1) -> None:
        check_channels(channels, "mnist")
        self.image_size = _check_size(image_size, "mnist")
        images_path, labels_path = find_mnist_files(root, split)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{images_path}: expected uint8 images N x H x W, got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
        if len(images) == 0:
            raise DataError(f"{images_path}: holds no images")
        tensor = torch.from_numpy(images.copy())
        if tensor.shape[1:] != (image_size, image_size):
            tensor = resize_images(tensor, image_size)
        super().__init__(tensor, torch.from_numpy(labels.astype(np.int64)), channels, "mnist")


class StackedMnistDataset(BatchDataset):
    """Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN): three independently drawn MNIST digits as the R, G and B
    channels, 1,000 classes.

    Item ``k`` stacks digits ``perm_c[k % n]`` for channel c = 0, 1, 2, with three fixed random permutations of the
    split drawn from ``seed``; its ``label`` is ``100 d_R + 10 d_G + d_B``, the class that
    ``DomainClassifier.predict_stacked`` recovers from generated images.
    """

    num_classes = 1000

    def __init__(self, root: str | os.PathLike, split: str = "train", image_size: int = 28, seed: int = 0) -> None:
        self.mnist = MnistDataset(root, split, image_size, channels=1)
        self.channels, self.image_size = 3, self.mnist.image_size
        gen = torch.Generator().manual_seed(seed)
        n = len(self.mnist)
        self.perms = torch.stack([torch.randperm(n, generator=gen) for _ in range(3)])

    def __len__(self) -> int:
        return len(self.mnist)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        _, items = wrap_indices(indices, len(self))
        rows = self.perms[:, torch.tensor(items, dtype=torch.int64)]  # 3 x B indices into MNIST
        images = torch.stack([self.mnist.images[r] for r in rows], dim=1)  # B x 3 x S x S
        digits = torch.stack([self.mnist.labels[r] for r in rows], dim=1)
        labels = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
        return [{"image": images[i], "label": labels[i]} for i in range(len(items))]


# -------------------------------------------------------------------------------------------------- image folders


def list_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root``, recursively, sorted by relative path; hidden files and folders skipped, and
    so are entries named like images that are not regular files (a FIFO would block the first read forever), with
    one warning naming them.

    Raises :class:`DataError` when ``root`` is missing, not a folder, or holds no image.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    found, special = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        # Skipping dot-folders drops .ipynb_checkpoints, .git and the like, which hold stray copies.
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                path = Path(dirpath, name)
                (found if is_regular_file(path) else special).append(path)
    if special:
        more = f" and {len(special) - 1} more" if len(special) > 1 else ""
        warnings.warn(
            f"skipped {special[0]}{more}: named like an image but not a regular file (FIFO, device, socket "
            "or broken link)",
            stacklevel=2,
        )
    if not found:
        raise DataError(f"no images in {root}; looked for {', '.join(IMAGE_EXTENSIONS)} files, recursively")
    # Sorting by path parts gives the same order on every filesystem, so item k is the same file everywhere.
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def image_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The image files a command was given: files as named (an image extension required), folders expanded with
    :func:`list_images`. Raises :class:`DataError` naming a missing input or a file that is not an image."""
    files: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_dir():
            files += list_images(p)
        elif p.is_file():
            if not p.name.lower().endswith(IMAGE_EXTENSIONS):
                raise DataError(f"{p} is not an image; valid extensions: {', '.join(IMAGE_EXTENSIONS)}")
            files.append(p)
        elif p.exists():
            raise DataError(f"{p} is not a regular file (a FIFO, device or socket); give image files or folders")
        else:
            raise DataError(f"input not found: {p}")
    return files


def is_regular_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (through symbolic links), found without opening it.

    :param path: the path to look at.
    :returns: ``False`` for FIFOs, devices, sockets, folders, broken links and missing paths.
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def class_layout(root: str | os.PathLike, files: Sequence[Path]) -> tuple[list[int], list[str]]:
    """Labels from the first-level subfolders, ``(labels, class_names)``.

    When every file sits inside a first-level subfolder of ``root`` (at any depth below it), the sorted subfolder
    names are the classes; otherwise there are no classes, every label is -1 and ``class_names`` is empty.
    """
    root = Path(root)
    parts = [p.relative_to(root).parts for p in files]
    if not parts or any(len(pt) < 2 for pt in parts):
        return [-1] * len(parts), []
    class_names = sorted({pt[0] for pt in parts})
    ids = {name: i for i, name in enumerate(class_names)}
    return [ids[pt[0]] for pt in parts], class_names


_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def open_image(path: str | os.PathLike, channels: int, draft_size: int | None = None) -> Image.Image:
    """Decode an image fully and convert it to ``RGB`` (3 channels) or ``L`` (1 channel).

    Alpha is dropped and palettes expanded. 16-bit grayscale is scaled to 8 bits rather than clipped.
    ``draft_size`` lets JPEG decode at a reduced scale that still covers ``draft_size`` on both sides.
    Unreadable, truncated or corrupt files raise :class:`DataError` naming the file.
    """
    check_channels(channels, "image")
    path = Path(path)
    try:
        with Image.open(path) as im:
            if draft_size:
                im.draft(None, (draft_size, draft_size))
            # load() forces the full decode here, so a truncated file fails now and not in some later conversion.
            im.load()
            if im.mode in _WIDE_GRAY_MODES:
                arr = np.asarray(im, dtype=np.float64)
                # "I;16*" is 16-bit by definition; "I" (32-bit) is how older PIL loads 16-bit PNGs, so judge by range.
                if im.mode.startswith("I;16") or (im.mode == "I" and arr.max(initial=0) > 255):
                    arr = arr / 257.0
                im = Image.fromarray(arr.round().clip(0, 255).astype(np.uint8), "L")
            if im.mode == "P":
                im = im.convert("RGBA")  # PIL wants palette transparency resolved through RGBA
            if im.mode not in ("L", "RGB"):
                im = im.convert("L" if im.mode in ("LA", "La", "1") else "RGB")
            target = "RGB" if channels == 3 else "L"
            return im.convert(target) if im.mode != target else im.copy()
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def fit_image(im: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side is ``size`` (bicubic, antialiased when shrinking), then centre-crop to a square."""
    w, h = im.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new != (w, h):
        im = im.resize(new, Image.Resampling.BICUBIC)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return im.crop((left, top, left + size, top + size))


def image_to_tensor(im: Image.Image) -> torch.Tensor:
    """A PIL ``L`` or ``RGB`` image as a ``uint8 C x H x W`` tensor."""
    arr = np.array(im, dtype=np.uint8)  # a writable copy: torch refuses to wrap read-only buffers silently
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def load_image(path: str | os.PathLike, channels: int, size: int | None = None) -> torch.Tensor:
    """Decode ``path`` to a ``uint8 C x H x W`` tensor; with ``size``, shorter side to ``size`` then centre crop."""
    im = open_image(path, channels, draft_size=size)
    if size is not None:
        im = fit_image(im, size)
    return image_to_tensor(im)


class ImageFolderDataset(Dataset):
    """A folder of images, searched recursively and decoded lazily per item.

    Item ``k`` is ``{"image": uint8 C x S x S, "label": int64}`` of file ``k % len(self)``; the label is the class
    of its first-level subfolder when every image sits in one (see :func:`class_layout`), else -1.

    :param root: the folder.
    :param image_size: output side; images are resized (shorter side) and centre-cropped.
    :param channels: 3 for RGB, 1 for grayscale.
    """

    def __init__(self, root: str | os.PathLike, image_size: int = 64, channels: int = 3) -> None:
        self.root = Path(root)
        self.image_size = _check_size(image_size, "folder")
        self.channels = check_channels(channels, "folder")
        self.files = list_images(self.root)
        labels, self.class_names = class_layout(self.root, self.files)
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.num_classes = len(self.class_names)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        _, (item,) = wrap_indices([index], len(self))
        image = load_image(self.files[item], self.channels, self.image_size)
        return {"image": image, "label": self.labels[item].clone()}
