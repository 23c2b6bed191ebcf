"""The local functions' environment: local table names, the local stack's variables, and nothing
that could reach real AWS. All functions share one process, hence one environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from webbugger.plugins import PLUGINS_VARIABLE

from webbugger_cli.local import state
from webbugger_cli.local.apis import local_functions

if TYPE_CHECKING:
    from webbugger_cli.template import Template

# Variables that could make a local run use a real AWS identity.
_REAL_CREDENTIAL_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def _plugin_modules(*lists: str | None) -> str:
    names = [name.strip() for text in lists for name in (text or "").split(",") if name.strip()]
    return ",".join(dict.fromkeys(names))


def local_environment(template: Template, stack: state.LocalStack, signing_keys: str) -> dict[str, str]:
    """Every local function's environment with local table names, plus the local stack's variables.

    All functions share this process, hence one environment.
    """
    refs = {logical_id: state.table_name(logical_id) for logical_id in template.tables()}
    env: dict[str, str] = {}
    for function in local_functions(template):
        env.update(template.function_environment(function, refs))
    env.update(stack.environment(signing_keys))
    return env


def _unresolved_variables(template: Template, env: dict[str, str]) -> set[str]:
    """Variables the template declares but that have no local value (e.g. the secret's ARN)."""
    declared: set[str] = set()
    for function in local_functions(template):
        props = template.resources[function].get("Properties", {})
        declared |= set((props.get("Environment") or {}).get("Variables", {}))
    return declared - set(env)


def _parameter_variables(template: Template) -> set[str]:
    """Variables whose template value is a parameter (``!Ref SomeParameter``)."""
    parameters = set(template.data.get("Parameters", {}))
    found: set[str] = set()
    sections = [template.data.get("Globals", {}).get("Function", {})]
    sections += [template.resources[function].get("Properties", {}) for function in local_functions(template)]
    for section in sections:
        for name, value in (section.get("Environment") or {}).get("Variables", {}).items():
            if isinstance(value, dict) and value.get("Ref") in parameters:
                found.add(name)
    return found


def apply_environment(template: Template, stack: state.LocalStack, signing_keys: str) -> dict[str, str]:
    """Put :func:`local_environment` into ``os.environ``; drop what could reach real AWS instead.

    Plugin modules listed in the caller's ``WEBBUGGER_PLUGINS`` are kept, after the template's
    (locally, that variable plays the part of the ``ExtraPlugins`` parameter).
    """
    env = local_environment(template, stack, signing_keys)
    # A deployment's parameters (ALLOWED_REDIRECT_HOSTS, IP_ADDRESSES, ...) can be set locally
    # from the shell, as `sam deploy --parameter-overrides` would.
    for name in _parameter_variables(template) & set(os.environ):
        env[name] = os.environ[name]
    plugins = _plugin_modules(env.get(PLUGINS_VARIABLE), os.environ.get(PLUGINS_VARIABLE))
    if plugins or PLUGINS_VARIABLE in env:
        env[PLUGINS_VARIABLE] = plugins
    # A SIGNING_SECRET_ARN left in the shell would send the core to Secrets Manager.
    for name in (*_REAL_CREDENTIAL_VARIABLES, *_unresolved_variables(template, env)):
        os.environ.pop(name, None)
    os.environ.update(env)
    return env


def stack_parameters(template: Template, env: dict[str, str]) -> dict[str, str]:
    """What the functions see of the template's parameters and of the plugin list ("" when
    unset): published in stack.json for the CLI (:func:`webbugger_cli.stack.adopt_local_parameters`)."""
    return {name: env.get(name, "") for name in sorted(_parameter_variables(template) | {PLUGINS_VARIABLE})}
