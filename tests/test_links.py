"""The signed addresses a message carries: a bounce's return path names its delivery."""

import pytest

from embudo.automation import links


def test_a_return_path_names_its_delivery_whatever_the_case(settings):
    settings.EMBUDO_BOUNCE_DOMAIN = "bounces.example.com"
    address = links.return_path(4711)
    assert address.startswith("bounces+4711-")
    assert address.endswith("@bounces.example.com")
    assert links.read_return_path(address) == 4711
    assert links.read_return_path(f"<{address.upper()}>") == 4711


@pytest.mark.parametrize(
    "address",
    [
        "someone@example.com",
        "bounces+4711@localhost",
        "bounces+x-abc@localhost",
        "bounces+4712-{sig}@localhost",
    ],
)
def test_an_address_that_is_not_a_signed_return_path_is_refused(address):
    signature = links.return_path(4711).split("-", 1)[1].split("@")[0]
    with pytest.raises(links.BadLink):
        links.read_return_path(address.format(sig=signature))


def test_absolute_links_use_the_public_url(settings):
    settings.EMBUDO_PUBLIC_URL = "https://mail.example.com"
    assert links.absolute("/e/o/1/x") == "https://mail.example.com/e/o/1/x"
