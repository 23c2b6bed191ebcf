"""The stack the doctor examines, by what it publishes: its Outputs, key ring and tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from webbugger.tokens import KeyRing

from webbugger_cli.admin_client import ADMIN_OUTPUT, session_credentials
from webbugger_cli.commands.doctor.fetch import CheckFailedError
from webbugger_cli.stack import StackError, describe_stack, stack_outputs

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.credentials import Credentials

API_OUTPUT = "ApiUrl"
TRACKING_OUTPUT = "TrackingUrl"
FRONT_DOOR_OUTPUT = "FrontDoor"
SECRET_OUTPUT = "SigningSecretArn"  # noqa: S105 - an output name, not a secret
# What the doctor needs of a stack (tables besides these are checked when present).
NEEDED_OUTPUTS = (
    API_OUTPUT,
    TRACKING_OUTPUT,
    ADMIN_OUTPUT,
    "BeaconsTableName",
    "LinksTableName",
    SECRET_OUTPUT,
)
TABLE_SUFFIX = "TableName"


@dataclass
class Subject:
    """The stack under examination, by what it publishes: Outputs, and the means to read it."""

    name: str
    outputs: dict[str, str]
    key_ring: Callable[[], KeyRing]
    describe_table: Callable[[str], str]
    credentials: Callable[[], Credentials]
    region: str

    @property
    def tracking_base(self) -> str:
        """Where visitors go: ``TrackingUrl`` (CloudFront or a custom domain), else the API's URL."""
        return self.outputs.get(TRACKING_OUTPUT) or self.outputs.get(API_OUTPUT, "")

    @property
    def behind_cloudfront(self) -> bool:
        """True when visitors reach the stack by another URL than the API's own (CloudFront)."""
        tracking = self.outputs.get(TRACKING_OUTPUT, "").rstrip("/")
        return bool(tracking) and tracking != self.outputs.get(API_OUTPUT, "").rstrip("/")

    @property
    def front_door(self) -> str:
        """What CloudFront forwards to: ``http-api`` (also when no output says) or ``function-url``."""
        return self.outputs.get(FRONT_DOOR_OUTPUT) or "http-api"


def local_subject() -> Subject:
    """The running local stack; :class:`StackError` if none runs."""
    from botocore.credentials import Credentials

    from webbugger_cli.local import state
    from webbugger_cli.local.tables import local_client

    running = state.read_running()
    if running is None:
        raise StackError("no local stack is running: start it with `make run`")
    client = local_client(running)
    directory = Path(running.state_dir) if running.state_dir else state.state_dir()

    def key_ring() -> KeyRing:
        return KeyRing.from_json(state.load_or_create_signing_keys(directory))

    def describe_table(table: str) -> str:
        return str(client.describe_table(TableName=table)["Table"]["TableStatus"])

    return Subject(
        name=state.STACK_NAME,
        outputs=dict(running.outputs),
        key_ring=key_ring,
        describe_table=describe_table,
        # The local admin API does not check signatures; it is signed all the same (one code path).
        credentials=lambda: Credentials("local", "local"),
        region=state.LOCAL_REGION,
    )


def deployed_subject(name: str, region: str | None = None) -> Subject:
    """The deployed stack ``name``, by its CloudFormation Outputs; :class:`StackError` if there is none."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    outputs = stack_outputs(describe_stack(session, name))
    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})
    dynamodb = session.client("dynamodb", config=config)
    secrets = session.client("secretsmanager", config=config)

    def key_ring() -> KeyRing:
        arn = outputs.get(SECRET_OUTPUT)
        if not arn:
            raise CheckFailedError(f"no {SECRET_OUTPUT} output")
        return KeyRing.from_json(secrets.get_secret_value(SecretId=arn)["SecretString"])

    def describe_table(table: str) -> str:
        return str(dynamodb.describe_table(TableName=table)["Table"]["TableStatus"])

    def credentials() -> Credentials:
        return session_credentials(session)

    return Subject(name, outputs, key_ring, describe_table, credentials, session.region_name or "")
