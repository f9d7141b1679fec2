"""Entity keys: parsed, printed back, and every malformed form named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wrapper.entities.keys import ENTITY_TYPES, EntityKey, is_key
from wrapper.errors import SpecError

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}", fullmatch=True)


@given(names, st.sampled_from(ENTITY_TYPES), names, names, st.none() | names)
def test_a_key_prints_back_to_itself(
    project: str, entity_type: str, kind: str, name: str, version: str | None
) -> None:
    key = EntityKey(project, entity_type, kind, name, version)
    assert EntityKey.parse(str(key)) == key
    assert is_key(str(key))


def test_the_parts_of_a_key() -> None:
    key = EntityKey.parse("store://demo/dataitem/table/iris:0f1e2d3c")
    assert (key.project, key.entity_type, key.kind, key.name, key.id) == (
        "demo",
        "dataitem",
        "table",
        "iris",
        "0f1e2d3c",
    )
    assert str(key.latest()) == "store://demo/dataitem/table/iris"
    assert not is_key("iris")


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("iris", "does not start with store://"),
        ("s3://demo/dataitem/table/iris", "does not start with store://"),
        ("store://demo/dataitem/iris", "3 part(s) after store://, not 4"),
        ("store://demo/dataitem/table/iris/extra", "5 part(s)"),
        ("store://demo/dataset/table/iris", "entity type 'dataset' is not one of dataitem"),
        ("store://demo/model/sklearn/..", "name '..' is not a name"),
        ("store:///dataitem/table/iris", "project '' is not a name"),
        ("store://demo/artifact/file/a b", "name 'a b' is not a name"),
        ("store://demo/artifact/file/iris:", "id '' is not an id"),
        ("store://demo/artifact/file/iris:a:b", "id 'a:b' is not an id"),
        ("store://demo/artifact/" + "k" * 129 + "/x", "kind 'kkk"),
    ],
)
def test_a_malformed_key_is_named_with_its_fault(text: str, fault: str) -> None:
    with pytest.raises(SpecError) as caught:
        EntityKey.parse(text, "inputs.data")
    message = caught.value.message
    assert message.startswith(f"inputs.data: {text!r} is not an entity key: ")
    assert fault in message
    assert "store://<project>/<entity_type>/<kind>/<name>[:<id>]" in message


def test_a_key_that_is_not_text() -> None:
    with pytest.raises(SpecError, match=r"inputs.n: expected an entity key .* got int"):
        EntityKey.parse(3, "inputs.n")  # type: ignore[arg-type]
