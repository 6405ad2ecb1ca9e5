"""The templates file (gnomon.template_file): the format, parameter schemas, argv mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gnomon.domain import render_argv, secret_env, shell_command
from gnomon.template_file import describe_error, load

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tsm" / "templates.toml"
UUID = "ce2b4fb6-d9de-11eb-a236-125e5a40a845"


def test_the_example_loads() -> None:
    found = load(EXAMPLE)
    assert set(found) == {"extractor", "qaqc"}
    extractor = found["extractor"]
    assert Path(extractor.argv[0]).is_absolute() and extractor.argv[0].endswith("submit_script.sh")
    assert extractor.executor_options == {"job_name": "parse"}
    assert extractor.faces == ["tsm"]


def test_params_are_checked_and_mapped() -> None:
    t = load(EXAMPLE)["qaqc"]
    values = t.validate_params({"target": "db", "thing_uuid": UUID.upper(), "extra": 1})
    assert values == {"target": "db", "thing_uuid": UUID}
    argv = render_argv(t.argv, {**t.constants, **values})
    assert argv[1:] == ["run-qaqc", "-t", "db", "-d", UUID, "-m", "mqtt.localhost:1883"]
    for bad, word in [
        ({"target": "db"}, "missing parameter 'thing_uuid'"),
        ({"target": 5, "thing_uuid": UUID}, "parameter 'target'"),
        ({"target": "-rf", "thing_uuid": UUID}, "must not start with '-'"),
        ({"target": "", "thing_uuid": UUID}, "parameter 'target'"),
    ]:
        with pytest.raises(ValidationError) as err:
            t.validate_params(bad)
        assert word in describe_error(err.value)


def test_types_int_url_enum_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        """
        [templates.t]
        executor = "local"
        argv = ["/bin/echo", "{n}", "{u}", "{mode}", "{opt}"]
        params.n = { type = "int" }
        params.u = { type = "url" }
        params.mode = { type = "enum", values = ["fast", "slow"] }
        params.opt = { type = "string", required = false, default = "x" }
        """
    )
    t = load(path)["t"]
    assert t.validate_params({"n": 3, "u": "https://a.b/c", "mode": "fast"})["opt"] == "x"
    for bad in (
        {"n": "3", "u": "https://a.b", "mode": "fast"},
        {"n": 3, "u": "a.b/c", "mode": "fast"},
        {"n": 3, "u": "https://a.b", "mode": "medium"},
    ):
        with pytest.raises(ValidationError):
            t.validate_params(bad)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ('argv = ["/bin/echo", "{nope}"]', "no param or constant"),
        ('argv = ["x"]\nexecutor = "mars"', "executor"),
        ('argv = ["x"]\nparams.p = { type = "enum" }', "enum needs"),
        ('argv = ["x"]\nparams.p = { required = false }', "needs a `default`"),
        ('argv = ["x"]\nexecutor_options = { extra = ["--uid=0"] }', "not allowed"),
        ('argv = ["x"]\nsecrets = { "BAD-NAME" = "s" }', "environment variable"),
        ('argv = ["x"]\nenv = { SBATCH_ERROR = "/tmp/e" }', "steer sbatch"),
        ('argv = ["x"]\nsecrets = { SLURM_CONF = "s" }', "steer sbatch"),
    ],
)
def test_bad_files_are_refused_clearly(tmp_path: Path, body: str, complaint: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(f"[templates.t]\n{body}\n")
    with pytest.raises(ValueError, match="templates file") as err:
        load(path)
    assert complaint in str(err.value)


def test_an_int_never_becomes_an_option(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        """
        [templates.t]
        executor = "local"
        argv = ["/bin/tool", "{n}", "--offset={m}"]
        params.n = { type = "int" }
        params.m = { type = "int" }
        """
    )
    t = load(path)["t"]
    with pytest.raises(ValidationError) as err:
        t.validate_params({"n": -5, "m": 1})
    assert "parameter 'n'" in describe_error(err.value) and "option" in describe_error(err.value)
    assert t.validate_params({"n": 0, "m": -5}) == {"n": 0, "m": -5}  # inside an item: a value


def test_argv_params_and_secrets_on_shell_actions() -> None:
    action = {"command": ["run", "--x={x}", "{y}"], "argv_params": True, "secrets": {"PW": "pw"}}
    assert shell_command(action, {"x": 1, "y": "a b"}) == ["run", "--x=1", "a b"]
    assert shell_command({"command": ["{x}"]}, {"x": 1}) == ["{x}"]  # only when asked
    with pytest.raises(KeyError):
        shell_command(action, {"x": 1})
    assert secret_env(action, {"pw": "s3"}) == {"PW": "s3"}
    with pytest.raises(KeyError):
        secret_env(action, {})
