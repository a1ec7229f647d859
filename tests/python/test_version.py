"""The package version is the workspace version in Cargo.toml (the one place it is written)."""

import importlib.metadata
import pathlib
import re

import tasker


def test_version_is_the_workspace_version() -> None:
    assert tasker.__version__ == importlib.metadata.version("tasker")
    cargo = pathlib.Path(__file__).resolve().parents[2] / "Cargo.toml"
    workspace = re.search(r'^version = "(.*)"$', cargo.read_text(), re.M)
    assert workspace is not None
    assert tasker.__version__ == workspace.group(1)
