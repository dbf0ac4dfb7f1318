"""The documentation site (mkdocs.yml, docs/) builds with warnings as errors: every link
between pages, every anchor and every API cross-reference resolves, and every public
module of src/mage gets a page of the generated API reference. Skipped when the docs
extra is not installed (``pip install -e ".[docs]"``).

Also: the `mage` command lines of the guides parse with the real parser and name
existing checkpoints and presets (the checks test_docs_examples.py applies to the
README), and the docstring rewriting of docs/griffe_rst.py.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mage.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDES = sorted(DOCS.glob("*.md"))
DOCS_MODULES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "mkdocs_gen_files",
                "mkdocs_literate_nav", "griffe")
MISSING = [m for m in DOCS_MODULES if importlib.util.find_spec(m) is None]
needs_docs = pytest.mark.skipif(bool(MISSING), reason="the docs extra is not installed (pip install -e '.[docs]'); "
                                                      f"missing: {', '.join(MISSING)}")


def public_modules() -> list[str]:
    """Every public module of the package, found by import machinery (not by the page
    generator's file walk, so that the two can disagree)."""
    import mage

    names = ["mage"]
    for info in pkgutil.walk_packages(mage.__path__, "mage."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # The two variables silence an advertising banner that a plugin prints on every build.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    warnings = [line for line in run.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert run.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings or [run.stderr[-3000:]])
    return out


@needs_docs
def test_guides_are_built(site):
    for guide in GUIDES:
        page = site / ("index.html" if guide.stem == "index" else f"{guide.stem}/index.html")
        assert page.is_file(), f"{guide.name} was not built"
    home = (site / "index.html").read_text()
    assert 'src="images/demo_frame.png"' in home and (site / "images" / "demo_frame.png").is_file()


@needs_docs
def test_every_public_module_has_an_api_page(site):
    for name in public_modules():
        page = site / "api" / Path(*name.split(".")) / "index.html"
        assert page.is_file(), f"no API page for {name}"
        assert f'id="{name}"' in page.read_text(), f"the API page of {name} does not document it"


@needs_docs
def test_api_pages_render_the_docstrings(site):
    streaming = (site / "api" / "mage" / "inference" / "streaming" / "index.html").read_text()
    assert 'id="mage.inference.streaming.Streamer.push"' in streaming
    assert "one tracking frame in, one full-body pose out" in streaming  # the module docstring
    for page in (site / "api").rglob("*.html"):  # reST roles were rewritten to code font
        assert not re.search(r":(func|class|meth|mod|data|attr):<code>", page.read_text()), page


def test_griffe_rst_rewrites_rest_habits():
    sys.path.insert(0, str(DOCS))
    try:
        griffe_rst = pytest.importorskip("griffe_rst", reason="griffe (docs extra) is not installed")
    finally:
        sys.path.remove(str(DOCS))
    text = "See :func:`~mage.core.fk` and\n:mod:`mage.core.limits`.\n\nLayout:\n    a   one\n    b   two"
    out = griffe_rst.to_markdown(text)
    assert "`mage.core.fk`" in out and "`mage.core.limits`" in out and ":func:" not in out
    assert "Layout:\n\n    a   one" in out  # an indented listing after a colon becomes a code block
    table = "Limits\n\n=====  =====\nname   value\n=====  =====\nA      1\n=====  =====\n\nAfter."
    fenced = griffe_rst.to_markdown(table).split("\n")
    assert fenced[2] == "```text" and fenced[8] == "```" and fenced[-1] == "After."


def guide_commands() -> list[tuple[str, str]]:
    from test_docs_examples import _commands  # the README's rule for finding command lines

    found = []
    for guide in GUIDES:
        for block in re.findall(r"```bash\n(.*?)```", guide.read_text(), flags=re.S):
            found += [(guide.name, line) for line in _commands(block, "mage ")]
    return found


def test_guides_show_commands():
    where = {name for name, _ in guide_commands()}
    assert {"streaming.md", "training.md", "evaluation.md", "rigs.md"} <= where


@pytest.mark.parametrize("where, line", guide_commands(), ids=[f"{w}: {line}"[:80] for w, line in guide_commands()])
def test_guide_command_parses(where, line):
    from test_docs_examples import _check_names, _strip

    argv = _strip(line)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit:
        pytest.fail(f"{where}: `{line}` does not parse (exit {exit.code})")
    _check_names(argv)
