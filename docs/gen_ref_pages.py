"""Generate the API reference: one page per public module of ``src/mage``.

Run by the mkdocs-gen-files plugin at every build (nothing is written into docs/), so
that moving, adding or removing a module needs no change here. Skipped: private modules
(a name starting with ``_``, except a package's ``__init__``, which becomes the package's
page), ``__main__``, and anything that is not Python source (static assets, rig maps,
checkpoints).
"""

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "mage"

nav = mkdocs_gen_files.Nav()

for path in sorted(PACKAGE.rglob("*.py")):
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
        doc_path = Path(*parts, "index.md")
    else:
        doc_path = Path(*parts).with_suffix(".md")
    if any(part.startswith("_") for part in parts) or not (path.parent / "__init__.py").exists():
        continue  # a private module, __main__, or a script inside an asset folder
    ident = ".".join(parts)
    nav[parts] = doc_path.as_posix()
    with mkdocs_gen_files.open(Path("api", doc_path), "w") as page:
        page.write(f"::: {ident}\n")
    mkdocs_gen_files.set_edit_path(Path("api", doc_path), path.relative_to(ROOT))

with mkdocs_gen_files.open("api/SUMMARY.md", "w") as summary:
    summary.writelines(nav.build_literate_nav())
