"""Server slugs and the index of exposed tool and prompt names."""

from __future__ import annotations

import logging
import re

import pytest

from pluggedin_proxy.naming import NameIndex, slugify, unique_slugs

CLIENT_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def exposed_names(index: NameIndex) -> list[str]:
    return [entry.exposed for entry in index]


# slugify


def test_slugify_lower_cases_the_name():
    """Upper-case letters become lower-case."""
    assert slugify("GitHub") == "github"


def test_slugify_drops_everything_but_letters_digits_spaces_and_hyphens():
    """Punctuation, underscores and symbols disappear without leaving a separator."""
    assert slugify("my_server!@#(v2).py") == "myserverv2py"


def test_slugify_turns_spaces_into_hyphens():
    """Words separated by spaces are joined by hyphens."""
    assert slugify("my cool server") == "my-cool-server"


def test_slugify_collapses_repeated_hyphens():
    """Runs of hyphens and spaces become a single hyphen."""
    assert slugify("a -- b  c") == "a-b-c"


def test_slugify_trims_hyphens_at_both_ends():
    """No slug starts or ends with a hyphen."""
    assert slugify("  -files- ") == "files"


def test_slugify_caps_the_slug_at_50_characters():
    """A long name gives a slug of exactly 50 characters."""
    assert slugify("a" * 60) == "a" * 50


def test_slugify_turns_a_parenthesised_version_into_a_suffix():
    """The App's own example: `My Server (v2)` becomes `my-server-v2`."""
    assert slugify("My Server (v2)") == "my-server-v2"


def test_slugify_of_an_empty_name_is_server():
    """An empty name gets the fallback slug `server`."""
    assert slugify("") == "server"


def test_slugify_of_a_name_with_nothing_to_keep_is_server():
    """A name made only of dropped characters gets the fallback slug `server`."""
    assert slugify("!!! ___ ???") == "server"


# unique_slugs


def test_unique_slugs_keeps_distinct_slugs_in_order():
    """Names that slug differently are returned as their slugs, in input order."""
    assert unique_slugs(["Zeta", "Alpha", "Mid"]) == ["zeta", "alpha", "mid"]


def test_unique_slugs_appends_one_then_two_to_repeats():
    """The second and third occurrence of a slug get `-1` and `-2`."""
    assert unique_slugs(["git", "git", "git"]) == ["git", "git-1", "git-2"]


def test_unique_slugs_disambiguates_names_that_slug_alike():
    """Different names with the same slug are disambiguated like repeats."""
    assert unique_slugs(["My Server", "my-server", "MY SERVER!"]) == ["my-server", "my-server-1", "my-server-2"]


def test_unique_slugs_keeps_a_suffixed_slug_within_50_characters():
    """Disambiguating a 50-character slug shortens it to make room for the suffix."""
    first, second = unique_slugs(["x" * 60, "x" * 60])
    assert first == "x" * 50
    assert second == "x" * 48 + "-1"


# NameIndex


def test_names_are_exposed_as_slug_double_underscore_name():
    """With prefixing, a tool is exposed as `<slug>__<tool>`."""
    index = NameIndex([("id-1", "github", "create_issue")])
    assert exposed_names(index) == ["github__create_issue"]


def test_an_exposed_name_resolves_to_its_server_and_original_name():
    """Resolving the exposed name gives back the server id and the upstream's own name."""
    entry = NameIndex([("id-1", "github", "create_issue")]).resolve("github__create_issue")
    assert entry is not None
    assert (entry.server_id, entry.original) == ("id-1", "create_issue")


def test_the_same_tool_name_on_two_servers_gives_two_names():
    """Two servers offering `search` are both exposed, neither overwriting the other."""
    index = NameIndex([("id-1", "web", "search"), ("id-2", "docs", "search")])
    assert exposed_names(index) == ["web__search", "docs__search"]
    assert index.resolve("web__search").server_id == "id-1"
    assert index.resolve("docs__search").server_id == "id-2"


def test_a_name_over_64_characters_is_exposed_under_a_client_safe_alias():
    """A prefixed name longer than 64 characters is listed under a legal alias."""
    (entry,) = NameIndex([("id-1", "srv", "t" * 70)])
    assert CLIENT_SAFE.match(entry.exposed)
    assert entry.full == "srv__" + "t" * 70


def test_a_name_with_illegal_characters_is_exposed_under_a_client_safe_alias():
    """A name with `/` or `:` is listed under a legal alias."""
    (entry,) = NameIndex([("id-1", "srv", "weird/name:x")])
    assert CLIENT_SAFE.match(entry.exposed)
    assert entry.full == "srv__weird/name:x"


def test_an_alias_is_the_same_across_two_index_builds():
    """The alias depends only on the name, so a rebuilt index exposes the same alias."""
    entries = [("id-1", "srv", "weird/name:x"), ("id-1", "srv", "t" * 70)]
    assert exposed_names(NameIndex(entries)) == exposed_names(NameIndex(list(entries)))


def test_long_names_sharing_their_first_64_characters_get_distinct_aliases():
    """Names that differ only past the cut-off still get different aliases."""
    first, second = NameIndex([("id-1", "srv", "t" * 70 + "a"), ("id-1", "srv", "t" * 70 + "b")])
    assert first.exposed != second.exposed


def test_names_whose_illegal_characters_differ_get_distinct_aliases():
    """`weird/name` and `weird:name` sanitize alike but get different aliases."""
    first, second = NameIndex([("id-1", "srv", "weird/name"), ("id-1", "srv", "weird:name")])
    assert first.exposed != second.exposed


def test_the_full_name_of_an_aliased_tool_still_resolves():
    """Calling an aliased tool by its full original name still reaches it."""
    index = NameIndex([("id-1", "srv", "weird/name:x")])
    (entry,) = index
    assert index.resolve("srv__weird/name:x") is entry
    assert index.resolve(entry.exposed) is entry


def test_without_prefixing_names_are_exposed_unchanged():
    """With prefixing off, a tool keeps its upstream name."""
    index = NameIndex([("id-1", "github", "create_issue")], prefix=False)
    assert exposed_names(index) == ["create_issue"]


def test_without_prefixing_a_clash_keeps_the_first_plain_and_prefixes_the_second():
    """The first server to offer a name keeps it; the second one's is prefixed with its slug."""
    index = NameIndex([("id-1", "web", "search"), ("id-2", "docs", "search")], prefix=False)
    assert exposed_names(index) == ["search", "docs__search"]
    assert index.resolve("search").server_id == "id-1"
    assert index.resolve("docs__search").server_id == "id-2"


def test_without_prefixing_a_clash_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture):
    """A clash between two servers is reported in the log, naming the tool."""
    with caplog.at_level(logging.WARNING, logger="pluggedin_proxy.naming"):
        NameIndex([("id-1", "web", "search"), ("id-2", "docs", "search")], prefix=False)
    assert any("search" in record.getMessage() for record in caplog.records)


def test_a_server_listing_the_same_name_twice_keeps_the_first():
    """A duplicate in one server's listing is exposed only once."""
    index = NameIndex([("id-1", "web", "search"), ("id-1", "web", "search")])
    assert exposed_names(index) == ["web__search"]


def test_without_prefixing_a_server_listing_a_clashing_name_twice_keeps_the_first():
    """A duplicate of a name that clashed with another server is still exposed only once."""
    index = NameIndex([("id-1", "web", "search"), ("id-2", "docs", "search"), ("id-2", "docs", "search")], prefix=False)
    assert exposed_names(index) == ["search", "docs__search"]


def test_resolving_an_unknown_name_gives_none():
    """A name no server offers resolves to nothing."""
    index = NameIndex([("id-1", "web", "search")])
    assert index.resolve("web__fetch") is None


def test_an_original_name_containing_double_underscore_round_trips_exactly():
    """A tool called `a__b` is exposed as `<slug>__a__b` and resolves back to `a__b`, not `b`."""
    index = NameIndex([("id-1", "srv", "a__b")])
    entry = index.resolve("srv__a__b")
    assert entry is not None
    assert entry.original == "a__b"
