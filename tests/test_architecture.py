"""The layer rule of docs/ARCHITECTURE.md, checked: every import inside the package goes down its list.

The list is the first fenced block of docs/ARCHITECTURE.md. A line starts with the names it lists, modules
(``name.py``) or folders (``name/``), separated by spaces or commas; the first other word starts its description,
and a line that starts with no name continues the description of the line above. A line indented four spaces more
than a line naming one package lists that package's contents, in their own order; every module and folder of the
package is listed exactly once.

Each list is ordered on its own: a module may import what is on its own line or below it in the same list, and
anything inside those; between two packages, the lines of their common package decide. A package's
``__init__.py`` may import its own modules (re-exports); a module never imports its own package (its
``__init__.py`` imports the package's modules). ``medssl_lab/__init__.py`` holds only ``__version__`` and is
importable from everywhere.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "medssl_lab"
TOP = "medssl_lab"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.py|/)")


@dataclass(frozen=True)
class Entry:
    """Where a listed module or folder sits: the package whose list holds it and its line in that list."""

    parent: str
    line: int  # 0 for the first line of the parent's list


def parse_layers(block: str) -> dict[str, Entry]:
    """Dotted name (``medssl_lab.data.store.reader``) -> its place in the list; a ValueError names a bad line."""
    entries: dict[str, Entry] = {}
    lines_in: dict[str, int] = {}  # package -> lines of its list read so far
    open_packages = [TOP]  # open_packages[d]: the package whose list lines indented by 4 * d spaces belong to
    for number, text in enumerate(block.splitlines(), 1):
        words = text.replace(",", " ").split()
        names = []
        for word in words:
            if not NAME.fullmatch(word):
                break
            names.append(word)
        if not names:
            continue  # a description that goes on from the line above
        indent = len(text) - len(text.lstrip(" "))
        depth = indent // 4
        if indent % 4 or depth >= len(open_packages):
            raise ValueError(
                f"line {number} of the list ({text.strip()!r}) is indented by {indent} spaces; a list inside a "
                f"package is indented 4 spaces more than the line naming that one package, and a description "
                f"that goes on starts with a word that is not a module name"
            )
        parent = open_packages[depth]
        line = lines_in.get(parent, 0)
        lines_in[parent] = line + 1
        for name in names:
            dotted = f"{parent}.{name.removesuffix('.py').removesuffix('/')}"
            if dotted in entries:
                raise ValueError(f"line {number} of the list names {name} of {parent} a second time")
            entries[dotted] = Entry(parent, line)
        del open_packages[depth + 1 :]
        if len(names) == 1 and names[0].endswith("/"):
            open_packages.append(f"{parent}.{names[0].removesuffix('/')}")
    return entries


def documented_layers() -> dict[str, Entry]:
    return parse_layers((ROOT / "docs" / "ARCHITECTURE.md").read_text().split("```")[1])


def package_contents(package: Path = PACKAGE) -> dict[str, str]:
    """Every module (``.py`` but ``__init__.py``) and folder (but ``__pycache__``) of the package: name -> path."""
    found = {}
    for path in sorted(package.rglob("*")):
        if "__pycache__" in path.parts or path.name == "__init__.py":
            continue
        if path.suffix == ".py" or path.is_dir():
            dotted = ".".join(path.relative_to(package.parent).with_suffix("").parts)
            found[dotted] = str(path.relative_to(package.parent)) + ("/" if path.is_dir() else "")
    return found


def listing_problems(layers: dict[str, Entry], contents: dict[str, str]) -> list[str]:
    """What the list lacks (a module or folder of the package) and what it names that the package does not hold."""
    problems = [
        f"{path} is not listed: add it to the list of {path.rsplit('/', 2 if path.endswith('/') else 1)[0]}/"
        for name, path in contents.items()
        if name not in layers
    ]
    problems += [
        f"{name} is listed (in the list of {entry.parent}) but is not in the package"
        for name, entry in layers.items()
        if name not in contents
    ]
    return problems


def resolve(name: str, known: set[str]) -> str | None:
    """The module an imported name lives in: its longest prefix that is a module or package of medssl_lab."""
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts) or None


def why_upward(importer: str, target: str, layers: dict[str, Entry]) -> str | None:
    """Why ``importer`` may not import ``target`` (both dotted names), or None when the import goes down the list."""
    if target == TOP or target == importer or target.startswith(importer + "."):
        return None  # __version__; a package's __init__ importing its own modules
    if importer.startswith(target + "."):
        return f"its own package {target}, whose __init__.py imports the package's modules"
    a, b = importer.split("."), target.split(".")
    common = 0
    while a[common] == b[common]:
        common += 1
    mine, theirs = ".".join(a[: common + 1]), ".".join(b[: common + 1])
    if mine not in layers or theirs not in layers or layers[theirs].line >= layers[mine].line:
        return None  # not listed: test_every_module_is_listed names it
    return f"{theirs} is listed above {mine} in the list of {layers[mine].parent}"


def upward_imports(path: Path, source: str, layers: dict[str, Entry], known: set[str] | None = None) -> list[str]:
    """The imports in a package file's source (function-level and type-checking ones included) that go up the list."""
    known = set(layers) | set(package_contents()) | {TOP} if known is None else known
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    module = ".".join(parts[:-1] if path.name == "__init__.py" else parts)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    upward = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        targets = {resolve(name, known) for name in names if name.split(".")[0] == TOP}
        for target_module in sorted(t for t in targets if t):
            reason = why_upward(module, target_module, layers)
            if reason:
                upward.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target_module} ({reason})")
    return upward


def test_every_module_is_listed():
    problems = listing_problems(documented_layers(), package_contents())
    assert not problems, "the list in docs/ARCHITECTURE.md and the package differ:\n" + "\n".join(problems)


def test_imports_only_go_down():
    layers = documented_layers()
    upward = [line for path in sorted(PACKAGE.rglob("*.py")) for line in upward_imports(path, path.read_text(), layers)]
    assert not upward, "imports that go up the list in docs/ARCHITECTURE.md:\n" + "\n".join(upward)


def test_an_upward_import_is_reported():
    layers = documented_layers()
    probe = PACKAGE / "data" / "sampling.py"
    assert upward_imports(probe, "from ..pretrain import trainer\n", layers) == [
        "medssl_lab/data/sampling.py:1 imports medssl_lab.pretrain.trainer "
        "(medssl_lab.pretrain is listed above medssl_lab.data in the list of medssl_lab)"
    ]
    assert upward_imports(probe, "def f():\n    import medssl_lab.cli\n", layers) == [
        "medssl_lab/data/sampling.py:2 imports medssl_lab.cli "
        "(medssl_lab.cli is listed above medssl_lab.data in the list of medssl_lab)"
    ]
    assert upward_imports(probe, "from . import types\nfrom ..files import atomic_file\n", layers) == []


TOY = """
cli.py, site.py                 commands
data/                           loaders
    pool.py                     the pool
    store/                      pool stores
        reader.py               open_store
        layout.py rules.py      files; rules
    stack.py types.py           images on disk
                                (a description that goes on)
files.py                        atomic writes
"""


def toy_upward(relative: str, source: str) -> list[str]:
    layers = parse_layers(TOY)
    return upward_imports(PACKAGE / relative, source, layers, set(layers) | {TOP})


def test_an_upward_import_inside_a_nested_package_is_reported():
    assert toy_upward("data/store/rules.py", "from .reader import open_store\n") == [
        "medssl_lab/data/store/rules.py:1 imports medssl_lab.data.store.reader "
        "(medssl_lab.data.store.reader is listed above medssl_lab.data.store.rules in the list of "
        "medssl_lab.data.store)"
    ]
    assert toy_upward("data/store/reader.py", "from medssl_lab.data import pool\n") == [
        "medssl_lab/data/store/reader.py:1 imports medssl_lab.data.pool "
        "(medssl_lab.data.pool is listed above medssl_lab.data.store in the list of medssl_lab.data)"
    ]
    assert toy_upward("data/stack.py", "import medssl_lab.data\n") == [
        "medssl_lab/data/stack.py:1 imports medssl_lab.data "
        "(its own package medssl_lab.data, whose __init__.py imports the package's modules)"
    ]
    below = "from .layout import X\nfrom .rules import Y\nfrom ..types import Z\nfrom ... import __version__\n"
    assert toy_upward("data/store/reader.py", below + "from medssl_lab.files import atomic_file\n") == []
    assert toy_upward("data/store/layout.py", "from .rules import Rules\n") == []  # same line
    assert toy_upward("data/pool.py", "from .store.reader import open_store\n") == []
    assert toy_upward("data/__init__.py", "from .pool import build_pool\n") == []  # re-export


def test_a_missing_or_stale_module_is_reported():
    layers = parse_layers(TOY)
    contents = {name: name.replace(".", "/") + ".py" for name in layers}
    contents |= {"medssl_lab.data": "medssl_lab/data/", "medssl_lab.data.store": "medssl_lab/data/store/"}
    assert listing_problems(layers, contents) == []
    contents["medssl_lab.data.store.decode"] = "medssl_lab/data/store/decode.py"
    contents["medssl_lab.data.store.new"] = "medssl_lab/data/store/new/"
    del contents["medssl_lab.site"]
    assert listing_problems(layers, contents) == [
        "medssl_lab/data/store/decode.py is not listed: add it to the list of medssl_lab/data/store/",
        "medssl_lab/data/store/new/ is not listed: add it to the list of medssl_lab/data/store/",
        "medssl_lab.site is listed (in the list of medssl_lab) but is not in the package",
    ]


@pytest.mark.parametrize(
    "block",
    [
        "data/\n  pool.py   two spaces\n",
        "data/\n        pool.py   two levels at once\n",
        "cli.py site/     not one package\n    x.py\n",
        "data/   loaders\n    pool.py\n    pool.py   again\n",
    ],
)
def test_a_malformed_list_is_refused(block):
    with pytest.raises(ValueError, match="line"):
        parse_layers(block)


MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def oversized(path: Path, source: str) -> list[str]:
    """The functions (methods and nested ones included, decorators counted) and the module over the size limits."""
    where = path.relative_to(ROOT)
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{where}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
    return found


def test_functions_and_modules_are_small():
    found = [line for path in sorted(PACKAGE.rglob("*.py")) for line in oversized(path, path.read_text())]
    assert not found, "split these:\n" + "\n".join(found)


def test_an_oversized_function_or_module_is_reported():
    long_function = "def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    assert oversized(PACKAGE / "probe.py", long_function) == ["medssl_lab/probe.py:1 f: 81 lines (at most 80)"]
    assert oversized(PACKAGE / "probe.py", "@cache\ndef f():\n" + "    x = 1\n" * 78) == []
    assert oversized(PACKAGE / "probe.py", "x = 1\n" * 601) == ["medssl_lab/probe.py: 601 lines (at most 600)"]
