"""Pages that load nothing from outside: LaTeX typeset to MathML in Python, remote scripts and styles removed.

Browsers render MathML themselves, so a formula needs no MathJax download and no script at all; the
pages then carry a Content-Security-Policy that forbids every remote load (and, for feedback pages,
every script).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from latex2mathml.converter import convert

# $$...$$ (display) or $...$ (inline); not \$, and not across a blank line.
MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$(?!\d)", re.DOTALL)
CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)
REMOTE = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?\s*(?:https?:)?//[^>]*>\s*</script>"
                    r"|<link\b[^>]*\bhref\s*=\s*[\"']?\s*(?:https?:)?//[^>]*>"
                    r"|<script\b[^>]*type=\"text/x-mathjax-config\"[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)

MATHML_TAGS = ["math", "semantics", "annotation", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msup", "msub",
               "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle",
               "mpadded", "mphantom", "menclose", "merror"]
MATHML_ATTRIBUTES = ["display", "xmlns", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "accent",
                     "accentunder", "width", "height", "depth", "columnalign", "rowspacing", "columnspacing",
                     "displaystyle", "scriptlevel", "linethickness", "minsize", "maxsize", "symmetric", "notation",
                     "encoding", "movablelimits", "largeop"]


def policy(scripts: str = "'none'") -> str:
    """A Content-Security-Policy meta tag: nothing from outside; scripts only as given ('none', or 'unsafe-inline')."""
    return (f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; script-src {scripts}; '
            "style-src 'unsafe-inline'; img-src data:; font-src data:\">")


def _typeset(match: re.Match) -> str:
    display, inline = match.group(1), match.group(2)
    latex = display if display is not None else inline
    try:
        return convert(latex.strip(), display="block" if display is not None else "inline")
    except Exception:  # noqa: BLE001 - a formula the converter does not know stays readable as its source
        return f"<code>{html.escape(match.group(0))}</code>"


@lru_cache(maxsize=512)  # a lesson's text is typeset again for every feedback page
def typeset_math(markdown: str) -> str:
    """Markdown with its $...$ and $$...$$ formulas replaced by MathML (code spans and blocks left alone)."""
    parts = CODE.split(markdown)
    return "".join(part if k % 2 else MATH.sub(_typeset, part) for k, part in enumerate(parts))


def without_remote_loads(page: str, scripts: str = "'none'") -> str:
    """The page with remote <script>/<link> tags and MathJax configuration removed, and a strict policy first in <head>.

    With scripts 'none' every script element goes (the policy would refuse them anyway).
    """
    page = REMOTE.sub("", page)
    if scripts == "'none'":
        page = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.DOTALL | re.IGNORECASE)
    return re.sub(r"<head([^>]*)>", lambda m: f"<head{m.group(1)}>\n{policy(scripts)}", page, count=1)
