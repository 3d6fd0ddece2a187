"""The repository explains itself: the README's folder table names every package, and the packages import
each other only in the directions docs/architecture.md draws.

These read the files as they are (no import of the code), so they hold for the whole tree at once.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the parts of the product and what each may not import (docs/architecture.md, "Which way the imports go")
FORBIDDEN = {
    "billing": {"b2bua", "b2bua.node", "webhook", "media", "demo"},
    "media": {"b2bua", "b2bua.node", "webhook", "billing", "demo"},
    "webhook": {"b2bua", "b2bua.node", "media", "demo"},
    "b2bua": {"b2bua.node", "webhook", "demo"},
}


def readme_folders() -> list[str]:
    """The folders the README's table "The folders" names, as written (``b2bua/sip/``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## The folders\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)/` \|", section, flags=re.MULTILINE)


def packages() -> list[str]:
    """Every top-level package of the repository, and every sub-package of b2bua/, as folder paths."""
    top = [p.parent.name for p in ROOT.glob("*/__init__.py")]
    b2bua = [f"b2bua/{p.parent.name}" for p in (ROOT / "b2bua").glob("*/__init__.py")]
    return sorted(top + b2bua)


def test_the_readme_folder_table_names_every_package_and_b2bua_sub_package():
    """A package added (or moved) without its row in the README's folder table fails here, and so does a row
    whose folder is gone."""
    named = readme_folders()
    assert "b2bua/node" in named and "b2bua/sip" in named and "demo" in named
    missing = [p for p in packages() if p not in named]
    assert not missing, f"packages without a row in the README's folder table: {missing}"
    gone = [f for f in named if not (ROOT / f).is_dir()]
    assert not gone, f"rows of the README's folder table whose folder does not exist: {gone}"


def part_of(module: str) -> str | None:
    """The part a module belongs to, for the import rules: ``b2bua.node`` is a part of its own."""
    if module == "b2bua.node" or module.startswith("b2bua.node."):
        return "b2bua.node"
    top = module.split(".", 1)[0]
    return top if top in ("b2bua", "billing", "media", "webhook", "demo") else None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a file, those inside functions and TYPE_CHECKING included."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # ``from b2bua import node`` names the sub-package in the alias
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def test_the_parts_import_each_other_only_downwards():
    """billing/ and media/ import no other part, webhook/ only billing/, the B2BUA neither its node nor the web
    side nor the demo: b2bua/node/ is the one place where they meet."""
    wrong = []
    for part, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / part).rglob("*.py")):
            own = part_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
            if own != part:
                continue        # b2bua/node/ under b2bua/: a part of its own, free to import every other
            for line, name in imports_of(path):
                if part_of(name) in forbidden:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: imports {name}")
    assert not wrong, "\n".join(wrong)


def shipped_data_patterns() -> dict[str, list[str]]:
    """setup.py's ``package_data``, read from the file (the installed wheel carries what it names)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "package_data":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no package_data")


def is_shipped(relative: Path, patterns: list[str]) -> bool:
    """Whether a file (relative to its package) matches one of the package's patterns, part by part as
    setuptools globs them (``*`` stays within one folder)."""
    return any(len(Path(p).parts) == len(relative.parts)
               and all(fnmatch.fnmatchcase(part, pat) for part, pat in zip(relative.parts, Path(p).parts))
               for p in patterns)


def test_every_data_file_of_the_packages_is_in_the_wheel():
    """A file a package reads at run time (a template, a stylesheet, a prompt, a migration) that setup.py does
    not name is missing from a real, non-editable install: the node then fails where a checkout works."""
    data = shipped_data_patterns()
    missing = []
    for package in ("b2bua", "billing", "media", "webhook", "demo"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            if not is_shipped(path.relative_to(ROOT / package), data.get(package, [])):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"data files setup.py's package_data does not ship: {missing}"
