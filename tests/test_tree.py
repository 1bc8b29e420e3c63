"""The tree: names, natural naming, paths, links, walking and rendering."""

from __future__ import annotations

import warnings

import pytest

from pytraj.errors import (
    AmbiguousNameError,
    InvalidNameError,
    NodeAttributeError,
    NodeExistsError,
    NodeNotFoundError,
    NodeTypeError,
    ShadowingWarning,
)
from pytraj.tree import Group, split_path, validate_name


@pytest.mark.parametrize("name", ["x", "net_size", "a-b", "X9", "9", "_"[1:] + "ok"])
def test_valid_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("_hidden", "reserved"),
        ("a b", "' '"),
        ("a.b", "'.'"),
        ("é", "'é'"),
        ("x!", "'!'"),
    ],
)
def test_invalid_names_are_refused_with_the_name(name: str, fragment: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name(name, parent="parameters")
    assert repr(name) in str(info.value)
    assert fragment in str(info.value)
    assert "parameters" in str(info.value)


def test_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="strings"):
        validate_name(3)


def test_split_path_accepts_dots_and_slashes() -> None:
    assert split_path("a.b/c") == ["a", "b", "c"]
    assert split_path("/a/b/") == ["a", "b"]
    with pytest.raises(InvalidNameError):
        split_path("a..b")


@pytest.fixture
def tree() -> Group:
    root = Group("root")
    root.require_group("net.layers", comment="the layers")
    root.add_group("data")
    return root


def test_groups_are_created_along_paths(tree: Group) -> None:
    layers = tree.node("net.layers")
    assert layers.full_name == "net.layers"
    assert layers.comment == "the layers"
    assert layers.parent is tree.node("net")
    assert layers.depth == 2
    assert tree["net/layers"] is layers
    assert tree.net.layers is layers


def test_require_group_returns_the_existing_group(tree: Group) -> None:
    first = tree.node("net")
    assert tree.require_group("net") is first
    with pytest.raises(NodeExistsError, match="require_group"):
        tree.add_group("net")


def test_attribute_access_falls_back_to_unique_descendants(tree: Group) -> None:
    assert tree.layers is tree.node("net.layers")
    tree.require_group("data.layers")
    with pytest.raises(AmbiguousNameError) as info:
        _ = tree.layers
    assert "'net.layers'" in str(info.value)
    assert "'data.layers'" in str(info.value)


def test_missing_child_errors_are_builtin_friendly(tree: Group) -> None:
    assert not hasattr(tree, "nothing")
    assert getattr(tree, "nothing", 7) == 7
    with pytest.raises(NodeAttributeError):
        _ = tree.nothing
    with pytest.raises(KeyError) as info:
        _ = tree["net.nothing"]
    assert isinstance(info.value, NodeNotFoundError)
    assert "'net' has no child 'nothing'" in str(info.value)


def test_missing_child_error_suggests_close_names(tree: Group) -> None:
    with pytest.raises(NodeNotFoundError, match="did you mean 'layers'"):
        tree.node("net.layer")


def test_mapping_protocol(tree: Group) -> None:
    assert len(tree) == 2
    assert list(tree) == ["net", "data"]
    assert tree.keys() == ["net", "data"]
    assert "net.layers" in tree
    assert "net/layers" in tree
    assert "net.nothing" not in tree
    assert 3 not in tree
    assert tree.get("nothing", "default") == "default"


def test_dir_and_key_completion_list_children(tree: Group) -> None:
    assert {"net", "data"} <= set(dir(tree))
    assert "add_group" in dir(tree)
    assert tree._ipython_key_completions_() == ["net", "data"]


def test_methods_win_over_children_and_shadowing_warns() -> None:
    root = Group("root")
    with pytest.warns(ShadowingWarning, match=r"reach it with \['keys'\]"):
        child = root.add_group("keys")
    assert callable(root.keys)
    assert root["keys"] is child


def test_no_warning_for_ordinary_names() -> None:
    root = Group("root")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        root.add_group("spikes")


def test_remove(tree: Group) -> None:
    with pytest.raises(NodeTypeError, match="recursive=True"):
        tree.remove("net")
    tree.remove("net", recursive=True)
    assert "net" not in tree
    assert not hasattr(tree, "layers")  # the name index forgot the subtree
    with pytest.raises(NodeNotFoundError):
        tree.remove("net")


def test_links_resolve_to_their_target(tree: Group) -> None:
    link = tree.add_link("shortcut", "net.layers")
    assert link.is_link
    assert link.target is tree.node("net.layers")
    assert tree.shortcut is tree.node("net.layers")
    assert tree["shortcut"] is tree.node("net.layers")
    with pytest.raises(NodeExistsError):
        tree.add_link("shortcut", "data")
    other = Group("other")
    with pytest.raises(NodeTypeError, match="another tree"):
        tree.add_link("foreign", other)


def test_walking_orders_parents_first(tree: Group) -> None:
    tree.add_link("shortcut", "data")
    names = [node.full_name for node in tree.iter_nodes()]
    assert names == ["net", "net.layers", "data", "shortcut"]
    assert [n.full_name for n in tree.iter_nodes(max_depth=1)] == ["net", "data", "shortcut"]
    assert [n.full_name for n in tree.iter_nodes(links=False)] == ["net", "net.layers", "data"]
    deep = [n.full_name for n in tree.iter_nodes(predicate=lambda n: n.depth == 2)]
    assert deep == ["net.layers"]
    assert [g.full_name for g in tree.iter_groups()] == ["net", "net.layers", "data"]
    assert list(tree.iter_leaves()) == []


def test_comments_and_annotations(tree: Group) -> None:
    net = tree.node("net")
    net.comment = "network"
    net.annotations["unit"] = "mV"
    assert net.comment == "network"
    assert dict(net.annotations) == {"unit": "mV"}
    with pytest.raises(TypeError, match="comment"):
        net.comment = 3  # type: ignore[assignment]
    with pytest.raises(InvalidNameError):
        net.annotations["bad key"] = 1


def test_reprs_show_state(tree: Group) -> None:
    assert repr(tree) == "<Group 'root' (2 children)>"
    assert repr(tree.node("net")) == "<Group 'net' (1 child)>"
    link = tree.add_link("l", "data")
    assert repr(link) == "<Link 'l' -> 'data'>"


def test_text_rendering_truncates(tree: Group) -> None:
    many = tree.require_group("many")
    for i in range(30):
        many.add_group(f"g{i}")
    text = tree.tree(max_children=5)
    assert text.splitlines()[0] == "root/"
    assert "├── net/" in text
    assert "│   └── layers/" in text
    assert "... 25 more" in text
    assert "g5" not in text


def test_text_rendering_takes_summaries_and_comments(tree: Group) -> None:
    tree.node("net").comment = "the network\nsecond line"
    text = tree.tree(comments=True, summaries={"net.layers": "3 layers", "data": "unused"})
    assert "├── net/  # the network\n" in text
    assert "│   └── layers/  3 layers  # the layers\n" in text


def test_html_rendering_is_self_contained(tree: Group) -> None:
    tree.node("net").comment = "a <net>"
    page = tree._repr_html_()
    assert "<details" in page
    assert "layers/" in page
    assert "a &lt;net&gt;" in page
    assert "<script" not in page
    assert "http" not in page
