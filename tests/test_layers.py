"""The one import rule of CONTRIBUTING.md: a layer imports only the layers below it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "litllm"
LAYERS = [
    "errors",
    "_moved",
    "report",
    "corpus",
    "model",
    "data",
    "parallel",
    "prepare",
    "infer",
    "serve",
    "train",
    "interop",
    "pipeline",
    "cli",
    "__main__",
]
"""Bottom to top (``cli`` imports the verbs by name, when one runs)."""
NO_LIGHTNING = {"errors", "_moved", "report", "corpus", "model", "prepare", "infer", "serve", "interop", "pipeline"}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_import_goes_down_the_layers():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(path)
        if layer == "__init__":
            continue
        for name in imports_of(path):
            parts = name.split(".")
            below = parts[0] == "litllm" and len(parts) > 1 and parts[1] in LAYERS
            if below and LAYERS.index(parts[1]) > LAYERS.index(layer):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
            if parts[0] == "lightning" and layer in NO_LIGHTNING:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name} (this layer knows nothing of Lightning)")
    assert not wrong, "\n".join(wrong)


def test_every_layer_is_listed():
    tops = {layer_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert tops == set(LAYERS)


def test_no_module_is_over_350_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 350
    }
    assert not long, long


def test_model_directory_file_names_are_written_in_one_module():
    names = ('"model.safetensors"', '"config.json"', '"tokenizer.json"', '"template.json"')
    holders = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if any(n in p.read_text() for n in names)}
    # hf_files.py names Hugging Face's files (the same strings in another format's directory)
    assert holders == {"model/model_dir.py", "interop/convert/hf_files.py"}, holders
