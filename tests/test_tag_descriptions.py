"""Every tag says what it is for: `ganzoo list` and `ganzoo info` show each tag's own line, and the conformance kit
fails a variant with a tag that has none."""

import json

import pytest

from ganzoo import registry
from ganzoo.cli import main
from ganzoo.testing import check_tag_descriptions
from ganzoo.variant import GANVariant

BUILTIN = ("vanilla", "dcgan", "pix2pix", "cyclegan", "srgan", "attngan", "ganomaly")


@pytest.mark.parametrize("family", BUILTIN)
def test_every_builtin_tag_has_its_own_description(family):
    spec = registry.variants()[family]
    check_tag_descriptions(spec.cls)
    descriptions = [spec.cls.tag_descriptions[t] for t in spec.tags]
    assert len(set(descriptions)) == len(descriptions), f"{family}: two tags share a description"
    assert spec.description not in descriptions


def test_the_kit_names_a_tag_without_a_description():
    class Half(GANVariant):
        name = "half"
        tags = {"big": {}, "small": {}}
        tag_descriptions = {"big": "a big one", "gone": "a tag that was removed"}

    with pytest.raises(AssertionError, match="tags without a description in tag_descriptions: small"):
        check_tag_descriptions(Half)
    Half.tag_descriptions = {"big": "a big one", "small": "a small one", "gone": "removed"}
    with pytest.raises(AssertionError, match="names tags that do not exist: gone"):
        check_tag_descriptions(Half)
    Half.tag_descriptions = {"big": "a big one", "small": "two\nlines"}
    with pytest.raises(AssertionError, match="one line: small"):
        check_tag_descriptions(Half)


def test_list_and_info_print_each_tags_line(capsys):
    assert main(["list", "--json"]) == 0
    rows = {r["name"]: r["description"] for r in json.loads(capsys.readouterr().out)}
    for family in BUILTIN:
        spec = registry.variants()[family]
        assert rows[family] == spec.description
        for tag in spec.tags:
            assert rows[f"{family}.{tag}"] == spec.cls.tag_descriptions[tag]
    assert main(["list", "srgan*"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("srgan.x2 "))
    assert line.endswith(registry.variants()["srgan"].cls.tag_descriptions["x2"])
    assert main(["info", "srgan.x2"]) == 0
    out = capsys.readouterr().out
    assert f"this tag: {registry.variants()['srgan'].cls.tag_descriptions['x2']}" in out
    for tag, text in registry.variants()["srgan"].cls.tag_descriptions.items():
        assert f"srgan.{tag}" in out and text in out
    assert main(["info", "srgan", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["tag_descriptions"]) == set(info["tags"])
