"""Every registered variant passes the conformance kit (a new plugin is tested without touching this file)."""

import pytest
import torch

import ganzoo
from ganzoo import hookimpl
from ganzoo.plugins import register_plugin, unregister_plugin
from ganzoo.testing import check_dataset, check_variant


@pytest.mark.parametrize("name", ganzoo.list_variants(tags=False))
def test_variant_conforms(name):
    check_variant(name)


class _Noisy(torch.utils.data.Dataset):
    """Breaks the contract the way a first attempt does: draws from the global generator, so ``ds[k]`` changes."""

    def __init__(self, request):
        self.size = request.image_size

    def __len__(self):
        return 8

    def __getitem__(self, k):
        img = torch.randint(0, 256, (3, self.size, self.size), dtype=torch.uint8)
        return {"image": img, "label": torch.tensor(-1)}


class _NoLabel(_Noisy):
    def __getitem__(self, k):
        g = torch.Generator().manual_seed(k)
        return {"image": torch.randint(0, 256, (3, self.size, self.size), dtype=torch.uint8, generator=g)}


class _Data:
    @hookimpl
    def ganzoo_register_datasets(self, register):
        register("noisy", lambda arg, request: _Noisy(request), tasks=("unconditional",), help="not reproducible")
        register("nolabel", lambda arg, request: _NoLabel(request), tasks=("unconditional",), help="no label key")


def test_check_dataset_catches_broken_datasets():
    register_plugin(_Data(), "broken-data")
    try:
        v = ganzoo.create("dcgan", image_size=16, ngf=4, ndf=4, nz=4)
        with pytest.raises(AssertionError, match=r"noisy \(train\): item 0 differs between two reads"):
            check_dataset("noisy", v)
        with pytest.raises(AssertionError, match=r"lacks \['label'\] of the unconditional batch schema"):
            check_dataset("nolabel", v)
        check_dataset("shapes", v)
    finally:
        unregister_plugin("broken-data")
