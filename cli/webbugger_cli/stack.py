"""Which stack the command line talks to: the running local stack, or a deployed one by name.

Either way the result is the same: the base URL of the tracking routes, a core
:class:`~webbugger.settings.Settings` for the stack's tables and signing keys, and the core's
models bound to those tables.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webbugger.runtime import bind_tables, default_registry
from webbugger.settings import Settings
from webbugger.signing import load_key_ring, load_visitor_salt

from webbugger_cli.local import state
from webbugger_cli.template import TemplateError, load_template

if TYPE_CHECKING:
    from webbugger.registry import Registry
    from webbugger.tokens import KeyRing
    from webbugger.tombstones import Tombstones

# Outputs of template.yaml the command line needs from a deployed stack.
REQUIRED_OUTPUTS = ("ApiUrl", "BeaconsTableName", "LinksTableName", "SigningSecretArn")
# A table output `FooBarTableName` names the table of environment variable FOO_BAR_TABLE: the
# same rule for the built-in tables and a plugin's own (see examples/affiliate-plugin).
_TABLE_OUTPUT = re.compile(r"(\w+)TableName\Z")
# The hot path's sub-second DynamoDB bounds suit a visitor, not a person waiting at a terminal.
CLI_CONNECT_TIMEOUT = 3.0
CLI_READ_TIMEOUT = 10.0
CLI_MAX_RETRIES = 3
# Variables that could send a local stack's requests with a real AWS identity.
_REAL_CREDENTIAL_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class StackError(Exception):
    """The stack cannot be found or used; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class Stack:
    """A stack to talk to: its name, the base URL of its routes and the core's settings for it."""

    name: str
    api_url: str
    settings: Settings

    def key_ring(self) -> KeyRing:
        """The stack's URL-signing key ring (Secrets Manager for a deployed stack)."""
        if not self.settings.signing_secret_arn:
            return load_key_ring(self.settings)
        # Powertools wraps every failure to read the secret (credentials, access, network) in
        # its own types; imported here because only a deployed stack reads a secret.
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        try:
            return load_key_ring(self.settings)
        except (GetParameterError, TransformParameterError) as exc:
            raise StackError(f"cannot read the signing secret of stack {self.name!r}: {exc}") from exc

    def visitor_salt(self) -> bytes:
        """The stack's visitor-salt secret (the key of erased entities' tombstones, too)."""
        if not (self.settings.visitor_salt_secret_arn or self.settings.local_visitor_salt):
            raise StackError(
                f"stack {self.name!r} has no VisitorSaltSecretArn output: update it to this template"
            )
        if not self.settings.visitor_salt_secret_arn:
            return load_visitor_salt(self.settings)
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            return load_visitor_salt(self.settings)
        except GetParameterError as exc:
            raise StackError(f"cannot read the visitor-salt secret of stack {self.name!r}: {exc}") from exc

    def tombstones(self) -> Tombstones | None:
        """The stack's erased entities; None without a counters table, or for a stack deployed
        before erasures left tombstones (it has no VisitorSaltSecretArn output, and none)."""
        from webbugger.tombstones import Tombstones

        keyed = self.settings.visitor_salt_secret_arn or self.settings.local_visitor_salt
        return Tombstones(self.visitor_salt()) if self.settings.counters_table and keyed else None


def table_variables(outputs: dict[str, str]) -> dict[str, str]:
    """Environment variables naming each table, from a stack's ``...TableName`` outputs."""
    variables = {}
    for output, value in outputs.items():
        match = _TABLE_OUTPUT.match(output)
        if match:
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).upper()
            variables[f"{snake}_TABLE"] = value
    return variables


def _local_table_outputs() -> dict[str, str]:
    # The local stack names each template table after its logical id (state.table_name).
    return {f"{logical_id}Name": state.table_name(logical_id) for logical_id in load_template().tables()}


def require_counters(stack: Stack) -> None:
    """Refuse, in one line, a stack whose counters table is unknown (resolve_stack binds it)."""
    if not stack.settings.counters_table:
        raise StackError(f"stack {stack.name!r} has no counters table (no CountersTableName output)")


def _cli_settings(settings: Settings) -> Settings:
    return settings._replace(
        ddb_connect_timeout=CLI_CONNECT_TIMEOUT,
        ddb_read_timeout=CLI_READ_TIMEOUT,
        ddb_max_retries=CLI_MAX_RETRIES,
    )


def adopt_local_parameters() -> list[str]:
    """Give this process the running local stack's parameters and plugin list (what its functions
    see: ``ALLOWED_REDIRECT_HOSTS``, ``WEBBUGGER_PLUGINS``...), so that the CLI checks what the
    stack serves; a line for each the caller's environment had otherwise. Nothing when no local
    stack runs, or it did not record them (one that tests start in-process), or the working
    directory is outside the project (the command then says so in one line, if it needs it)."""
    try:
        running = state.read_running()
    except TemplateError:
        return []
    if running is None or running.parameters is None:
        return []
    notes = []
    for name, value in sorted(running.parameters.items()):
        mine = os.environ.get(name)
        if mine is not None and mine != value:
            notes.append(
                f"{name}={value!r} from the running local stack, not {mine!r}: restart `make run` "
                "with it to change it"
            )
        os.environ[name] = value
    return notes


def local_stack(registry: Registry | None = None, *, tables: bool = True) -> Stack:
    """The running local stack; :class:`StackError` if none runs.

    Points this process's AWS environment at fake credentials first, so that nothing it does
    against DynamoDB Local can ever use a real AWS profile. With ``tables``, names every table
    in the environment: the template's and those of ``registry``'s plugins (default: all).
    """
    running = state.read_running()
    if running is None:
        raise StackError("no local stack is running: start it with `make run`")
    keys = state.load_or_create_signing_keys()
    missing = [name for name in ("BeaconsTableName", "LinksTableName") if name not in running.outputs]
    if missing:
        raise StackError(f"the local stack's stack.json lacks {', '.join(missing)}: restart it")
    for variable in _REAL_CREDENTIAL_VARIABLES:
        os.environ.pop(variable, None)
    os.environ.update(running.environment(keys))
    if tables:
        os.environ.update(table_variables({**_local_table_outputs(), **running.outputs}))
        # A plugin's own table (declared only in its template snippet) is made locally under this name.
        for _model, variable in (registry or default_registry()).tables:
            os.environ.setdefault(variable, state.table_name(variable))
    settings = Settings(
        beacons_table=running.outputs["BeaconsTableName"],
        counters_table=os.environ.get("COUNTERS_TABLE"),
        region=state.LOCAL_REGION,
        local_signing_keys=keys,
        local_visitor_salt=os.environ.get("WEBBUGGER_VISITOR_SALT"),
        dynamodb_endpoint=running.dynamodb_endpoint,
    )
    return Stack(state.STACK_NAME, running.api_url, _cli_settings(settings))


def describe_stack(session: Any, name: str) -> dict[str, Any]:
    """The CloudFormation description of stack ``name``; :class:`StackError` if there is none."""
    client = session.client("cloudformation")
    try:
        found = client.describe_stacks(StackName=name)["Stacks"]
    except client.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            raise StackError(f"stack {name!r} not found in {client.meta.region_name}") from exc
        raise
    if not found:
        raise StackError(f"stack {name!r} not found in {client.meta.region_name}")
    description: dict[str, Any] = found[0]
    return description


def stack_outputs(description: dict[str, Any]) -> dict[str, str]:
    """A described stack's Outputs by key."""
    return {out["OutputKey"]: out["OutputValue"] for out in description.get("Outputs", [])}


def deployed_stack(name: str, region: str | None = None) -> Stack:
    """A deployed stack, by its CloudFormation outputs. AWS errors propagate to the caller."""
    # Imported here: boto3 takes a while to import and the local stack does not need it.
    import boto3

    if region:
        # Powertools builds its Secrets Manager client from the environment: make it agree.
        os.environ["AWS_DEFAULT_REGION"] = region
    session = boto3.session.Session(region_name=region)
    description = describe_stack(session, name)
    outputs = stack_outputs(description)
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        raise StackError(f"stack {name!r} is not a webbugger stack: it has no output {', '.join(missing)}")
    os.environ.update(table_variables(outputs))
    # The stack's own allowed redirect hosts, so `url redirect --target url:...` checks the same list.
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in description.get("Parameters", [])}
    if "AllowedRedirectHosts" in parameters:
        os.environ["ALLOWED_REDIRECT_HOSTS"] = parameters["AllowedRedirectHosts"]
    settings = Settings(
        beacons_table=outputs["BeaconsTableName"],
        counters_table=os.environ.get("COUNTERS_TABLE"),
        region=session.region_name,
        signing_secret_arn=outputs["SigningSecretArn"],
        # The key of erased entities' tombstones (replay and recount honour them).
        visitor_salt_secret_arn=outputs.get("VisitorSaltSecretArn"),
    )
    return Stack(name, outputs["ApiUrl"], _cli_settings(settings))


def resolve_stack(
    name: str | None, region: str | None = None, registry: Registry | None = None, *, bind: bool = True
) -> Stack:
    """The deployed stack ``name``, or the local stack when no name is given; with ``bind``, the
    core's models and those of ``registry``'s plugins (default: all) bound to its tables.

    Without ``bind`` nothing imports PynamoDB: enough to sign URLs (bench/cli.py).
    """
    stack = local_stack(registry, tables=bind) if name is None else deployed_stack(name, region)
    if bind:
        bind_tables(registry or default_registry(), stack.settings)
    return stack
