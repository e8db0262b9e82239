"""Usernames and auth keys are matched as whole strings: a trailing newline is not a name (it would
make a second profile that looks like the first, and a frames folder with a newline in its name)."""

from __future__ import annotations

import pytest

from proxy.accounts import profiles
from proxy.accounts.models import check_key, check_username
from proxy.errors import BadRequest
from proxy.keys import ACCOUNTS
from tests.support.account_helpers import add_profile


@pytest.mark.parametrize("name", ["alice\n", "alice\r\n", "\nalice", "ali\nce", "", "-alice", "a" * 65])
def test_a_username_must_be_the_whole_string(name):
    with pytest.raises(BadRequest) as refused:
        check_username(name)
    assert refused.value.code == "invalid_username"


@pytest.mark.parametrize("name", ["alice", "a", "A.b_c-9", "a" * 64])
def test_plain_usernames_pass(name):
    assert check_username(name) == name


@pytest.mark.parametrize("key", ["key-0123456789\n", "\nkey-0123456789", "short", "k" * 257])
def test_an_auth_key_must_be_the_whole_string(key):
    with pytest.raises(BadRequest):
        check_key(key)
    assert check_key("key-0123456789") == "key-0123456789"


async def test_the_store_refuses_a_name_with_a_trailing_newline(iris):
    client = await iris()
    await add_profile(client, "alice")
    with pytest.raises(BadRequest):
        await add_profile(client, "alice\n")
    with pytest.raises(BadRequest):
        await add_profile(client, "bob", "bob-key-0123456789\n")
    names = [p.username for p in await client.app[ACCOUNTS].run(profiles.listing)]
    assert names == ["alice"]
