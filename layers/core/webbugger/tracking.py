"""The hot path: verify a tracking token, resolve its references, record one beacon.

Order, as django-webbugger's ``trigger`` view: check the source, load the target, get or create
the entity, save the beacon, call the entity's ``beacon_update``, then answer. Everything that
makes the request invalid happens before the write, so an invalid request records nothing.
"""

from __future__ import annotations

import hmac
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from webbugger import tokens
from webbugger.cache import LookupCache
from webbugger.destinations import merge_query, safe_location
from webbugger.errors import (
    InvalidReferenceError,
    NotFoundError,
    StoreUnavailableError,
    UnsafeDestinationError,
)
from webbugger.hooks import HookBudgets, HookFailedError, call_beacon_update, run_within_budget
from webbugger.ids import epoch_ms, new_beacon_id
from webbugger.minting import REDIRECT_PREFIX
from webbugger.models import Beacon, beacon_partition, expiry, put_beacon, utcnow
from webbugger.modes import Mode
from webbugger.observability import MetricUnit, logger, metrics
from webbugger.refs import Ref
from webbugger.registry import HookMode, Registry, resolve_target_url
from webbugger.request import (
    MAX_LANGUAGE,
    MAX_USER_AGENT,
    ORIGIN_SECRET_HEADER,
    HitRequest,
    IncomingRequest,
    anonymise_ip,
    client_ip,
    country,
    opt_out,
    referer_page,
    request_hints,
    truncate_utf8,
    viewer_address,
)
from webbugger.signing import load_key_ring, load_origin_secret
from webbugger.tokens import Purpose, TokenClaims

if TYPE_CHECKING:
    from collections.abc import Callable

    from webbugger.routing import Decision, Visitor
    from webbugger.settings import Settings
    from webbugger.tokens import KeyRing

# The target type that short public URLs (/l/ID) name.
SHORT_LINK_TYPE = "link"
# A stored link answers its short URL only when its record says so (opt-in, per link).
SHORT_URL_FLAG = "short_url_enabled"
# A tracked link whose target is another tracked link of this service is followed internally
# (one redirect for the visitor, a beacon per link), up to this many links.
MAX_CHAIN = 5


class TrackResult(NamedTuple):
    """What to answer: for a redirect, where to; and the beacon, if one was recorded.

    A NamedTuple, not a frozen dataclass: as immutable, cheaper to define at a cold start."""

    mode: Mode
    location: str | None
    beacon_id: str | None
    stored: bool


class Tracker:
    """Records hits for one deployment (settings, registered types, signing keys)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        key_ring: Callable[[], KeyRing] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._key_ring = key_ring or (lambda: load_key_ring(settings))
        self._lookups = LookupCache(settings.lookup_cache_seconds)
        self._budgets = HookBudgets(settings.hook_budget_ms / 1000, settings.hook_cold_budget_ms / 1000)

    def track(self, token: str, mode: Mode, incoming: IncomingRequest, *, _chain: int = 1) -> TrackResult:
        """Handle one hit. Raises :class:`NotFoundError` (404) or :class:`StoreUnavailableError` (503)."""
        claims = tokens.verify(token, self._key_ring())
        if claims.mode is not mode:
            raise NotFoundError(f"token was minted for {claims.mode} links")
        return self._track(claims, incoming, _chain)

    def track_short_link(self, link_id: str, incoming: IncomingRequest) -> TrackResult:
        """A hit on a stored link's short public URL (``/l/ID``): unsigned, since the destination is
        stored and cannot be chosen by whoever writes the URL; no entity, no source. Only for a link
        whose record turned its short URL on (:data:`SHORT_URL_FLAG`), else 404; never claims a hit."""
        try:
            target = Ref(SHORT_LINK_TYPE, link_id)
        except InvalidReferenceError as exc:
            raise NotFoundError("not a link id") from exc
        return self._track(TokenClaims(mode=Mode.REDIRECT, target=target), incoming, 1, short=True)

    def _track(
        self, claims: TokenClaims, incoming: IncomingRequest, _chain: int, *, short: bool = False
    ) -> TrackResult:
        mode = claims.mode
        self._check_source(claims)
        from_cdn = self._from_our_cdn(incoming)
        location, decision = self._resolve_target(claims, incoming, from_cdn, short=short)
        if location is not None:
            location = self._follow_chain(location, incoming, _chain)
        if incoming.method == "HEAD":
            return TrackResult(mode, location, None, stored=False)

        entity_ref, entity = self._entity(claims.entity)
        hit = self._hit_request(claims, mode, incoming, entity_ref, from_cdn, decision)
        stored = self._save(hit)
        if entity is not None and entity_ref is not None:
            call_beacon_update(entity, entity_ref.type, hit, self._budgets)
        # No metric for a hit recorded as it should be: its EMF record would be most of what a hit
        # costs in CloudWatch Logs, and Lambda's own Invocations metric counts hits for nothing.
        # Metrics are for what goes wrong (write failures, spills, refusals, invalid requests).
        return TrackResult(mode, location, hit.beacon_id, stored)

    def _lookup(self, kind: str, ref: Ref, load: Callable[[str], Any]) -> Any:
        ident = ref.id or ""
        return self._lookups.get((kind, ref.type, ident), lambda: load(ident))

    def _check_source(self, claims: TokenClaims) -> None:
        ref = claims.source
        if ref is None:
            return
        source_type = self.registry.source(ref.type)
        try:
            record = self._lookup("source", ref, source_type.load)
        except Exception:  # noqa: BLE001 - plugin code; any failure is logged below
            # Cannot tell whether it exists: count the hit rather than lose it.
            logger.exception("source lookup failed; recording the hit anyway", extra={"source": str(ref)})
            return
        if record is None and not claims.ignore_errors:
            raise NotFoundError(f"unknown source {ref}")

    def _follow_chain(self, location: str, incoming: IncomingRequest, position: int) -> str:
        """If ``location`` is a tracked link of this service, record it too and go where it goes."""
        parts = urlsplit(location)
        if not parts.path.startswith(REDIRECT_PREFIX):
            return location  # most destinations: no need to read the Host header
        host = (parts.hostname or "").lower()
        try:
            request_host = urlsplit(f"//{incoming.header('host') or ''}").hostname or ""
        except ValueError:  # a Host header that names no host (say "[::1"): not one of ours
            request_host = ""
        if host not in {*self.settings.tracking_hosts, request_host.lower()}:
            return location
        if position >= MAX_CHAIN:
            raise NotFoundError(f"chain of tracked links longer than {MAX_CHAIN}")
        inner = self.track(
            parts.path.removeprefix(REDIRECT_PREFIX), Mode.REDIRECT, incoming, _chain=position + 1
        )
        return inner.location or location

    def _target_record(self, claims: TokenClaims) -> Any:
        """The redirect's target record; None for a pixel (whose target is only checked)."""
        ref = claims.target
        if ref is None:
            return None
        target_type = self.registry.target(ref.type)
        try:
            record = self._lookup("target", ref, target_type.load)
        except Exception as exc:
            if claims.mode is Mode.PIXEL:
                logger.exception(
                    "target lookup failed; recording the pixel anyway", extra={"target": str(ref)}
                )
                return None
            raise StoreUnavailableError(f"could not load target {ref}") from exc
        if record is None:
            if claims.mode is Mode.PIXEL and claims.ignore_errors:
                return None
            raise NotFoundError(f"unknown target {ref}")
        return None if claims.mode is Mode.PIXEL else record

    def _resolve_target(
        self, claims: TokenClaims, incoming: IncomingRequest, from_cdn: bool, *, short: bool
    ) -> tuple[str | None, Decision | None]:
        """Where the hit goes (None for a pixel), and the routing decision that chose it, if any."""
        record = self._target_record(claims)
        ref = claims.target
        if record is None or ref is None:
            return None, None
        if short and getattr(record, SHORT_URL_FLAG, None) is not True:
            raise NotFoundError(f"target {ref} has no short URL")
        now = utcnow()
        refusal = getattr(record, "refusal", None)
        if callable(refusal):
            try:
                # Only URLs the owner minted spend a capped link's hits; a short hit is checked.
                reason = refusal(now, claim=incoming.method != "HEAD" and not short)
            except Exception as exc:
                # A capped link's claim of a hit did not answer in time: whether a hit is left is
                # unknown, so ask the visitor to retry (503) rather than guess, as for the target.
                raise StoreUnavailableError(f"could not check whether {ref} may be followed") from exc
            if reason:
                return self._refused(ref, record, reason), None
        # Rules and splits are part of the cached record: deciding costs no read.
        routing = getattr(record, "routing", None)
        decision = None
        if routing is not None:
            from webbugger.routing import Routing  # imported on a routed link's first hit only

            if isinstance(routing, Routing):
                decision = routing.decide(ref.id or "", self._visitor(claims, incoming, from_cdn), now)
        url = decision.url if decision is not None else resolve_target_url(record)
        if url is None:
            raise NotFoundError(f"target {ref} has nowhere to redirect to")
        url = safe_location(url)
        if getattr(record, "forward_query", False) and incoming.query:
            # The visitor's parameters ride along; the target's own parameters win. Forwarding
            # that would make an unusable URL (too long) is dropped, not the visitor.
            with suppress(UnsafeDestinationError):
                url = safe_location(merge_query(url, incoming.query, override=False))
        return url, decision

    def _visitor(self, claims: TokenClaims, incoming: IncomingRequest, from_cdn: bool) -> Visitor:
        """What a link's rules and split look at. The split's identity: the entity the URL names,
        else the anonymised address and the user agent (never stored: the beacon keeps the
        variant's name only)."""
        from webbugger.routing import Visitor

        user_agent = incoming.header("user-agent")

        def identity() -> str:
            if claims.entity is not None and claims.entity.id is not None:
                return str(claims.entity)
            address = viewer_address(incoming.header("cloudfront-viewer-address")) if from_cdn else None
            return f"{anonymise_ip(address or incoming.source_ip) or ''}\x00{user_agent or ''}"

        return Visitor(
            user_agent,
            country(incoming) if from_cdn else None,
            incoming.header("accept-language"),
            incoming.query,
            identity,
        )

    def _refused(self, ref: Ref, record: Any, reason: str) -> str:
        """A target that refuses this hit (expired, disabled, ...): its fallback URL, else 404."""
        logger.info("target refused the hit", extra={"target": str(ref), "reason": reason})
        metrics.add_metric(name="RefusedHits", unit=MetricUnit.Count, value=1)
        fallback = getattr(record, "fallback_url", None)
        if not fallback:
            raise NotFoundError(f"target {ref} refused the hit: {reason}")
        return safe_location(fallback)

    def _entity(self, ref: Ref | None) -> tuple[Ref | None, Any]:
        if ref is None:
            return None, None
        entity_type = self.registry.entity(ref.type)
        if entity_type.hooks is not HookMode.INLINE:
            # Nothing for the visitor to wait for: the stream function gets or creates the
            # entity (a new one under this id) and runs its hook, if it has one.
            return Ref(ref.type, ref.id or new_beacon_id()), None
        try:
            entity = run_within_budget(
                "get_or_create", ref.type, self._budgets, lambda: entity_type.get_or_create(ref.id)
            )
        except HookFailedError:
            return ref, None  # keep the reference as the link gave it; the hit still counts
        entity_id = getattr(entity, "id", None)
        return (Ref(ref.type, str(entity_id)) if entity_id is not None else ref), entity

    def _hit_request(
        self,
        claims: TokenClaims,
        mode: Mode,
        incoming: IncomingRequest,
        entity: Ref | None,
        from_cdn: bool,
        decision: Decision | None,
    ) -> HitRequest:
        now = utcnow()
        opted_out = opt_out(incoming) if self.settings.honour_opt_out else None
        address = viewer_address(incoming.header("cloudfront-viewer-address")) if from_cdn else None
        hints = request_hints(incoming)
        if claims.honeypot:
            hints |= {"honeypot"}
        if claims.purpose is Purpose.EMAIL:
            hints |= {"email"}
        return HitRequest(
            beacon_id=new_beacon_id(epoch_ms(now)),
            time=now,
            mode=mode,
            method=incoming.method,
            # An opted-out visitor leaves no address and no user agent, hence no visitor key.
            ip=None if opted_out else client_ip(address or incoming.source_ip, self.settings.ip_addresses),
            user_agent=None if opted_out else truncate_utf8(incoming.header("user-agent"), MAX_USER_AGENT),
            referer=referer_page(incoming.header("referer")),
            language=truncate_utf8(incoming.header("accept-language"), MAX_LANGUAGE),
            country=country(incoming) if from_cdn else None,
            query=incoming.query,
            target=claims.target,
            entity=entity,
            source=claims.source,
            minted=claims.issued_at or None,
            hints=hints,
            opted_out=opted_out,
            rule=None if decision is None else decision.rule,
            variant=None if decision is None else decision.variant,
        )

    def _from_our_cdn(self, incoming: IncomingRequest) -> bool:
        """True when the request carries the origin secret our CloudFront distribution adds."""
        presented = incoming.header(ORIGIN_SECRET_HEADER)
        if not presented:
            return False  # no secret to look up: requests that never came through CloudFront
        try:
            expected = load_origin_secret(self.settings)
        except Exception:  # noqa: BLE001 - the visitor is answered whatever the secret store does
            logger.exception("origin secret unreadable; the request's forwarding headers are not trusted")
            return False
        return expected is not None and hmac.compare_digest(presented.encode("utf-8", "replace"), expected)

    def _save(self, hit: HitRequest) -> bool:
        beacon = beacon_from_hit(hit, self.settings.retention_days)
        started = time.perf_counter()
        try:
            # Conditional on the id: a beacon that arrives twice is stored once. "Already there"
            # (False) counts as stored too: the id is new with this hit, so only this write can
            # have stored it; the SDK retried after losing the first attempt's answer (a read
            # timeout), and that attempt had landed (found by bench/load.py).
            put_beacon(beacon)
        except Exception as exc:  # noqa: BLE001 - whatever the failure, the visitor is answered
            # Fail open: the visitor still gets the answer, and the beacon takes the spill-over
            # chain (webbugger.spill): the spill queue, else one structured log record. Imported
            # here: only a failed write needs it.
            from webbugger import spill

            metrics.add_metric(name="BeaconWriteFailures", unit=MetricUnit.Count, value=1)
            spill_error = None
            if self.settings.spill_queue_url:
                try:
                    spill.spill_to_queue(beacon, self.settings.spill_queue_url, self.settings.region)
                except Exception as queue_exc:  # noqa: BLE001 - the log below still keeps the beacon
                    spill_error = repr(queue_exc)
                else:
                    logger.warning(
                        "beacon write failed; beacon sent to the spill queue",
                        extra={
                            "beacon_id": beacon.id,
                            "error": repr(exc),
                            "elapsed_ms": spill.elapsed_ms(started),
                        },
                    )
                    metrics.add_metric(name="BeaconsSpilled", unit=MetricUnit.Count, value=1)
                    return False
            # The whole beacon in one record, from which `webbugger replay` restores it.
            logger.error(
                spill.SPILL_LOG_MESSAGE,
                extra={
                    spill.SPILL_KEY: beacon.to_record(),
                    "error": repr(exc),
                    "spill_error": spill_error,
                    "elapsed_ms": spill.elapsed_ms(started),
                },
            )
            metrics.add_metric(name="BeaconsLogged", unit=MetricUnit.Count, value=1)
            return False
        return True


def beacon_from_hit(hit: HitRequest, retention_days: int) -> Beacon:
    """The beacon item that records ``hit``."""
    return Beacon(
        pk=beacon_partition(hit.beacon_id),
        id=hit.beacon_id,
        created_at=hit.time,
        mode=str(hit.mode),
        method=hit.method,
        target=None if hit.target is None else str(hit.target),
        entity=None if hit.entity is None else str(hit.entity),
        source=None if hit.source is None else str(hit.source),
        ip=hit.ip,
        user_agent=hit.user_agent,
        referer=hit.referer,
        language=hit.language,
        country=hit.country,
        minted=hit.minted,
        hints=set(hit.hints) or None,
        opted_out=hit.opted_out,
        expires=expiry(hit.time, retention_days),
        rule=hit.rule,
        variant=hit.variant,
    )
