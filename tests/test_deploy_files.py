"""The PaaS files agree with each other and with the code: requirements.txt (hashed lock),
.python-version, Procfile, app.json (Heroku), render.yaml (Render), .env.example and README.

Sources for the structural schemas below (field names only; the schemas are written here):
* app.json: Heroku Dev Center, "app.json Schema", https://devcenter.heroku.com/articles/app-json-schema
  (name 3-30 characters, description, keywords, env values as strings or objects with
  description/value/required/generator "secret", formation {type: {quantity, size}}, addons as
  strings or {plan, as, options}, buildpacks [{url}], stack, scripts, environments).
* render.yaml: Render, "Blueprint YAML Reference", https://render.com/docs/blueprint-spec
  (services with type/name/runtime/buildCommand/startCommand/preDeployCommand/healthCheckPath/
  plan/numInstances/envVars; envVars entries with value, generateValue, sync: false,
  fromDatabase {name, property} or fromService {type, name, envVarKey}; databases with
  name/databaseName/user/plan).
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

_ENV_NAME = {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"}

APP_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "description", "formation", "addons", "env"],
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 30},
        "description": {"type": "string", "maxLength": 140},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "website": {"type": "string"},
        "repository": {"type": "string"},
        "logo": {"type": "string"},
        "success_url": {"type": "string"},
        "stack": {"type": "string"},
        "image": {"type": "string"},
        "scripts": {"type": "object", "additionalProperties": {"type": "string"}},
        "environments": {"type": "object"},
        "buildpacks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["url"],
                "additionalProperties": False,
                "properties": {"url": {"type": "string"}},
            },
        },
        "formation": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["quantity"],
                "additionalProperties": False,
                "properties": {
                    "quantity": {"type": "integer", "minimum": 0},
                    "size": {"type": "string"},
                },
            },
        },
        "addons": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "required": ["plan"],
                        "additionalProperties": False,
                        "properties": {
                            "plan": {"type": "string"},
                            "as": {"type": "string"},
                            "options": {"type": "object"},
                        },
                    },
                ]
            },
        },
        "env": {
            "type": "object",
            "propertyNames": _ENV_NAME,
            "additionalProperties": {
                "type": "object",
                "required": ["description"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string", "minLength": 10},
                    "value": {"type": "string"},
                    "required": {"type": "boolean"},
                    "generator": {"enum": ["secret"]},
                },
            },
        },
    },
}

_RENDER_ENV_VAR: dict[str, Any] = {
    "type": "object",
    "required": ["key"],
    "additionalProperties": False,
    "properties": {
        "key": _ENV_NAME,
        "value": {"type": "string"},
        "generateValue": {"const": True},
        "sync": {"const": False},
        "fromDatabase": {
            "type": "object",
            "required": ["name", "property"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "property": {
                    "enum": ["connectionString", "host", "port", "user", "password", "database"]
                },
            },
        },
        "fromService": {
            "type": "object",
            "required": ["type", "name"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["web", "worker", "pserv", "cron", "keyvalue", "redis"]},
                "name": {"type": "string"},
                "envVarKey": {"type": "string"},
                "property": {"type": "string"},
            },
        },
    },
    # exactly one source per variable
    "oneOf": [
        {"required": ["value"]},
        {"required": ["generateValue"]},
        {"required": ["sync"]},
        {"required": ["fromDatabase"]},
        {"required": ["fromService"]},
    ],
}

RENDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["services", "databases"],
    "properties": {
        "databases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "databaseName": {"type": "string"},
                    "user": {"type": "string"},
                    "plan": {"type": "string"},
                    "region": {"type": "string"},
                    "postgresMajorVersion": {"type": "string"},
                },
            },
        },
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "name", "runtime", "buildCommand", "startCommand"],
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["web", "worker", "pserv", "cron"]},
                    "name": {"type": "string"},
                    "runtime": {"enum": ["python"]},
                    "plan": {"type": "string"},
                    "region": {"type": "string"},
                    "buildCommand": {"type": "string"},
                    "startCommand": {"type": "string"},
                    "preDeployCommand": {"type": "string"},
                    "healthCheckPath": {"type": "string", "pattern": "^/"},
                    "numInstances": {"type": "integer", "minimum": 1},
                    "autoDeploy": {"type": "boolean"},
                    "envVars": {"type": "array", "items": _RENDER_ENV_VAR},
                },
            },
        },
    },
}


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = [line.split(":", 1) for line in lines if line.strip()]
    return {kind.strip(): command.strip() for kind, command in entries}


def app_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "app.json").read_text())
    return data


def render_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "render.yaml").read_text())
    return data


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def config_variables() -> tuple[set[str], set[str]]:
    """(every variable bridge/config.py reads, the ones it requires), read from its source:
    ``need("X")`` is required, ``env.get("X", ...)`` optional."""
    tree = ast.parse((ROOT / "bridge" / "config.py").read_text())
    read: set[str] = set()
    required: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "need":
            read.add(first.value)
            required.add(first.value)
        elif (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
        ):
            read.add(first.value)
    return read, required


def locked(lock: str = "requirements.txt") -> dict[str, tuple[Version, list[str]]]:
    """A hashed lock (requirements.txt by default): canonical name -> (pinned version, its
    sha256 hashes)."""
    text = (ROOT / lock).read_text().replace("\\\n", " ")
    pins: dict[str, tuple[Version, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *options = line.split(" --hash=")
        name, sep, version = spec.strip().partition("==")
        assert sep, f"{lock}: {spec.strip()!r} is not pinned with =="
        pins[canonicalize_name(name)] = (Version(version), [o.strip() for o in options])
    return pins


def runtime_requirements() -> list[Requirement]:
    project = pyproject()["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["postgres"]
    return [Requirement(d) for d in deps]


# -- the lock --------------------------------------------------------------------------------


def test_config_variables_are_read_from_the_source() -> None:
    read, required = config_variables()
    assert {"SLACK_BOT_TOKEN", "CALLBACK_TOKEN", "PUBLIC_URL", "SMS_STORES"} <= required
    assert {"DATABASE_URL", "PORT", "OPS_CHANNEL", "BLAST_MODE"} <= read - required


def test_lock_pins_every_runtime_dependency_with_hashes() -> None:
    pins = locked()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"requirements.txt does not lock {requirement.name}"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.txt pins {name}=={version}, outside pyproject's {requirement}"
        )
        for extra in requirement.extras:  # psycopg[binary] -> psycopg-binary
            assert canonicalize_name(f"{name}-{extra}") in pins
    for name, (_, hashes) in pins.items():
        assert hashes, f"requirements.txt: {name} has no --hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


@pytest.mark.parametrize(("lock", "extra"), [("requirements-test.txt", "test"),
                                             ("requirements-dev.txt", "dev")])  # fmt: skip
def test_the_test_and_dev_locks_pin_the_runtime_locks_versions_with_hashes(
    lock: str, extra: str
) -> None:
    """CI installs the test tools from requirements-test.txt (and ruff, mypy from
    requirements-dev.txt) with --require-hashes: every package hashed, every runtime package at
    the version the PaaS build installs, every tool within pyproject's extra."""
    runtime, pins = locked(), locked(lock)
    differ = {
        name: (str(version), str(pins[name][0]))
        for name, (version, _) in runtime.items()
        if name in pins and pins[name][0] != version
    }
    assert differ == {}, f"{lock} pins other versions than requirements.txt"
    assert sorted(set(runtime) - set(pins)) == []
    for text in pyproject()["project"]["optional-dependencies"][extra]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not lock {requirement.name}"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (lock, name)
    for name, (_, hashes) in pins.items():
        assert hashes, f"{lock}: {name} has no --hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    assert "smsbridge" not in pins  # pip refuses a local directory in hash-checking mode


def test_ci_runs_the_readmes_test_command_verbatim_from_the_hashed_lock() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick_start, flags=re.S)
    assert len(commands) == 2
    test_command = commands[1]
    assert "--require-hashes -r requirements-test.txt" in test_command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_dependency_floors_exclude_known_advisories() -> None:
    specs = {canonicalize_name(r.name): r.specifier for r in runtime_requirements()}
    assert not specs["werkzeug"].contains("3.0.5") and specs["werkzeug"].contains("3.0.6")
    assert not specs["h11"].contains("0.15.0") and specs["h11"].contains("0.16.0")
    assert not specs["flask"].contains("3.1.0") and specs["flask"].contains("3.1.1")
    assert "psycopg-pool" in specs and "psycopg" in specs


def test_python_version_file_matches_requires_python() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    assert version == "3.11"
    assert pyproject()["project"]["requires-python"] == ">=3.11"


# -- processes -------------------------------------------------------------------------------


def test_procfile_processes() -> None:
    processes = procfile()
    assert sorted(processes) == ["release", "web", "worker"]
    web = processes["web"]
    assert web.startswith("gunicorn ") and web.endswith(" bot.wsgi:app")
    assert "--bind 0.0.0.0:$PORT" in web
    assert "--workers" not in web  # gunicorn takes WEB_CONCURRENCY: any number of processes
    assert processes["worker"] == "python -m bot.cli worker"
    assert processes["release"] == "python -m bot.cli migrate"


def test_app_json_is_a_valid_heroku_manifest() -> None:
    jsonschema.validate(app_json(), APP_JSON_SCHEMA)


def test_render_yaml_is_a_valid_blueprint() -> None:
    jsonschema.validate(render_yaml(), RENDER_SCHEMA)


def test_process_types_agree_across_procfile_app_json_and_render() -> None:
    processes = procfile()
    long_running = sorted(set(processes) - {"release"})
    app = app_json()
    assert sorted(app["formation"]) == long_running
    assert all(f["quantity"] >= 1 for f in app["formation"].values())
    services = {s["type"]: s for s in render_yaml()["services"]}
    assert sorted(services) == long_running
    for kind in long_running:
        assert services[kind]["startCommand"] == processes[kind]
        assert services[kind]["buildCommand"] == "pip install --require-hashes -r requirements.txt"
    assert services["web"]["preDeployCommand"] == processes["release"]
    assert services["web"]["healthCheckPath"] == "/livez"


def test_every_config_variable_is_prompted_on_heroku() -> None:
    read, required = config_variables()
    app = app_json()
    env = app["env"]
    # PORT is set by Heroku; DATABASE_URL comes from the Postgres add-on.
    assert sorted(read - set(env)) == ["DATABASE_URL", "PORT"]
    assert sorted(set(env) - read) == []
    assert {"plan": "heroku-postgresql:essential-0", "as": "DATABASE"} in app["addons"]
    for name in read - {"DATABASE_URL", "PORT"}:
        entry = env[name]
        if name in required:
            assert entry.get("required", True) is True or entry.get("generator") == "secret"
            assert "value" not in entry, f"{name}: a required secret has no default"
        else:
            assert entry["required"] is False, name
    assert env["CALLBACK_TOKEN"]["generator"] == "secret"
    assert env["SLACK_API_URL"]["value"] == "https://slack.com/api/"
    assert env["CRMTEXT_API_URL"]["value"] == "https://restapi.crmtext.com/smapi/rest"


def test_every_config_variable_is_set_on_render() -> None:
    read, _ = config_variables()
    blueprint = render_yaml()
    databases = {d["name"] for d in blueprint["databases"]}
    web_name = next(s["name"] for s in blueprint["services"] if s["type"] == "web")
    for service in blueprint["services"]:
        env = {v["key"]: v for v in service["envVars"]}
        assert sorted(read - set(env)) == ["PORT"], service["name"]  # Render sets PORT
        assert sorted(set(env) - read) == [], service["name"]
        database = env["DATABASE_URL"]["fromDatabase"]
        assert database["name"] in databases and database["property"] == "connectionString"
        for name, entry in env.items():
            if "fromService" in entry:  # the worker copies what the web service holds
                assert entry["fromService"] == {"type": "web", "name": web_name, "envVarKey": name}
    web = next(s for s in blueprint["services"] if s["type"] == "web")
    assert {"key": "CALLBACK_TOKEN", "generateValue": True} in web["envVars"]


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_config_variable_is_documented(document: str) -> None:
    read, _ = config_variables()
    text = (ROOT / document).read_text()
    if document == ".env.example":
        missing = [n for n in read if not re.search(rf"^{n}=", text, re.MULTILINE)]
    else:
        missing = [n for n in read if f"`{n}`" not in text]
    assert sorted(missing) == []


def test_readme_deploy_section_matches_the_files() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[
        readme.index("## Deploy\n") : readme.index("\n## ", readme.index("## Deploy\n") + 1)
    ]
    processes = procfile()
    for command in (processes["worker"], processes["release"]):
        assert f"`{command}`" in section
    web = next(s for s in render_yaml()["services"] if s["type"] == "web")
    flat = " ".join(section.split())
    assert f"health check path `{web['healthCheckPath']}` answers 200" in flat
    assert "`heroku features:enable preboot`" in section
    assert "`heroku ps:scale web=1 worker=1`" in section
    assert "python -m bot.cli doctor" in section
