"""Typed reads from one event's JSON payload, shared by the JSON dialects.

Vendor payloads leave fields out, set them to null, or (from a broken server) give them
the wrong type. ``Fields`` reads a field as the type the dialect expects: a missing or
null field reads as None, a field of another type raises ``DialectError`` naming its path
(``choices[0].delta.content``), with an excerpt of the event's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.dialects.base import load_json
from harness.errors import DialectError

__all__ = ["Fields"]


@dataclass(frozen=True, slots=True)
class Fields:
    """Reads the fields of one event's payload for one dialect.

    Attributes:
        dialect: the dialect's name, for errors.
        data: the event's data, for the excerpt in errors.
    """

    dialect: str
    data: str

    def error(self, message: str) -> DialectError:
        """A ``DialectError`` about this event, to raise."""
        return DialectError(self.dialect, message, self.data)

    def load(self) -> dict[str, Any]:
        """Parse the data as a JSON object.

        Returns:
            The object.

        Raises:
            DialectError: the data is not JSON, or not a JSON object.
        """
        payload = load_json(self.dialect, self.data)
        return self.object(payload, "the payload")

    def object(self, value: Any, path: str) -> dict[str, Any]:
        """Check that ``value`` (found at ``path``) is a JSON object.

        Raises:
            DialectError: it is not.
        """
        if not isinstance(value, dict):
            raise self.error(f"{path} is {_kind(value)}, expected an object")
        return value

    def string(self, obj: dict[str, Any], key: str, path: str = "") -> str | None:
        """Read ``obj[key]`` as a string; None when missing or null.

        Raises:
            DialectError: the field is present with another type.
        """
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.error(f"{_join(path, key)} is {_kind(value)}, expected a string")

    def integer(self, obj: dict[str, Any], key: str, path: str = "", default: int = 0) -> int:
        """Read ``obj[key]`` as an integer; ``default`` when missing or null.

        Raises:
            DialectError: the field is present with another type (booleans included).
        """
        value = obj.get(key)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self.error(f"{_join(path, key)} is {_kind(value)}, expected an integer")

    def mapping(self, obj: dict[str, Any], key: str, path: str = "") -> dict[str, Any] | None:
        """Read ``obj[key]`` as a JSON object; None when missing or null.

        Raises:
            DialectError: the field is present with another type.
        """
        value = obj.get(key)
        if value is None:
            return None
        return self.object(value, _join(path, key))

    def array(self, obj: dict[str, Any], key: str, path: str = "") -> list[Any] | None:
        """Read ``obj[key]`` as a JSON array; None when missing or null.

        Raises:
            DialectError: the field is present with another type.
        """
        value = obj.get(key)
        if value is None or isinstance(value, list):
            return value
        raise self.error(f"{_join(path, key)} is {_kind(value)}, expected an array")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
