from ganzoo.testing import check_variant


def test_toygan_conforms():
    check_variant("toygan")
