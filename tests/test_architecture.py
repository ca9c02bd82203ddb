"""The layer rule of docs/ARCHITECTURE.md, checked: every import inside the package goes down its list."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "medssl_lab"


def documented_layers() -> dict[str, int]:
    """Top-level module or package name -> its line in the architecture list, counted from the bottom."""
    block = (ROOT / "docs" / "ARCHITECTURE.md").read_text().split("```")[1]
    lines = [line for line in block.splitlines() if line and not line[0].isspace()]
    layers: dict[str, int] = {}
    for height, line in enumerate(reversed(lines)):
        for word in line.replace(",", " ").split():
            if not word.endswith((".py", "/")):
                break
            layers[word.removesuffix(".py").removesuffix("/")] = height
    return layers


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of medssl_lab.X...; None for the package's own top level (``medssl_lab.__version__``)."""
    return layers.get(module.split(".")[1])


def upward_imports(path: Path, source: str, layers: dict[str, int]) -> list[str]:
    """The imports in a package file's source (function-level ones included) that go up the list."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    own = layer_of(module, layers)
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
        for name in names:
            target_layer = layer_of(name, layers) if name.startswith("medssl_lab.") else None
            if own is not None and target_layer is not None and target_layer > own:
                upward.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    return upward


def test_every_module_is_in_the_documented_layers():
    tops = {path.name.removesuffix(".py") for path in PACKAGE.iterdir()}
    missing = sorted(tops - set(documented_layers()) - {"__init__", "__pycache__", "weights"})
    assert not missing, f"add {missing} to the list in docs/ARCHITECTURE.md"


def test_imports_only_go_down():
    layers = documented_layers()
    upward = [
        line
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "__init__.py"
        for line in upward_imports(path, path.read_text(), layers)
    ]
    assert not upward, "imports that go up the list in docs/ARCHITECTURE.md:\n" + "\n".join(upward)


def test_an_upward_import_is_reported():
    layers = documented_layers()
    probe = PACKAGE / "data" / "probe.py"
    assert upward_imports(probe, "from ..pretrain import trainer\n", layers) == [
        "medssl_lab/data/probe.py:1 imports medssl_lab.pretrain.trainer"
    ]
    assert upward_imports(probe, "def f():\n    import medssl_lab.cli\n", layers) == [
        "medssl_lab/data/probe.py:2 imports medssl_lab.cli"
    ]
    assert upward_imports(probe, "from . import stack\nfrom ..files import atomic_file\n", layers) == []
