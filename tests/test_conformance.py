"""Every registered variant passes the conformance kit (a new plugin is tested without touching this file)."""

import pytest

import ganzoo
from ganzoo.testing import check_variant


@pytest.mark.parametrize("name", ganzoo.list_variants(tags=False))
def test_variant_conforms(name):
    check_variant(name)
