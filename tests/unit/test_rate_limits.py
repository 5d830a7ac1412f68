"""Token buckets and the limiter's choice of bucket, without I/O."""

from __future__ import annotations

import asyncio

import pytest

from bridge.errors import RateLimited
from bridge.limits import Bucket, Limiter, LocalBuckets, Rule
from bridge.metrics import Metrics

RULE = Rule(rate=2.0, burst=3)


def test_a_bucket_gives_its_burst_then_refills_at_its_rate() -> None:
    """Three at once, the fourth waits half a second (2 per second); after
    that half second one more goes through."""
    bucket = Bucket(RULE, now=100.0)
    assert [bucket.take(RULE, 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(RULE, 100.0) == pytest.approx(0.5)
    assert bucket.take(RULE, 100.5) == 0.0
    assert bucket.take(RULE, 100.5) == pytest.approx(0.5)


def test_a_bucket_never_saves_more_than_its_burst() -> None:
    """An hour idle still gives a burst of 3, not 7,200."""
    bucket = Bucket(RULE, now=0.0)
    taken = [bucket.take(RULE, 3600.0) for _ in range(4)]
    assert taken[:3] == [0.0, 0.0, 0.0] and taken[3] > 0


def test_full_buckets_are_forgotten() -> None:
    """Memory stays bounded: a bucket that has refilled is dropped."""
    buckets = LocalBuckets()
    buckets.take("a", RULE, 0.0)
    buckets.take("b", RULE, 10.0)
    buckets.prune(10.0)
    assert list(buckets.buckets) == ["b"]


def test_the_socket_bucket_refuses_before_the_users() -> None:
    """One socket spends its burst; the user's other socket still has the
    user's remaining tokens only, and a second user is untouched."""
    limiter = Limiter({"send": Rule(rate=0.01, burst=3)}, Metrics())

    async def scenario() -> None:
        for _ in range(2):
            await limiter.check("leo", "send", "sock-1")
        await limiter.check("leo", "send", "sock-2")
        with pytest.raises(RateLimited) as refused:
            await limiter.check("leo", "send", "sock-2")  # the user's bucket is empty
        assert refused.value.as_dict()["code"] == "rate_limited"
        assert refused.value.status == 429 and refused.value.retry_after > 0
        await limiter.check("ava", "send", "sock-3")

    asyncio.run(scenario())


def test_rate_zero_means_no_limit() -> None:
    """A kind with rate 0 is never refused."""
    limiter = Limiter({"send": Rule(rate=0.0, burst=0)}, Metrics())

    async def scenario() -> None:
        for _ in range(1000):
            await limiter.check("leo", "send", "sock")

    asyncio.run(scenario())
