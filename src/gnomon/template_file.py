"""The templates file: named, parameterised jobs defined in TOML — its format, its loader, and
each template's parameter model. (Serving them as a use case is `gnomon.service.templates`.)

A template declares its parameters (type, required, default), an argv with `{name}`
placeholders, plain environment, secrets by name (variable -> a secret in the settings, never
in argv or the ledger), an executor and its options. Triggering one validates the parameters
with a model built from the declaration and creates a run of the template's job.

    [templates.extractor]
    executor = "slurm"
    argv = ["./submit_script.sh", "parse", "-p", "{parser}", "-d", "{thing_uuid}"]
    faces = ["tsm"]
    params.parser = { type = "string" }
    params.thing_uuid = { type = "uuid" }
    secrets = { MQTT_PASSWORD = "tsm_mqtt_password" }

A relative argv[0] starting with `./` is resolved against the file's directory. No value of
a parameter may read as an option: text, URLs and — where a placeholder starts an argv item —
integers must not start with '-'.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from gnomon.domain import (
    ARGV_PLACEHOLDER,
    RetryPolicy,
    slurm_env_refused,
    validate_executor,
    validate_executor_options,
)

_STRICT = ConfigDict(extra="forbid")
NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _no_flag(v: str) -> str:
    if v.startswith("-"):
        raise ValueError("must not start with '-' (it would read as an option)")
    return v


def _not_negative(v: int) -> int:
    if v < 0:
        raise ValueError("must not be negative here (it would read as an option)")
    return v


def _url(v: str) -> str:
    parts = urlsplit(v)
    if not parts.scheme or not parts.netloc:
        raise ValueError("must be a URL with a scheme and a host")
    return v


Text = Annotated[StrictStr, Field(min_length=1, max_length=4096), AfterValidator(_no_flag)]
Url = Annotated[StrictStr, Field(max_length=4096), AfterValidator(_no_flag), AfterValidator(_url)]
Count = Annotated[StrictInt, AfterValidator(_not_negative)]


class ParamSpec(BaseModel):
    model_config = _STRICT
    type: Literal["string", "int", "uuid", "url", "enum"] = "string"
    required: bool = True
    default: str | int | None = None
    values: list[str] = Field(default_factory=list, description="The choices of an enum.")
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum needs `values`")
        if not self.required and self.default is None:
            raise ValueError("an optional parameter needs a `default` (its argv item needs one)")
        return self

    def annotation(self, leading: bool = False) -> Any:
        """The parameter's type; `leading`: its placeholder starts an argv item."""
        return {
            "string": Text,
            "int": Count if leading else StrictInt,
            "uuid": UUID,
            "url": Url,
            "enum": Literal[tuple(self.values)] if self.values else str,
        }[self.type]


class Template(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=NAME)
    description: str | None = None
    space: str = "default"
    executor: str = "slurm"
    executor_options: dict[str, Any] = Field(default_factory=dict)
    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    constants: dict[str, str] = Field(
        default_factory=dict, description="Fixed values for argv placeholders (not secrets)."
    )
    timeout_s: float | None = Field(default=None, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    faces: list[str] = Field(default_factory=list, description="Foreign faces serving it.")

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str) -> str:
        return validate_executor(v)

    @field_validator("env", "secrets")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not re.match(ENV_NAME, k)]
        if bad:
            raise ValueError(f"not environment variable names: {', '.join(bad)}")
        return v

    @model_validator(mode="after")
    def _placeholders(self) -> Template:
        self.executor_options = validate_executor_options(self.executor, self.executor_options)
        steering = slurm_env_refused({"env": self.env, "secrets": self.secrets})
        if self.executor == "slurm" and steering:
            raise ValueError(f"{steering}: variables that steer sbatch are not accepted")
        known = set(self.params) | set(self.constants)
        for item in self.argv:
            for name in ARGV_PLACEHOLDER.findall(item):
                if name not in known:
                    raise ValueError(f"argv uses '{{{name}}}', which is no param or constant")
        clash = set(self.params) & set(self.constants)
        if clash:
            raise ValueError(f"both a param and a constant: {', '.join(sorted(clash))}")
        return self

    @cached_property
    def model(self) -> type[BaseModel]:
        leading = {m.group(1) for item in self.argv if (m := ARGV_PLACEHOLDER.match(item))}
        fields: dict[str, Any] = {
            name: (p.annotation(name in leading), ... if p.required else p.default)
            for name, p in self.params.items()
        }
        return create_model(f"{self.name}_params", __config__=ConfigDict(extra="ignore"), **fields)

    def validate_params(self, given: Any) -> dict[str, Any]:
        """The request's parameters, checked; JSON-ready. Raises ValidationError."""
        return self.model.model_validate(given).model_dump(mode="json")

    @property
    def digest(self) -> str:
        """Changes whenever the definition does (the job is then replaced)."""
        data = self.model_dump(mode="json")
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def action(self) -> dict[str, Any]:
        return {
            "type": "shell",
            "command": self.argv,
            "argv_params": True,
            "cwd": self.cwd,
            "env": self.env,
            "secrets": self.secrets,
        }

    def public(self) -> dict[str, Any]:
        """What the API shows (secrets appear by name only, as in the file)."""
        return self.model_dump(mode="json")


def load(path: Path) -> dict[str, Template]:
    """Templates from a TOML file; a clear ValueError when it is wrong."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"templates file {path}: {exc}") from None
    found: dict[str, Template] = {}
    for name, body in (doc.get("templates") or {}).items():
        if not isinstance(body, dict):
            raise ValueError(f"templates file {path}: [templates.{name}] must be a table")
        argv = list(body.get("argv") or [])
        if argv and isinstance(argv[0], str) and argv[0].startswith("./"):
            argv[0] = str((path.parent / argv[0]).resolve())
        try:
            found[name] = Template.model_validate({**body, "argv": argv, "name": name})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValueError(f"templates file {path}: {name}.{where}: {first['msg']}") from None
    return found


def describe_error(exc: ValidationError) -> str:
    """One line naming the first bad or missing parameter."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    if first.get("type") == "missing":
        return f"missing parameter '{where}'"
    return f"parameter '{where}': {first['msg']}"
