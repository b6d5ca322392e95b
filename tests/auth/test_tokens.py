"""Credential generators and the hash under which bearer-style tokens are stored."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest

from wahealth.auth.tokens import (
    hash_token,
    new_access_key_id,
    new_access_key_secret,
    new_d360_key,
    new_graph_token,
    tokens_equal,
)


def test_hash_is_a_pinned_domain_separated_sha256() -> None:
    # Stored hashes depend on this exact construction: changing it locks every key out.
    pinned = hashlib.sha256(b"wahealth.token.v1\x00whd360_abc").hexdigest()
    assert hash_token("whd360_abc") == pinned
    assert hash_token("whd360_abc") != hashlib.sha256(b"whd360_abc").hexdigest()
    assert hash_token("whd360_abc") != hash_token("whd360_abd")
    assert re.fullmatch(r"[0-9a-f]{64}", hash_token("é中"))


def test_tokens_equal() -> None:
    assert tokens_equal("whgr_a", "whgr_a")
    assert not tokens_equal("whgr_a", "whgr_b")
    assert not tokens_equal("whgr_a", "whgr_a ")
    assert tokens_equal("é", "é")


@pytest.mark.parametrize(
    ("generate", "pattern"),
    [
        (new_access_key_id, r"LTAI[0-9A-Za-z]{20}"),
        (new_access_key_secret, r"[0-9A-Za-z]{30}"),
        (new_d360_key, r"whd360_[0-9A-Za-z]{36}"),
        (new_graph_token, r"whgr_[0-9A-Za-z]{40}"),
    ],
)
def test_generators_have_the_documented_shape_and_differ(
    generate: Callable[[], str], pattern: str
) -> None:
    values = {generate() for _ in range(50)}

    assert len(values) == 50
    assert all(re.fullmatch(pattern, value) for value in values)
