"""Reading a config file: YAML in, a validated model out, or a ConfigError that names the file,
the key and what is wrong (``config/alerts.yaml: rules[0].window: '7x' is not a duration``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from socialpulse.core.config import (
    ConfigError,
)
from socialpulse.core.paths import project_home

M = TypeVar("M", bound=BaseModel)


def default_config_dir() -> Path:
    """The config folder: $SOCIALPULSE_CONFIG_DIR, else config/ in the project home."""
    env = os.environ.get("SOCIALPULSE_CONFIG_DIR")
    return Path(env) if env else project_home() / "config"


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _explain(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling against the documented keys)"
    if error["type"] == "missing":
        return "required key is missing"
    return message


def read_yaml(path: Path, shown: str) -> dict[str, Any]:
    """A YAML file's top-level mapping; ConfigError naming ``shown`` when it is not one."""
    if not path.is_file():
        raise ConfigError(f"{shown}: file not found (copy it from the project's config/ folder)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}: (top level): expected a mapping of keys, got {type(data).__name__}"
        )
    return data


def validate_model(model: type[M], data: dict[str, Any], shown: str) -> M:
    """``data`` as ``model``; ConfigError with one line per problem: file, key, what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{shown}: {_location(e['loc'])}: {_explain(dict(e))}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def shown_path(path: Path) -> str:
    """A config file's path as error messages show it: relative to the working folder if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
