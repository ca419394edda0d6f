"""The code flatc generated from schema/message.fbs (schema/wire/), used as the reference the codec
must agree with: build a typed frame with the generated builders, or compare bytes the codec wrote
with what the generated accessors read. Field names map by case (client_msg_id <-> ClientMsgId)."""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType
from typing import Any

import flatbuffers
import msgspec

from schema.codec import Cursor, FrameType


def camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def generated(name: str) -> ModuleType:
    return importlib.import_module(f"schema.wire.{name}")


def slot_order(table: str) -> list[str]:
    """The field names of a generated table, in slot order, read off its builder functions."""
    source = inspect.getsource(generated(table))
    pattern = rf"def {table}Add(\w+)\(builder[^)]*\)[^:]*:\s*\n\s*builder\.Prepend\w+Slot\((\d+),"
    slots = sorted((int(slot), field) for field, slot in re.findall(pattern, source))
    assert [slot for slot, _ in slots] == list(range(len(slots))), f"{table}: slots {slots}"
    return [field for _, field in slots]


def build(builder: flatbuffers.Builder, value: msgspec.Struct) -> int:
    """The table for a typed frame or message, written by the generated builders (which leave out
    every field equal to its default)."""
    table = type(value).__name__
    module = generated(table)
    prepared: dict[str, Any] = {}
    for field in msgspec.structs.fields(value):
        item = getattr(value, field.name)
        name = camel(field.name)
        if isinstance(item, str):
            prepared[name] = builder.CreateString(item)
        elif isinstance(item, msgspec.Struct):
            prepared[name] = build(builder, item)
        elif isinstance(item, tuple):
            start_vector = getattr(module, f"Start{name}Vector")
            if item and isinstance(item[0], msgspec.Struct) and not isinstance(item[0], Cursor):
                tables = [build(builder, element) for element in item]
                start_vector(builder, len(item))
                for table_offset in reversed(tables):
                    builder.PrependUOffsetTRelative(table_offset)
            else:  # a vector of structs (Cursor), written inline
                start_vector(builder, len(item))
                for element in reversed(item):
                    generated("Cursor").CreateCursor(builder, element.conversation_id, element.after_seq)
            prepared[name] = builder.EndVector()
    module.Start(builder)
    for field in msgspec.structs.fields(value):
        name = camel(field.name)
        getattr(module, f"Add{name}")(builder, prepared.get(name, getattr(value, field.name)))
    return int(module.End(builder))


def build_frame(frame: msgspec.Struct) -> bytes:
    builder = flatbuffers.Builder(256)
    body = build(builder, frame)
    module = generated("Frame")
    module.Start(builder)
    module.AddBodyType(builder, getattr(generated("Body").Body, type(frame).__name__))
    module.AddBody(builder, body)
    builder.Finish(module.End(builder))
    return bytes(builder.Output())


def assert_reads_as(table: Any, value: msgspec.Struct) -> None:
    """Every field of `value` is what the generated accessors of `table` read."""
    for field in msgspec.structs.fields(value):
        expected = getattr(value, field.name)
        name = camel(field.name)
        where = f"{type(value).__name__}.{field.name}"
        if isinstance(expected, msgspec.Struct):
            assert_reads_as(getattr(table, name)(), expected)
        elif isinstance(expected, tuple):
            assert getattr(table, f"{name}Length")() == len(expected), where
            for j, element in enumerate(expected):
                if isinstance(element, msgspec.Struct):
                    assert_reads_as(getattr(table, name)(j), element)
                else:
                    assert getattr(table, name)(j) == element, where
        elif isinstance(expected, str):
            assert (getattr(table, name)() or b"").decode() == expected, where
        else:
            assert getattr(table, name)() == expected, where


def assert_frame_reads_as(data: bytes, frame: msgspec.Struct) -> None:
    root = generated("Frame").Frame.GetRootAs(data, 0)
    table_name = type(frame).__name__
    assert root.BodyType() == getattr(generated("Body").Body, table_name)
    assert root.BodyType() == FrameType[snake(table_name).upper()]
    body = root.Body()
    table = getattr(generated(table_name), table_name)()
    table.Init(body.Bytes, body.Pos)
    assert_reads_as(table, frame)
