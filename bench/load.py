"""Load: GET requests at a fixed concurrency against the local stack, then stored beacons = answers.

The local stack runs as ``make run`` starts it (``webbugger local --port PORT``, its own process:
DynamoDB Local on disk, the HTTP API and the admin API on 127.0.0.1, the stream feed), with its
state in a temporary directory (never the project's ``.local/``). The script creates a link and
a campaign with the CLI, mints a mix of tracking URLs with the stack's key ring (70 % pixels,
30 % redirects; with and without an entity and a source), and then fires ``--requests`` GETs at
``--concurrency``: that many threads, each with its own keep-alive ``http.client`` connection to
127.0.0.1, each request bounded by a socket timeout and the whole run by ``--max-seconds``.

Afterwards it counts the beacons table (a COUNT scan of DynamoDB Local), waiting a bounded time
for the count to settle: it must equal the number of requests answered 200 (pixel) or 302
(redirect), warm-up included.

Baseline, in the same run: the very same client against a trivial stdlib HTTP server in its own
process on 127.0.0.1 that answers every GET with the GIF (no routing, no token, no write), run
before and after the stack, so the figures are comparable on a noisy machine.

The local server runs one invocation per function at a time (like one Lambda execution
environment): the requests queue for the track function, so throughput is that of ONE instance.

Run: ``uv run python bench/load.py [--requests N] [--concurrency C] [--max-seconds S]``
"""

from __future__ import annotations

import argparse
import collections
import http.client
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import _support as s
from webbugger_cli.local import state
from webbugger_cli.local.stream_delivery import DEAD_LETTERS_FILE

HOST = "127.0.0.1"  # the only address this script ever sends to
PIXEL_SHARE = 0.7
DISTINCT_URLS = 200  # minted URLs the requests cycle through
RECIPIENTS = 1_000  # recipient entities the URLs spread over
LINK_ID = "bench-load"
LINK_URL = "https://www.example.com/spring-sale?utm_source=newsletter"
CAMPAIGN_ID = "bench-load-2024"
REQUEST_TIMEOUT_S = 30.0  # API Gateway's own limit: an HTTP API integration times out at 30 s
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 60.0
SETUP_TIMEOUT_S = 60.0
WARMUP = 200
FLOOR_PUTS = 200
FLOOR_TABLE = "bench-load-floor"
AGENTS = (
    s.TYPICAL_USER_AGENT,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)


# --- the client ---------------------------------------------------------------------------------


@dataclass
class Run:
    """What one load run got: answers by status, failures by kind, latencies (ms) of answers."""

    label: str
    sent: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies_ms: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=lambda: {"pixel": [], "redirect": []})
    seconds: float = 0.0
    cut_short: bool = False

    @property
    def answered(self) -> int:
        """Requests that got any HTTP answer."""
        return sum(self.statuses.values())

    @property
    def tracked(self) -> int:
        """Requests answered as a hit is: 200 (the GIF) or 302 (the redirect)."""
        return self.statuses[200] + self.statuses[302]

    def errors(self) -> dict[str, int]:
        """Everything that was not a 200/302, by kind."""
        found = {f"HTTP {code}": n for code, n in sorted(self.statuses.items()) if code not in (200, 302)}
        return found | dict(sorted(self.failures.items()))

    def merge(self, other: Run) -> None:
        """Add another worker's counts."""
        self.sent += other.sent
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)
        self.latencies_ms += other.latencies_ms
        for kind, values in other.by_kind.items():
            self.by_kind[kind] += values


def _worker(
    port: int,
    requests: list[tuple[str, dict[str, str]]],
    next_index: Any,
    deadline: float,
    result: Run,
) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    try:
        while True:
            index = next_index()
            if index >= len(requests):
                return
            if time.monotonic() > deadline:
                result.cut_short = True
                return
            path, headers = requests[index]
            result.sent += 1
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                result.failures[type(exc).__name__] += 1
                connection.close()  # the next request reconnects
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            result.latencies_ms.append(elapsed_ms)
            result.by_kind["pixel" if path.startswith("/p/") else "redirect"].append(elapsed_ms)
            result.statuses[response.status] += 1
    finally:
        connection.close()


def fire(
    label: str, port: int, requests: list[tuple[str, dict[str, str]]], concurrency: int, seconds: float
) -> Run:
    """Send every request in ``requests`` to 127.0.0.1:``port`` from ``concurrency`` threads.

    Bounded: no request starts after ``seconds``, each waits at most ``REQUEST_TIMEOUT_S``, and
    threads still busy after that are abandoned (daemons) and reported as cut short.
    """
    lock = threading.Lock()
    counter = iter(range(len(requests) + concurrency))

    def next_index() -> int:
        with lock:
            return next(counter)

    deadline = time.monotonic() + seconds
    parts = [Run(label) for _ in range(concurrency)]
    threads = [
        threading.Thread(target=_worker, args=(port, requests, next_index, deadline, part), daemon=True)
        for part in parts
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    give_up = deadline + REQUEST_TIMEOUT_S + 5
    for thread in threads:
        thread.join(timeout=max(0.0, give_up - time.monotonic()))
    run = Run(label, seconds=time.perf_counter() - started)
    for part in parts:
        run.merge(part)
        run.cut_short |= part.cut_short
    run.cut_short |= any(thread.is_alive() for thread in threads)
    return run


def request_mix(urls: list[tuple[str, str]], count: int, seed: int) -> list[tuple[str, dict[str, str]]]:
    """``count`` requests (path, headers) drawn from ``urls`` (kind, URL), with browser headers."""
    rng = random.Random(seed)
    pixels = [u for kind, u in urls if kind == "pixel"]
    redirects = [u for kind, u in urls if kind == "redirect"]
    found = []
    for _ in range(count):
        is_pixel = rng.random() < PIXEL_SHARE
        url = rng.choice(pixels if is_pixel else redirects)
        headers = {
            "User-Agent": rng.choice(AGENTS),
            "Accept": "image/avif,image/webp,*/*" if is_pixel else "text/html,*/*;q=0.8",
            "Accept-Language": s.TYPICAL_LANGUAGE,
        }
        if not is_pixel:
            headers["Referer"] = s.TYPICAL_REFERER
        found.append((_path_on_loopback(url), headers))
    return found


def _path_on_loopback(url: str) -> str:
    """The path of a URL of the local stack; refuses anything not on 127.0.0.1."""
    prefix = f"http://{HOST}:"
    if not url.startswith(prefix):
        raise RuntimeError(f"refusing a URL that is not on {HOST}: {url[:80]}")
    return "/" + url[len(prefix) :].split("/", 1)[1]


# --- the baseline server ------------------------------------------------------------------------


def serve_baseline(seconds: float) -> None:
    """(child) Answer every GET with the GIF on a free port of 127.0.0.1; print the port; stop
    after ``seconds`` at the latest."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from webbugger.gif import NO_CACHE_HEADERS, TRANSPARENT_GIF

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY: headers and body are two small writes, which on a keep-alive connection
        # meet Nagle's algorithm and the client's delayed ACK (about 40 ms per answer).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            for name, value in NO_CACHE_HEADERS.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(TRANSPARENT_GIF)))
            self.end_headers()
            self.wfile.write(TRANSPARENT_GIF)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver's default backlog of 5 drops SYNs when 50 clients connect at once (1 s retry).
        request_queue_size = 128

    server = Server((HOST, 0), Handler)
    threading.Timer(seconds, server.shutdown).start()
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.2)


def _stop(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> str:
    """SIGTERM, then SIGKILL after ``timeout``; how it ended."""
    if process.poll() is not None:
        return f"had exited with {process.returncode}"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
        return "stopped"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
        return f"KILLED after {timeout:.0f} s"


class Baseline:
    """The baseline server in a child process, for a ``with`` block; ``port`` once it listens."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Baseline:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(self.seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            _stop(self._process)
            raise RuntimeError(f"the baseline server did not start (said {line!r})")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            _stop(self._process, 5)


# --- the local stack ----------------------------------------------------------------------------


class LocalStack:
    """``webbugger local`` in its own process with its state under ``directory``."""

    def __init__(self, directory: Path, max_seconds: float) -> None:
        self.directory = directory
        self.max_seconds = max_seconds
        self.log_path = directory / "stack.log"
        self.api_url = ""
        self.admin_url = ""
        self.dynamodb_endpoint = ""
        self.beacons_table = ""
        self.port = 0
        self.stopped = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """The CLI's environment: this process's, with the state dir in the temporary directory."""
        env = s.child_environment({"WEBBUGGER_STATE_DIR": str(self.directory / "state")})
        env.pop("WEBBUGGER_PLUGINS", None)  # the built-in plugins only, as `make run`
        return env

    def __enter__(self) -> LocalStack:
        webbugger = Path(sys.executable).parent / "webbugger"
        self._log = self.log_path.open("wb")
        for _ in range(3):  # the port, or the one after it (the admin API), may be taken meanwhile
            self.port = s.free_port()
            self._process = subprocess.Popen(
                [str(webbugger), "local", "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=s.ROOT,
            )
            try:
                if self._wait_ready():
                    return self
            except BaseException:  # Ctrl-C while it starts: `with` will not call __exit__
                self.__exit__(None)
                raise
            if self._process.poll() is None:
                _stop(self._process)
                break
        raise RuntimeError(f"the local stack did not start within {START_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def _wait_ready(self) -> bool:

        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self._process.poll() is None:
            running = state.read_running(self.directory / "state")
            if running is not None and _answers(running.api_url):
                self.api_url = running.api_url
                self.admin_url = running.outputs["AdminApiUrl"]
                self.dynamodb_endpoint = running.dynamodb_endpoint
                self.beacons_table = running.outputs["BeaconsTableName"]
                return True
            time.sleep(0.5)
        return False

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._process is not None:
            self.stopped = _stop(self._process)
        if self._log is not None:
            self._log.close()
        if exc_type is not None:
            print(f"the local stack's output ended with:\n{self.log_tail(40)}", file=sys.stderr)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the stack's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"

    def log_count(self, needle: str) -> int:
        """Lines of the stack's output that contain ``needle``."""
        with self.log_path.open(errors="replace") as handle:
            return sum(needle in line for line in handle)

    def dead_letters(self) -> int:
        """Stream records the feed gave up on (its dead-letter file), if any."""
        path = self.directory / "state" / DEAD_LETTERS_FILE
        return len(path.read_text().splitlines()) if path.is_file() else 0

    def cli(self, *args: str) -> str:
        """Run ``webbugger ARGS`` against this stack; its output (raises on failure)."""
        done = subprocess.run(
            [str(Path(sys.executable).parent / "webbugger"), *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"webbugger {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def stored_beacons(self) -> int:
        """The beacons table's item count."""
        return s.count_items(s.local_client(self.dynamodb_endpoint), self.beacons_table)

    def settled_count(self, expected: int) -> tuple[int, float]:
        """The beacons count once it equals ``expected`` or has not moved for 3 reads a second
        apart (bounded by ``SETTLE_TIMEOUT_S``); the count and the seconds waited."""
        started = time.monotonic()
        counts = [self.stored_beacons()]
        while counts[-1] != expected and time.monotonic() - started < SETTLE_TIMEOUT_S:
            if len(counts) >= 3 and len(set(counts[-3:])) == 1:
                break
            time.sleep(1)
            counts.append(self.stored_beacons())
        return counts[-1], time.monotonic() - started


def put_floor(stack: LocalStack, count: int) -> list[float]:
    """Milliseconds of ``count`` bare conditional PutItems of a beacon-sized item, one at a time,
    into a copy of the beacons table (same keys, indexes, stream) in the stack's DynamoDB Local:
    one track invocation at a time cannot answer faster than its one write."""
    client = s.local_client(stack.dynamodb_endpoint)
    spec = s.table_specs()["bench-BeaconsTable"]
    s.create_tables(client, {FLOOR_TABLE: spec})
    times = []
    for index in range(count):
        item = {
            "pk": {"S": f"b#{index % 16:x}"},
            "id": {"S": f"{time.time_ns():x}{index:06d}"},
            "mode": {"S": "p"},
            "method": {"S": "GET"},
            "created_at": {"S": time.strftime("%Y-%m-%dT%H:%M:%S.000000+0000", time.gmtime())},
            "ua": {"S": AGENTS[index % len(AGENTS)]},
            "lang": {"S": s.TYPICAL_LANGUAGE},
            "ip": {"S": "127.0.0.0"},
            "expires": {"N": str(int(time.time()) + 400 * 86_400)},
        }
        started = time.perf_counter()
        client.put_item(TableName=FLOOR_TABLE, Item=item, ConditionExpression="attribute_not_exists(id)")
        times.append((time.perf_counter() - started) * 1000)
    return times


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=2) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True  # 404 for "/": it answered
    except OSError:
        return False


def mint_urls(stack: LocalStack) -> list[tuple[str, str]]:
    """A link and a campaign (made by the CLI, as a user would), and ``DISTINCT_URLS`` tracking URLs
    (kind, URL) signed with the stack's key ring, a realistic mix: pixels with no reference, with a
    recipient, with a recipient and the campaign; redirects to the link with and without them."""
    from webbugger.minting import tracking_url
    from webbugger.modes import Mode
    from webbugger.refs import Ref
    from webbugger.tokens import KeyRing, TokenClaims

    stack.cli("link", "create", LINK_URL, "--id", LINK_ID)
    stack.cli("source", "create", "campaign", CAMPAIGN_ID, "--name", "Load benchmark")
    ring = KeyRing.from_json(state.load_or_create_signing_keys(stack.directory / "state"))
    rng = random.Random(7)
    urls = []
    for index in range(DISTINCT_URLS):
        shape = index % 4
        entity = Ref("recipient", f"r-{rng.randrange(RECIPIENTS):05d}") if shape >= 1 else None
        source = Ref("campaign", CAMPAIGN_ID) if shape >= 2 else None
        target = Ref("link", LINK_ID) if shape == 3 or index % 2 else None
        pixel = TokenClaims(mode=Mode.PIXEL, target=target, entity=entity, source=source)
        urls.append(("pixel", tracking_url(stack.api_url, pixel, ring)))
        if target is not None:
            redirect = TokenClaims(mode=Mode.REDIRECT, target=target, entity=entity, source=source)
            urls.append(("redirect", tracking_url(stack.api_url, redirect, ring)))
    return urls


# --- report -------------------------------------------------------------------------------------


def _row(run: Run) -> list[str]:
    lat = run.latencies_ms or [float("nan")]
    errors = run.errors()
    return [
        run.label,
        f"{run.sent:,}",
        f"{run.answered / run.seconds:,.0f}",
        f"{s.percentile(lat, 0.5):.1f}",
        f"{s.percentile(lat, 0.9):.1f}",
        f"{s.percentile(lat, 0.99):.1f}",
        f"{max(lat):.0f}",
        ", ".join(f"{kind}: {n:,}" for kind, n in errors.items()) or "none",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every request got its answer and stored beacons = answers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000, help="GET requests against the stack")
    parser.add_argument("--concurrency", type=int, default=50, help="clients at once (threads, keep-alive)")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="hard stop of the stack's load run")
    parser.add_argument("--seed", type=int, default=20240520, help="random seed of the request mix")
    parser.add_argument("--serve-baseline", type=float, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.serve_baseline is not None:
        serve_baseline(opts.serve_baseline)
        return 0
    if not 1 <= opts.requests <= 1_000_000:
        parser.error("--requests must be between 1 and 1,000,000")
    if not 1 <= opts.concurrency <= 500:
        parser.error("--concurrency must be between 1 and 500")
    if not 10 <= opts.max_seconds <= 3600:
        parser.error("--max-seconds must be between 10 and 3600")

    with (
        tempfile.TemporaryDirectory(prefix="webbugger-load-") as tmp,
        LocalStack(Path(tmp), opts.max_seconds) as stack,
    ):
        print(
            f"local stack (webbugger local, state in {tmp}) at {stack.api_url}, admin API {stack.admin_url}"
        )
        urls = mint_urls(stack)
        kinds = collections.Counter(kind for kind, _ in urls)
        print(
            f"minted {len(urls)} URLs ({kinds['pixel']} pixel, {kinds['redirect']} redirect), "
            "signed with the stack's keys"
        )
        floor = put_floor(stack, FLOOR_PUTS)
        before = stack.stored_beacons()
        requests = request_mix(urls, opts.requests, opts.seed)
        warmup = request_mix(urls, WARMUP, opts.seed + 1)
        with Baseline(opts.max_seconds * 3 + 300) as baseline:
            fire("warm-up", baseline.port, warmup, opts.concurrency, 60)
            first = fire("baseline (before)", baseline.port, requests, opts.concurrency, opts.max_seconds)
            warm = fire("warm-up", stack.port, warmup, opts.concurrency, 120)
            run = fire("local stack", stack.port, requests, opts.concurrency, opts.max_seconds)
            second = fire("baseline (after)", baseline.port, requests, opts.concurrency, opts.max_seconds)
        expected = warm.tracked + run.tracked
        stored, waited = stack.settled_count(before + expected)
        stored -= before
        failed_lines = stack.log_count("handler failed")
        spilled_lines = stack.log_count("beacon write failed")
        dead = stack.dead_letters()
    print(f"local stack {stack.stopped}")

    mix = collections.Counter("pixel" if path.startswith("/p/") else "redirect" for path, _ in requests)
    print()
    print(
        f"{opts.requests:,} GET requests at concurrency {opts.concurrency} to {HOST} "
        f"({mix['pixel'] / opts.requests:.0%} pixels, {mix['redirect'] / opts.requests:.0%} redirects, "
        f"{len(urls)} distinct URLs); keep-alive http.client, one connection per thread"
    )
    print(
        s.table(
            ["run", "sent", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"],
            [_row(first), _row(run), _row(second)],
        )
    )
    for kind, values in run.by_kind.items():
        if values:
            print(
                f"  local stack, {kind}s: {len(values):,} answered, p50 {s.percentile(values, 0.5):.1f} ms, "
                f"p90 {s.percentile(values, 0.9):.1f} ms, p99 {s.percentile(values, 0.99):.1f} ms"
            )
    baseline_rps = (first.answered / first.seconds + second.answered / second.seconds) / 2
    baseline_p50 = (s.percentile(first.latencies_ms, 0.5) + s.percentile(second.latencies_ms, 0.5)) / 2
    stack_rps = run.answered / run.seconds
    print()
    print(
        f"stack / baseline: {stack_rps:,.0f} / {baseline_rps:,.0f} req/s = {stack_rps / baseline_rps:.3f} "
        f"of the baseline's throughput; p50 {s.percentile(run.latencies_ms, 0.5) / baseline_p50:.1f}x the "
        "baseline's (mean of the runs before and after)"
    )
    floor_p50 = s.percentile(floor, 0.5)
    print(
        f"DynamoDB Local's own write time: a bare conditional PutItem (beacons table's indexes and stream), "
        f"one at a time before the load: p50 {floor_p50:.1f} ms, p90 {s.percentile(floor, 0.9):.1f} ms "
        f"({len(floor)} puts) = {1000 / floor_p50:,.0f} writes/s; the stack's req/s is "
        f"{stack_rps / (1000 / floor_p50):.2f} of that"
    )
    print(
        "  the local server runs ONE invocation per function at a time (as one Lambda instance does):"
        f"\n  {opts.concurrency} connections queue for a single track function, so this is one instance's"
        "\n  throughput, with the client, the server, DynamoDB Local and the stream feed on the same cores;"
        "\n  the queue is first come, first served (webbugger_cli.local.fair_lock.FairLock)"
    )
    print()
    print(
        f"stored beacons: {stored:,} (count settled after {waited:.1f} s); answered 200/302: "
        f"{expected:,} ({run.tracked:,} + {warm.tracked:,} warm-up)"
    )
    sent_all = len(requests) + len(warmup)
    ok = (
        stored == expected
        and expected == sent_all
        and not run.cut_short
        and not failed_lines
        and not spilled_lines
        and warm.sent == len(warmup)
    )
    print(
        s.table(
            ["check", "measured", "verdict"],
            [
                [
                    "stored beacons = 200/302 answers",
                    f"{stored:,} / {expected:,}",
                    "met" if stored == expected else "NOT met",
                ],
                [
                    "every request answered 200/302",
                    f"{expected:,} / {sent_all:,}",
                    "met" if expected == sent_all else "NOT met",
                ],
                [
                    "no handler failure in the stack's log",
                    f"{failed_lines}",
                    "met" if not failed_lines else "NOT met",
                ],
                [
                    "no beacon write failed (spilled to the log)",
                    f"{spilled_lines}",
                    "met" if not spilled_lines else "NOT met",
                ],
                [
                    "finished within --max-seconds",
                    f"{run.seconds:.0f} s",
                    "NOT met" if run.cut_short else "met",
                ],
                ["stream dead letters (info)", f"{dead}", "-"],
            ],
        )
    )
    print()
    print(f"rerun: {s.rerun_command(argv)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
