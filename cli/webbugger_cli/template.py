"""Reading template.yaml: the one definition of tables and routes, for the local stack and tests.

Only what local runs need is interpreted: DynamoDB table definitions, the HTTP API routes of each
function, and function environments with ``!Ref`` to tables and parameters resolved.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_TEMPLATE_NAME = "template.yaml"
# The values of template.yaml's FrontDoor parameter (what CloudFront forwards the tracking routes
# to), the default first; tests/template checks them against the template.
FRONT_DOORS = ("http-api", "function-url")
# Key-schema properties a local CreateTable call understands (billing is always on demand).
_TABLE_KEYS = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "StreamSpecification")


class TemplateError(Exception):
    """template.yaml is missing or does not say what local runs need."""


# libyaml's loader where PyYAML was built with it: template.yaml parses in ~9 ms instead of ~80,
# which every command that names the local tables pays (bench/cli.py).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[misc]
    """A YAML loader that keeps CloudFormation's short-form intrinsics (``!Ref X`` → ``{"Ref": X}``)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: the working directory) with a template.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / _TEMPLATE_NAME).is_file():
            return candidate
    raise TemplateError(f"no {_TEMPLATE_NAME} in {here} or above: run this from the webbugger project")


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP API route and the function that serves it."""

    method: str
    path: str
    function: str
    code_uri: Path
    handler: str

    @property
    def pattern(self) -> re.Pattern[str]:
        """The route's path as a regex; ``{name}`` matches one segment, ``{name+}`` the rest."""
        regex = ""
        for literal, name, greedy in re.findall(r"([^{]*)(?:\{(\w+)(\+?)\})?", self.path):
            regex += re.escape(literal)
            if name:
                regex += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
        return re.compile(regex + r"\Z")


class Template:
    """A parsed template.yaml."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.parent
        try:
            self.data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
        except (OSError, yaml.YAMLError) as exc:
            raise TemplateError(f"cannot read {path}: {exc}") from exc
        self.resources: dict[str, dict[str, Any]] = self.data.get("Resources", {})

    def _of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res.get("Type") in types}

    def tables(self) -> dict[str, dict[str, Any]]:
        """DynamoDB tables by logical id: the CreateTable arguments (without a name) for each."""
        tables = {}
        for name, res in self._of_type("AWS::DynamoDB::Table").items():
            props = res.get("Properties", {})
            spec = {key: props[key] for key in _TABLE_KEYS if key in props}
            if "StreamSpecification" in spec:
                spec["StreamSpecification"] = {"StreamEnabled": True, **spec["StreamSpecification"]}
            spec["BillingMode"] = "PAY_PER_REQUEST"
            tables[name] = spec
        return tables

    def ttl_attribute(self, table: str) -> str | None:
        """The TTL attribute of a table, if TTL is enabled."""
        spec = self.resources[table].get("Properties", {}).get("TimeToLiveSpecification") or {}
        return spec.get("AttributeName") if spec.get("Enabled") else None

    def function_property(self, function: str, name: str, default: Any = None) -> Any:
        """A function's property (``MemorySize``...): its own, else the Globals', else ``default``."""
        props = self.resources[function].get("Properties", {})
        return props.get(name, self.data.get("Globals", {}).get("Function", {}).get(name, default))

    def parameter_default(self, name: str) -> str | None:
        """A parameter's default value, as text."""
        default = self.data.get("Parameters", {}).get(name, {}).get("Default")
        return None if default is None else str(default)

    def routes(self) -> list[Route]:
        """Every HttpApi route of every function."""
        routes = []
        for name, res in self._of_type("AWS::Serverless::Function").items():
            props = res.get("Properties", {})
            for event in (props.get("Events") or {}).values():
                if event.get("Type") != "HttpApi":
                    continue
                ev = event.get("Properties", {})
                routes.append(
                    Route(
                        method=str(ev.get("Method", "ANY")).upper(),
                        path=str(ev["Path"]),
                        function=name,
                        code_uri=self.root / str(props["CodeUri"]),
                        handler=str(props["Handler"]),
                    )
                )
        return routes

    def function_environment(self, function: str, refs: dict[str, str]) -> dict[str, str]:
        """The function's environment (Globals, then its own), with ``!Ref`` resolved.

        ``refs`` maps logical ids to their local values; parameters resolve to their defaults.
        Variables whose value cannot be resolved locally are left out.
        """
        merged: dict[str, Any] = {}
        globals_env = self.data.get("Globals", {}).get("Function", {}).get("Environment", {})
        merged.update(globals_env.get("Variables", {}))
        props = self.resources[function].get("Properties", {})
        merged.update((props.get("Environment") or {}).get("Variables", {}))
        env = {}
        for key, value in merged.items():
            resolved = self._resolve(value, refs)
            if resolved is not None:
                env[key] = resolved
        return env

    def _resolve(self, value: Any, refs: dict[str, str]) -> str | None:
        if isinstance(value, str | int | float | bool):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            name = value["Ref"]
            if name in refs:
                return refs[name]
            return self.parameter_default(name)
        return None


@cache
def load_template(root: Path | None = None) -> Template:
    """The project's template.yaml."""
    base = root or find_project_root()
    return Template(base / _TEMPLATE_NAME)


def load_handler(code_uri: Path, handler: str) -> Any:
    """Import a function's handler the way Lambda does: ``module.function`` from its CodeUri.

    Each CodeUri is loaded as its own module (named after the function's directory), so two
    functions with an ``app.py`` do not collide. As in Lambda, whose task root is on ``sys.path``,
    the CodeUri is importable, so a handler's own package (the admin function's ``admin_api``)
    imports the same way here and there; it goes last on the path, after the installed packages.
    """
    if str(code_uri) not in sys.path:
        sys.path.append(str(code_uri))
    module_name, _, attr = handler.rpartition(".")
    file = code_uri / f"{module_name.replace('.', '/')}.py"
    unique = f"webbugger_function_{code_uri.name}_{module_name}".replace(".", "_")
    module = sys.modules.get(unique)
    if module is None:
        spec = importlib.util.spec_from_file_location(unique, file)
        if spec is None or spec.loader is None:
            raise TemplateError(f"cannot load handler {handler} from {code_uri}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            # A failed cold start must not leave a half-initialised module for the next load.
            del sys.modules[unique]
            raise
    return getattr(module, attr)
