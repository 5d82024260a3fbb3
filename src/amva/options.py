"""An option of anything a config entry names: a dataset format, a model kind, a FIQA method, a CAM.

Each thing declares its options once, next to its code, as a mapping from the option's name
to an :class:`Option`; the library checks values against it, the workflow fills defaults
from it, and tests hold the config schema and the docs' tables to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args


@dataclass(frozen=True)
class Option:
    """The type an option's value has (a union such as ``int | None`` allowed), its default, what it means.

    ``required`` options have no default: an entry must give them. ``choices``: the values it
    takes (of each item, for a list). ``path``: a file or folder the workflow tracks as an
    input (in the order the options are declared).
    """

    type: Any
    default: Any
    meaning: str
    required: bool = False
    choices: tuple[Any, ...] = ()
    path: bool = False

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it has the option's type (an int passes for a float) and is a choice; else an error naming
        the option."""
        allowed = tuple(type(None) if t is None else t for t in get_args(self.type) or (self.type,))
        if float in allowed:
            allowed += (int,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{name} = {value!r}: expected {getattr(self.type, '__name__', self.type)}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{name} = {value!r}: use one of {', '.join(map(repr, self.choices))}")
        return value
