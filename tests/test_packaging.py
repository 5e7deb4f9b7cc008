"""What the README tells a user to install is what pyproject.toml declares."""

import re
from pathlib import Path

import tomllib
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def test_extras_are_named_as_pip_publishes_them_and_the_readme_uses_those_names():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    # pip normalises extra names ("lm_eval" is published as "lm-eval"): a non-normal name installs nothing.
    assert all(canonicalize_name(name) == name for name in extras), sorted(extras)
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *ROOT.glob("docs/*.md")])
    named = set(re.findall(r'pip install -e "\.\[([^\]]+)\]"', docs))
    assert named, "the README names no extra"
    for group in named:
        for extra in group.split(","):
            assert extra in extras, f"the docs install extra {extra!r}, pyproject declares {sorted(extras)}"


def test_the_lm_eval_adapter_test_can_run_here():
    # CI installs the dev extra, which brings the harness: its test must run, not be skipped.
    import lm_eval  # noqa: F401
