"""A griffe extension for the API reference: the few reST habits of the docstrings, as Markdown.

The docstrings are plain prose written to read well in ``help()`` and in an editor;
they borrow three things from reST that Markdown would garble:

- roles such as :func:`name` or :mod:`mage.core.limits` -> the name in code font;
- a line ending in ``:`` or ``::`` followed directly by an indented block (a layout
  listing, a schema) -> a code block, as it reads in the source;
- simple tables framed by ``====  ====`` rules -> a code block, column layout kept.

Only the rendered text changes; the docstrings in ``src/`` stay as they are.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`~?([^`]+)`")
TABLE_RULE = re.compile(r"^(\s*)=+( +=+)+\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _fence_tables(lines: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(lines):
        start = TABLE_RULE.match(lines[i])
        if not start:
            out.append(lines[i])
            i += 1
            continue
        pad = start.group(1)
        end = i + 1  # the table ends at a rule line followed by a blank line or the end
        while end < len(lines) and not (
            TABLE_RULE.match(lines[end]) and (end + 1 == len(lines) or not lines[end + 1].strip())
        ):
            end += 1
        out += [f"{pad}```text", *lines[i : end + 1], f"{pad}```"]
        i = end + 1
    return out


def _separate_blocks(lines: list[str]) -> list[str]:
    """A line ending in ':' directly followed by lines indented 4+ more: a code block."""
    out, fenced = [], False
    for k, line in enumerate(lines):
        stripped = line.rstrip()
        nxt = lines[k + 1] if k + 1 < len(lines) else ""
        if stripped.lstrip().startswith("```"):
            fenced = not fenced
        if fenced:
            out.append(line)
        elif stripped.endswith(":") and nxt.strip() and _indent(nxt) >= _indent(line) + 4:
            out += [stripped.removesuffix(":") if stripped.endswith("::") else stripped, ""]
        elif stripped.endswith("::") and not nxt.strip():
            out.append(stripped[:-1])  # "Usage::" + blank line + block: already a code block
        else:
            out.append(line)
    return out


def to_markdown(text: str) -> str:
    lines = _separate_blocks(_fence_tables(text.splitlines()))
    return ROLE.sub(r"`\1`", "\n".join(lines))


class ReSTHabits(griffe.Extension):
    """Rewrite each docstring once it is loaded (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
