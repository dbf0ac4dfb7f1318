"""Every example a user can copy works as written: the example lines of every `--help`,
the README's shell and Python blocks, and the docstrings of examples/ (issue: a fresh
user followed them and hit `--ckpt mage-small`, a preset, not a checkpoint).

Each `mage ...` line is parsed by the real parser and its names are checked (a --ckpt is
a packaged checkpoint or a path, a --preset a preset); the cheap ones are run; the
README's Python blocks are run in a temporary folder.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mage.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


# --- collecting the examples ----------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


def _commands(text: str, prefix: str) -> list[str]:
    """Lines starting with ``prefix`` (continuations joined, comments and ``&`` dropped)."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if pending:
            line = pending + " " + line
            pending = ""
        elif not line.startswith(prefix):
            continue
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        out.append(line)
    return out


def _strip(line: str) -> list[str]:
    argv = shlex.split(line, comments=True)
    return [a for a in argv if a != "&"]


def help_examples() -> list[tuple[str, str]]:
    found = []
    for p in _subparsers(build_parser()):
        for line in _commands(p.format_help(), "mage "):
            found.append((p.prog, line))
    return found


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def doc_examples() -> list[tuple[str, str]]:
    found = [("README.md", line) for block in readme_blocks("bash") for line in _commands(block, "mage ")]
    for path in EXAMPLES:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        found += [(path.name, line) for line in _commands(doc, "mage ")]
    return found


ALL = help_examples() + doc_examples()


def test_examples_were_found():
    """Every `--help` shows examples (issue #28: the data, model and env sub-commands had none)."""
    where = {w for w, _ in ALL}
    for prog in ("mage", "mage predict", "mage serve", "mage export", "mage train", "mage eval",
                 "mage demo", "mage render", "mage view", "mage model", "mage model list", "mage model info",
                 "mage data", "mage data import", "mage data export", "mage data info", "mage data build",
                 "mage env"):
        assert prog in where, f"`{prog} --help` shows no example"
    for parser in _subparsers(build_parser()):  # and any command added later
        assert parser.prog in where, f"`{parser.prog} --help` shows no example"
    assert "README.md" in where and "stream_client.py" in where


def test_help_examples_use_the_bundled_samples():
    """An example that reads a motion file names one a new user has (sample:NAME), not a
    walk.bvh nobody ships; every sample named exists."""
    from mage.data.samples import PREFIX, sample_names

    lines = [line for _, line in help_examples()]
    assert not [line for line in lines if re.search(r"(?<![/\w])walk\.bvh\b", line.split(" -o ")[0])]
    used = {arg[len(PREFIX):] for line in lines for arg in _strip(line) if arg.startswith(PREFIX)}
    assert "walk" in used and used - {""} <= set(sample_names())
    for prog in ("mage demo", "mage predict", "mage data import", "mage data info", "mage render", "mage view"):
        assert any(PREFIX in line for p, line in help_examples() if p == prog), f"`{prog} --help`: no sample"


def _check_names(argv: list[str]) -> None:
    """What parsing cannot see: the names an example uses exist."""
    from mage.model.checkpoint_paths import available_checkpoints
    from mage.model.config import PRESET_DESCRIPTIONS

    def path_like(v):
        return "/" in v or v.startswith(".")

    for flag, value in zip(argv, argv[1:]):
        if flag == "--ckpt":
            assert path_like(value) or value in available_checkpoints(), \
                f"--ckpt {value}: not a packaged checkpoint ({available_checkpoints()}) nor a path"
        if flag == "--preset":
            assert value in PRESET_DESCRIPTIONS, f"--preset {value}: no such preset"
    if argv[:2] == ["model", "info"] and len(argv) > 2 and not argv[2].startswith("-"):
        assert argv[2] in PRESET_DESCRIPTIONS or path_like(argv[2]) or argv[2] in available_checkpoints()


@pytest.mark.parametrize("where, line", ALL, ids=[f"{w}: {line}"[:80] for w, line in ALL])
def test_example_parses(where, line):
    argv = _strip(line)[1:]  # without "mage"
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit:
        if exit.code == 0 and "--help" in argv:
            return
        pytest.fail(f"{where}: `{line}` does not parse (exit {exit.code})")
    _check_names(argv)


def test_stream_client_examples_parse():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import stream_client
    finally:
        sys.path.pop(0)
    lines = _commands(stream_client.__doc__, "python examples/stream_client.py")
    assert lines
    for line in lines:
        stream_client.build_parser().parse_args(_strip(line)[2:])


def test_help_keeps_example_lines_apart():
    """Example commands stay one per line (not run together into a paragraph)."""
    for p in _subparsers(build_parser()):
        text = p.format_help()
        for line in text.splitlines():
            line = line.split(" #", 1)[0]  # a comment may name another command
            assert len(re.findall(r"(?:^|\s)mage [a-z]", line)) <= 1, \
                f"{p.prog} --help runs commands together: {line!r}"


# Examples that run in a second or two (the sample-based ones read the clips shipped with
# the package); each runs in a temporary folder, and what it writes (-o / --out) must exist.
CHEAP = ["model list", "model info", "env", "data info sample:", "data info sample:walk",
         "data import sample:walk -o walk.npz", "data import sample:walk sample:run -o imported/",
         "data export sample:walk -o walk.bvh", "view sample:walk sample:run --out clips.html --no-serve",
         "predict --input sample:walk -o walk_pred.npz",
         "predict --input sample:run -o run_pred.bvh --mode online --steps 4"]


@pytest.mark.parametrize("line", CHEAP)
def test_cheap_examples_run(line, capsys, tmp_path, monkeypatch):
    assert any(_strip(ex)[1:] == line.split() for _, ex in ALL), f"`mage {line}` is no longer an example"
    monkeypatch.chdir(tmp_path)
    argv = line.split()
    assert main(argv) == 0
    assert capsys.readouterr().out.strip()
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-o", "--out"):
            assert (tmp_path / value).exists(), f"`mage {line}` did not write {value}"


def test_readme_python_blocks_run(tmp_path):
    """The README's Python API example runs and prints a plausible upright body."""
    blocks = readme_blocks("python")
    assert blocks
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"head (\d\.\d\d) m above the feet, which are ([+-]\d\.\d\d) m off the floor; "
                  r"(\d+\.\d) cm", out.stdout)
    assert m, out.stdout
    height, float_m, err_cm = (float(g) for g in m.groups())
    assert 1.3 < height < 1.9 and abs(float_m) < 0.12 and err_cm < 20
    m = re.search(r"head at z = (\d\.\d\d) m \(tracked (\d\.\d\d) m\)", out.stdout)
    assert m and abs(float(m.group(1)) - float(m.group(2))) < 0.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streaming_example_runs(tmp_path):
    """`mage serve` (defaults: the bundled model) + examples/stream_client.py, as the
    README's streaming section and the client's docstring say."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "mage.cli.main", "serve", "--port", str(port),
                               "--stop-after", "120"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env)
    try:
        for line in server.stdout:
            if "listening" in line:
                break
        else:
            pytest.fail("mage serve did not start")
        out = subprocess.run([sys.executable, str(ROOT / "examples" / "stream_client.py"), "--url",
                              f"ws://127.0.0.1:{port}", "--frames", "30", "--rate", "0"],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "sent 30 frames, 30 poses back, 0 errors" in out.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
