"""backends/service_url.py: the url option of the Craton and NetBox backends, checked one way."""

from __future__ import annotations

import pytest

from osa_inventory.backends.service_url import service_root
from osa_inventory.errors import StorageError


@pytest.mark.parametrize("url, root", [
    ("https://netbox.example.com/api/", "https://netbox.example.com"),
    ("https://netbox.example.com/api", "https://netbox.example.com"),
    ("http://10.0.0.5:8000/netbox/", "http://10.0.0.5:8000/netbox"),
    ("http://nb/apis", "http://nb/apis"),  # only the suffix itself is dropped
])
def test_the_root_drops_the_api_suffix_and_trailing_slashes(url, root):
    assert service_root(url, "an example", "option token", "/api") == root


@pytest.mark.parametrize("url, refusal", [
    ("", "option url is not set; give an example"),
    ("ftp://nb", "option url = 'ftp://nb' is not an http:// or https:// URL"),
    ("https://", "option url = 'https://' is not an http:// or https:// URL"),
    ("https://user:secret@nb/", "option url must not carry credentials; use option token"),
    ("https://nb/api?x=1", "option url = https://nb/api must not have a query or fragment"),
    ("https://nb/#top", "option url = https://nb/ must not have a query or fragment"),
])
def test_a_url_that_is_no_service_root_is_one_line(url, refusal):
    with pytest.raises(StorageError) as err:
        service_root(url, "an example", "option token", "/api")
    assert str(err.value) == refusal
    assert "secret" not in str(err.value)
