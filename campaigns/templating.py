"""Campaign body templates: plain text with merge fields, nothing more.

``Hi {first_name|friend}, see you at {venue}!`` — a merge field is a name in braces:
a member column (``first_name``, ``last_name``, ``email``, ``phone``) or a key of
``Member.fields`` (the imported columns). ``{name|fallback}`` writes ``fallback`` when
the member's value is missing or empty; without one, nothing is written. ``{{`` and
``}}`` write literal braces.

Deliberately not Django templates or ``str.format``: staff write these, and a template
must not reach attributes, indexes or code (``{first_name.upper}``, ``{a[0]}``,
``{__class__}`` are refused with a clear message). Rendering is plain substitution with
no escaping (an SMS is plain text).

A template renders in Python (:meth:`Template.render`, for previews and test texts) and
compiles to one PostgreSQL expression (:meth:`Template.to_sql`) so that fan-out renders
a million bodies inside an ``INSERT … SELECT``; both give the same text for a member.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

# Merge fields that are columns of members_member; every other name is a key of "fields".
MEMBER_COLUMNS: tuple[str, ...] = ("first_name", "last_name", "email", "phone")

# A field name: starts with a letter or digit; then letters, digits, "_", "-" or spaces
# (imported column names such as "favorite color").
_FIELD_NAME = re.compile(r"[^\W_][\w\- ]*")
_SQL_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACE = re.compile(r"[{}]")
# PostgreSQL functions take at most 100 arguments (FUNC_MAX_ARGS), concat() included.
_CONCAT_MAX_ARGUMENTS = 100
_EXCERPT_LENGTH = 20


class TemplateError(ValueError):
    """The text is not a valid template; ``message`` says what is wrong and where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Literal:
    text: str


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    fallback: str | None = None

    @property
    def is_column(self) -> bool:
        return self.name in MEMBER_COLUMNS


@dataclass(frozen=True, slots=True)
class RenderResult:
    """The rendered text, and the fields whose value was missing or empty (each once,
    in order of first use); those got their fallback, or nothing."""

    text: str
    fell_back: tuple[str, ...] = ()


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[Literal | Placeholder, ...]

    @cached_property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(part for part in self.parts if isinstance(part, Placeholder))

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """Each merge field name used, once, in order of first use."""
        return tuple(dict.fromkeys(placeholder.name for placeholder in self.placeholders))

    def fallbacks(self, name: str) -> tuple[str, ...]:
        """The distinct fallbacks written for ``name`` (empty when it has none)."""
        return tuple(
            dict.fromkeys(
                placeholder.fallback
                for placeholder in self.placeholders
                if placeholder.name == name and placeholder.fallback is not None
            )
        )

    def render(self, values: Mapping[str, str | None]) -> RenderResult:
        """Substitute ``values``; a missing, ``None`` or empty value takes the fallback."""
        pieces: list[str] = []
        fell_back: dict[str, None] = {}
        for part in self.parts:
            if isinstance(part, Literal):
                pieces.append(part.text)
                continue
            value = values.get(part.name)
            if not value:
                fell_back[part.name] = None
                value = part.fallback or ""
            pieces.append(value)
        return RenderResult("".join(pieces), tuple(fell_back))

    def to_sql(self, member_alias: str = "m") -> tuple[str, list[str]]:
        """A PostgreSQL text expression rendering this template for the member row
        ``member_alias``, and its parameters.

        Text from the template (literals, fallbacks, ``fields`` keys) only ever travels as
        parameters. Literals are cast to text so the expression also works with
        server-side parameter binding. Example: ``Hi {first_name|friend} {venue}`` gives
        ``concat(%s::text, COALESCE(NULLIF(m."first_name", ''), %s),
        %s::text, COALESCE(m."fields" ->> %s, ''))`` with
        ``["Hi ", "friend", " ", "venue"]``.
        """
        if not _SQL_ALIAS.fullmatch(member_alias):
            raise ValueError(f"{member_alias!r} is not a plain SQL alias")
        pieces: list[str] = []
        params: list[str] = []
        for part in self.parts:
            if isinstance(part, Literal):
                pieces.append("%s::text")
                params.append(part.text)
                continue
            if part.is_column:
                value_sql = f'{member_alias}."{part.name}"'
            else:
                value_sql = f'{member_alias}."fields" ->> %s'
                params.append(part.name)
            if part.fallback:
                pieces.append(f"COALESCE(NULLIF({value_sql}, ''), %s)")
                params.append(part.fallback)
            elif part.is_column:
                pieces.append(value_sql)  # member columns are NOT NULL
            else:
                # A missing key or a JSON null gives NULL: write nothing, like render().
                pieces.append(f"COALESCE({value_sql}, '')")
        if not pieces:
            return "''::text", []
        return _concat(pieces), params


def _concat(pieces: list[str]) -> str:
    while len(pieces) > _CONCAT_MAX_ARGUMENTS:
        pieces = [
            f"concat({', '.join(pieces[start : start + _CONCAT_MAX_ARGUMENTS])})"
            for start in range(0, len(pieces), _CONCAT_MAX_ARGUMENTS)
        ]
    return f"concat({', '.join(pieces)})"


def parse_template(text: str) -> Template:
    """Parse ``text``, or raise :class:`TemplateError` naming the first problem."""
    parts: list[Literal | Placeholder] = []
    literal: list[str] = []
    position = 0
    length = len(text)
    while position < length:
        brace = _BRACE.search(text, position)
        if brace is None:
            literal.append(text[position:])
            break
        start = brace.start()
        literal.append(text[position:start])
        character = text[start]
        if text.startswith(character * 2, start):  # "{{" or "}}"
            literal.append(character)
            position = start + 2
            continue
        if character == "}":
            raise TemplateError(
                f'Unmatched "}}" at character {start + 1}: write "}}}}" for a literal "}}".'
            )
        end = text.find("}", start + 1)
        next_opening = text.find("{", start + 1)
        if end == -1 or -1 < next_opening < end:
            raise TemplateError(
                f'Unclosed "{{" at character {start + 1} ({_excerpt(text, start)}): end the '
                'merge field with "}", or write "{{" for a literal "{".'
            )
        if any(literal):
            parts.append(Literal("".join(literal)))
        literal = []
        parts.append(_parse_placeholder(text[start : end + 1], start))
        position = end + 1
    if any(literal):
        parts.append(Literal("".join(literal)))
    return Template(text, tuple(parts))


def _parse_placeholder(placeholder: str, start: int) -> Placeholder:
    """``placeholder`` is the whole ``{...}``; ``start`` its offset in the template."""
    name_text, bar, fallback = placeholder[1:-1].partition("|")
    name = name_text.strip()
    where = f'Merge field "{placeholder}" at character {start + 1}'
    if not name:
        raise TemplateError(
            f"{where} has no name: put a field name inside, like {{first_name}}, or write "
            '"{{" and "}}" for literal braces.'
        )
    if "." in name:
        raise TemplateError(
            f'{where} uses ".": merge fields are plain names, like {{first_name}}, '
            "without attributes."
        )
    if "[" in name or "]" in name:
        raise TemplateError(
            f'{where} uses "[ ]": merge fields are plain names, like {{first_name}}, '
            "without indexes."
        )
    if name.startswith("_"):
        raise TemplateError(
            f'{where} starts with "_": merge field names start with a letter or a digit.'
        )
    if not _FIELD_NAME.fullmatch(name):
        raise TemplateError(
            f'{where} is not a field name: use letters, digits, spaces, "-" and "_", and '
            '"|" before a fallback, like {first_name|friend}.'
        )
    # "{name|}" asks for nothing when the value is missing, which is what "{name}" does.
    return Placeholder(name, fallback if bar and fallback else None)


def _excerpt(text: str, start: int) -> str:
    excerpt = text[start : start + _EXCERPT_LENGTH]
    ellipsis = "…" if len(text) > start + _EXCERPT_LENGTH else ""
    return f'"{excerpt}{ellipsis}"'
