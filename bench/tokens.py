"""Sealed tracking tokens: what they cost against the signed tokens of earlier releases, and
against the vetted AEADs of ``cryptography`` that were the alternative (issue 17, item 6).

Four figures, each against a baseline measured in the same run:

1. **URL length** of typical tokens, sealed (``KID.SEALED``) against signed in clear
   (``KID.PAYLOAD.TAG``, what earlier releases minted).
2. **Per token, in-process**: ``verify`` and ``sign`` of a sealed token against those of a signed
   one; and opening the same payload with ``cryptography``'s AES-SIV (RFC 5297) and AES-GCM-SIV
   (RFC 8452, a fixed nonce: deterministic, as SIV), cipher objects built once as a cached key ring
   would. Rounds interleaved, medians of rounds.
3. **Hot path, in-process**: ``Tracker.track`` of a pixel naming a recipient and a source, the
   beacon write stubbed out (what the core does around the one DynamoDB write; bench/hot_path.py
   has the write), with a sealed token against a signed one.
4. **Cold start**: the track handler's import (as bench/cold_start.py loads it, fresh interpreters,
   interleaved) against the same import plus ``cryptography.hazmat.primitives.ciphers.aead``: what
   choosing ``cryptography`` would have added (it is not in the Lambda runtime; it would be a layer
   dependency). ``-X importtime`` gives what ``webbugger.sealing`` itself costs in that import.

Run: ``uv run python bench/tokens.py [--rounds N] [--runs M]``
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import TYPE_CHECKING, Any

import _support as s
from cold_start import IMPORT_HANDLER, Side, importtime_run, interleave

if TYPE_CHECKING:
    from collections.abc import Callable

AEAD_MODULE = "cryptography.hazmat.primitives.ciphers.aead"
# The children report process CPU time (the machine is shared: wall clock swings with its load).
_CPU = IMPORT_HANDLER.replace("t0 = time.perf_counter()", "c0 = time.process_time()", 1)
CPU_IMPORT_HANDLER = _CPU.replace("(t1 - t0)", "(time.process_time() - c0)", 1)
# The handler loaded untimed, then cryptography's AEAD module timed alone: what it would add.
CPU_IMPORT_AEAD_AFTER_HANDLER = _CPU.replace(
    "t1 = time.perf_counter()", f"c0 = time.process_time()\nimport {AEAD_MODULE}", 1
).replace("(t1 - t0)", "(time.process_time() - c0)", 1)
CALLS_PER_ROUND = 2000
SEALING = "webbugger.sealing"


# The token an earlier release minted: tests/legacy_tokens.py's, the one the tests check.
sys.path.insert(0, str(s.ROOT / "tests"))
from legacy_tokens import signed_before_sealing as signed_in_clear  # noqa: E402


def per_call_us(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """µs per call of each case: ``rounds`` rounds of CALLS_PER_ROUND calls, cases interleaved."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for case in cases.values():  # warm up
        for _ in range(CALLS_PER_ROUND // 4):
            case()
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            case = cases[name]
            started = time.perf_counter_ns()
            for _ in range(CALLS_PER_ROUND):
                case()
            times[name].append((time.perf_counter_ns() - started) / CALLS_PER_ROUND / 1000)
    return times


def typical_claims() -> dict[str, Any]:
    from webbugger.modes import Mode
    from webbugger.refs import Ref
    from webbugger.tokens import Purpose, TokenClaims

    recipient = Ref("recipient", "alice.smith@example.com")
    newsletter = Ref("newsletter", "2026-12")
    return {
        "pixel, no references": TokenClaims(mode=Mode.PIXEL),
        "email pixel: recipient + newsletter": TokenClaims(
            mode=Mode.PIXEL, entity=recipient, source=newsletter, purpose=Purpose.EMAIL
        ),
        "email link: link + recipient + newsletter": TokenClaims(
            mode=Mode.REDIRECT,
            target=Ref("link", "aB3dE6gH"),
            entity=recipient,
            source=newsletter,
            purpose=Purpose.EMAIL,
        ),
        "web redirect: url target + campaign": TokenClaims(
            mode=Mode.REDIRECT,
            target=Ref("url", "https://www.example.com/spring-sale?utm_source=newsletter"),
            source=Ref("campaign", "spring"),
        ),
    }


def lengths(ring: Any) -> list[list[str]]:
    from webbugger.minting import tracking_url
    from webbugger.tokens import sign

    rows = []
    for name, claims in typical_claims().items():
        sealed, signed = sign(claims, ring), signed_in_clear(claims, ring)
        url = len(tracking_url(s.BASE_URL, claims, ring))
        rows.append([name, str(len(signed)), str(len(sealed)), f"{len(sealed) - len(signed):+d}", str(url)])
    return rows


def token_cases(ring: Any) -> dict[str, Callable[[], object]]:
    import json

    from webbugger.tokens import sign, verify

    claims = typical_claims()["email link: link + recipient + newsletter"]
    sealed, signed = sign(claims, ring), signed_in_clear(claims, ring)
    cases: dict[str, Callable[[], object]] = {
        "verify, signed in clear (baseline)": lambda: verify(signed, ring),
        "verify, sealed": lambda: verify(sealed, ring),
        "sign, signed in clear (as before)": lambda: signed_in_clear(claims, ring),
        "sign, sealed": lambda: sign(claims, ring),
    }
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV, AESSIV
    except ImportError:
        return cases
    payload = json.dumps(["r", 1, 4, "link:aB3dE6gH", "recipient:alice.smith@example.com"]).encode()
    key = ring.keys[ring.current]
    siv = AESSIV(hashlib.sha512(key).digest())
    gcm_siv = AESGCMSIV(hashlib.sha256(key).digest())
    nonce = bytes(12)
    siv_sealed = siv.encrypt(payload, [b"k1"])
    gcm_sealed = gcm_siv.encrypt(nonce, payload, b"k1")
    cases["open only: AES-SIV (cryptography)"] = lambda: siv.decrypt(siv_sealed, [b"k1"])
    cases["open only: AES-GCM-SIV (cryptography)"] = lambda: gcm_siv.decrypt(nonce, gcm_sealed, b"k1")
    from webbugger import sealing

    ours = sealing.seal(key, b"k1", payload)
    cases["open only: webbugger.sealing"] = lambda: sealing.unseal(key, b"k1", ours)
    return cases


def hot_path_cases(ring: Any) -> dict[str, Callable[[], object]]:
    from webbugger import tracking
    from webbugger.registry import HookMode, Registry
    from webbugger.request import IncomingRequest
    from webbugger.settings import Settings
    from webbugger.tokens import sign

    tracking.put_beacon = lambda beacon: True  # type: ignore[assignment] # the write is not measured here
    registry = Registry()
    registry.register_entity("recipient", lambda ident: None, origin="bench", hooks=HookMode.DEFERRED)
    registry.register_source("newsletter", lambda ident: object(), origin="bench")
    tracker = tracking.Tracker(
        Settings(beacons_table=s.BEACONS_TABLE, region=s.REGION), registry, key_ring=lambda: ring
    )
    claims = typical_claims()["email pixel: recipient + newsletter"]
    incoming = IncomingRequest(
        method="GET",
        headers={
            "user-agent": s.TYPICAL_USER_AGENT,
            "referer": s.TYPICAL_REFERER,
            "accept-language": s.TYPICAL_LANGUAGE,
        },
        source_ip=s.SOURCE_IP,
    )
    sealed, signed = sign(claims, ring), signed_in_clear(claims, ring)
    return {
        "Tracker.track, signed in clear (baseline)": lambda: tracker.track(signed, claims.mode, incoming),
        "Tracker.track, sealed": lambda: tracker.track(sealed, claims.mode, incoming),
    }


def ratio_rows(times: dict[str, list[float]], baseline: str) -> list[list[str]]:
    base = s.median(times[baseline])
    return [
        [
            name,
            str(len(values)),
            f"{s.median(values):.2f}",
            f"{s.percentile(values, 0.9):.2f}",
            f"{s.median(values) / base:.2f}",
        ]
        for name, values in times.items()
    ]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30, help=f"rounds of {CALLS_PER_ROUND} calls per case")
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per side (cold start)")
    opts = parser.parse_args(argv)

    print(s.compile_bytecode())
    key_ring_json = s.new_key_ring_json()
    s.apply_environment(s.core_environment(key_ring_json))
    from webbugger.tokens import KeyRing

    ring = KeyRing.from_json(key_ring_json)

    print("\nToken length (characters; the URL adds its base and /p/ .gif or /r/)")
    print(s.table(["claims", "signed in clear", "sealed", "diff", "sealed URL"], lengths(ring)))

    baseline = "verify, signed in clear (baseline)"
    print(f"\nPer token, in-process ({opts.rounds} rounds of {CALLS_PER_ROUND} calls, interleaved)")
    times = per_call_us(token_cases(ring), opts.rounds)
    print(s.table(["case", "rounds", "median µs", "p90 µs", f"/ {baseline}"], ratio_rows(times, baseline)))

    hot_baseline = "Tracker.track, signed in clear (baseline)"
    print("\nHot path without the write: a pixel naming a recipient and a newsletter")
    hot = per_call_us(hot_path_cases(ring), opts.rounds)
    print(s.table(["case", "rounds", "median µs", "p90 µs", "/ baseline"], ratio_rows(hot, hot_baseline)))
    added = s.median(hot["Tracker.track, sealed"]) - s.median(hot[hot_baseline])
    print(f"  sealed adds {added:+.2f} µs a hit (bench/hot_path.py: a pixel is ~3,500 µs under moto)")

    env = s.child_environment(s.core_environment(key_ring_json))
    handler = Side("track handler import", CPU_IMPORT_HANDLER, [str(s.HANDLER_FILE)])
    aead = Side(f"{AEAD_MODULE}, after the handler", CPU_IMPORT_AEAD_AFTER_HANDLER, [str(s.HANDLER_FILE)])
    interleave([handler, aead], opts.runs, env)
    rows = [
        [side.label, str(len(side.times)), f"{s.median(side.times):.1f}", f"{min(side.times):.1f}"]
        for side in (handler, aead)
    ]
    print(f"\nCold start: fresh interpreters, {opts.runs} runs a side, interleaved, process CPU time")
    print(s.table(["import", "runs", "median ms", "min ms"], rows))
    share = s.median(aead.times) / s.median(handler.times)
    print(f"  cryptography's AEAD import / the handler's: {share:.3f} (the cold start x {1 + share:.3f})")
    runs = [importtime_run(IMPORT_HANDLER, [str(s.HANDLER_FILE)], env) for _ in range(3)]
    sealing_ms = [sum(ms for _, name, ms in run if name == SEALING) for run in runs]
    print(f"  {SEALING}'s own import in the handler's (-X importtime, 3 runs): {s.median(sealing_ms):.2f} ms")
    print(f"\nrerun: {s.rerun_command(argv)}")


if __name__ == "__main__":
    main()
