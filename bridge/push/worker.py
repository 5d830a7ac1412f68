"""The push worker: takes due jobs from bridge.push_jobs, sends each to all
of the person's active devices, switches dead tokens off, and retries
transient failures with tenacity (exponential, jittered, Retry-After
honoured) without ever holding up socket delivery, which runs elsewhere.

A heartbeat renews the short lease of every job being tried, through
retry waits too, so a live instance never has its own push taken over; a
dead one's jobs are taken over once their lease runs out (at least once to
FCM: the device replaces a repeat, see bridge/push/fcm.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bridge.db_health import DatabaseHealth
from bridge.errors import BridgeError
from bridge.metrics import Metrics
from bridge.push.fcm import Device, Outcome
from bridge.push.message import PushMessage, fit, merged_body
from bridge.push.queue import PushJob, PushQueue
from bridge.settings import PushSettings
from bridge.tasks import stop_tasks, wait_set

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds a stop waits for pushes being sent


class Sender(Protocol):
    async def send(self, message: PushMessage, devices: list[Device]) -> list[Outcome]: ...


class TransientPushError(BridgeError):
    """Some devices answered with an error that a later attempt may not get;
    the only push error tenacity retries."""

    code = "push_retry"
    retryable = True

    def __init__(self, pending: list[Device], retry_after: float | None) -> None:
        super().__init__(f"{len(pending)} device(s) to retry")
        self.pending = pending
        self.retry_after = retry_after


def _wait(max_backoff: float) -> Callable[[RetryCallState], float]:
    exponential = wait_exponential_jitter(multiplier=0.5, max=max_backoff, jitter=0.5)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientPushError) and error.retry_after is not None:
            return min(error.retry_after, max_backoff)
        return float(exponential(state))

    return wait


class PushWorker:
    def __init__(
        self,
        queue: PushQueue,
        sender: Sender,
        settings: PushSettings,
        metrics: Metrics,
        health: DatabaseHealth | None = None,
    ) -> None:
        self.health = health or DatabaseHealth(metrics)
        self.queue = queue
        self.sender = sender
        self.settings = settings
        self.metrics = metrics
        self.wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        # Jobs this instance holds the lease of: id -> the claim's attempts.
        self._claimed: dict[int, int] = {}

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(), name="push-lease-heartbeat")
        try:
            while True:
                try:
                    free = self.settings.concurrency - len(self._inflight)
                    jobs = (
                        await self.queue.claim(
                            free,
                            self.settings.lease_seconds,
                            self.settings.cooldown,
                            sending=list(self._claimed),
                        )
                        if free > 0
                        else []
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.health.log_failure(exc, "claiming push jobs failed")
                    jobs = []
                for job in jobs:
                    self._claimed[job.id] = job.attempts
                    task = asyncio.create_task(self._deliver_logged(job))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                if not jobs or len(self._inflight) >= self.settings.concurrency:
                    await wait_set(self.wake, self.settings.poll_interval)
                    self.wake.clear()
        finally:
            await self._drain(heartbeat)

    async def _drain(self, heartbeat: asyncio.Task[None]) -> None:
        """On stop, sends in progress get STOP_GRACE to finish (a restart
        then does not send them again); jobs still being tried after it are
        given up here and their leases released, so another instance takes
        them over at once (their devices may get them twice; see fcm.py)."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=STOP_GRACE)
        claims = dict(self._claimed)  # a cancelled delivery forgets its claim
        await stop_tasks([heartbeat, *self._inflight], STOP_GRACE)
        self._claimed.clear()
        if claims:
            try:
                await self.queue.release(claims)
            except Exception:
                log.exception("releasing push leases on stop failed; they run out")

    async def _heartbeat(self) -> None:
        """Renews the leases of the jobs being tried, at a third of the lease,
        and forgets jobs another instance took over (their delivery stops
        before the next attempt)."""
        lease = self.settings.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            claims = dict(self._claimed)
            if not claims:
                continue
            try:
                kept = await self.queue.renew(claims, lease)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.log_failure(exc, "renewing push leases failed")
                continue
            lost = [job for job in claims if job not in kept and job in self._claimed]
            for job in lost:
                self._claimed.pop(job, None)
            if lost:
                self.metrics.inc("push_leases_lost", len(lost))
                log.warning("push leases lost to another instance", extra={"jobs": lost})

    async def _finish(self, job: PushJob, status: str, error: str | None) -> None:
        self._claimed.pop(job.id, None)
        if not await self.queue.finish(job, status, error):
            log.warning(
                "push job was taken over; its outcome is not recorded",
                extra={"job": job.id, "status": status},
            )

    async def _deliver_logged(self, job: PushJob) -> None:
        try:
            await self.deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.inc("pushes_failed")
            self.metrics.push_job("failed", "internal")
            log.exception("push job failed", extra={"job": job.id})
            await self._finish(job, "failed", f"internal: {type(exc).__name__}")
        finally:
            self._claimed.pop(job.id, None)
            self.wake.set()

    async def deliver(self, job: PushJob) -> None:
        devices = [Device(*d) for d in await self.queue.active_devices(job.user_id)]
        if not devices:
            self.metrics.inc("pushes_no_tokens")
            await self._finish(job, "no_tokens", None)
            self.metrics.push_job("no_tokens")
            return
        badge = await self.queue.total_unread(job.user_id)
        title, body = fit(job.title, merged_body(job.body, job.merged), job.data)
        message = PushMessage(
            kind=job.kind,
            conversation_id=job.conversation_id,
            title=title,
            body=body,
            data={**job.data, "badge": str(badge), "merged": str(job.merged)},
            badge=badge,
        )
        sent, failed, gave_up = 0, [], False
        pending = devices
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.settings.max_attempts),
                wait=_wait(self.settings.max_backoff),
                retry=retry_if_exception_type(TransientPushError),
                reraise=True,
            ):
                with attempt:
                    if job.id not in self._claimed:
                        log.warning("push job taken over; stopping", extra={"job": job.id})
                        return
                    outcomes = await self.sender.send(message, pending)
                    sent += sum(o.status == "sent" for o in outcomes)
                    for outcome in outcomes:
                        self.metrics.push_send(outcome.status, outcome.reason)
                        if outcome.status == "dead":
                            self.metrics.inc("tokens_deactivated")
                            await self.queue.deactivate_token(
                                outcome.device.token_id, outcome.reason
                            )
                        elif outcome.status == "failed":
                            failed.append(outcome.reason)
                    retry = [o for o in outcomes if o.status == "transient"]
                    if retry:
                        self.metrics.inc("push_retries")
                        pending = [o.device for o in retry]
                        waits = [o.retry_after for o in retry if o.retry_after is not None]
                        raise TransientPushError(pending, max(waits) if waits else None)
        except TransientPushError as exc:
            gave_up = True
            failed.append(f"gave up after {self.settings.max_attempts} attempts")
            log.warning("push gave up", extra={"job": job.id, "devices": len(exc.pending)})
        # Counted once recorded, so the counters never run ahead of the table.
        if sent:
            await self._finish(job, "sent", "; ".join(failed) or None)
            self.metrics.push_job("sent")
        else:
            await self._finish(job, "failed", "; ".join(failed) or "no device")
            self.metrics.inc("pushes_failed")
            # Why it reached nobody: retries ran out, FCM's code, or every token was dead.
            self.metrics.push_job(
                "failed", "gave_up" if gave_up else failed[0] if failed else "no_live_token"
            )
        self.metrics.inc("pushes_sent", sent)
