"""The rate controller against a simulated service, and step by step.

The controller is pure (time is an argument), so these tests drive it with a fake clock. The
simulation below replays a whole run in simulated time: a service whose token bucket has rate
``R`` and burst ``B``, ~20 ms latency, and a client that sends whenever the controller's window
and an exact model of aiolimiter's bucket let it. It uses the very ``RateController`` that
``AdaptiveLimiter`` uses, so the figures asserted here are the limiter's own.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulk.engine.rate_control import (
    BETA,
    FIRST_CUT,
    FLOOR,
    INITIAL_WINDOW,
    JITTER_PROBES,
    JITTER_RETRY,
    LIMIT_CALLS,
    MARGIN,
    MARGIN_DECAY,
    MAX_CUT,
    MAX_MARGIN,
    WAIT_LIMIT,
    Phase,
    RateController,
)

# -- simulation ---------------------------------------------------------------------------------


@dataclass
class ServiceBucket:
    """The service's throttle: a token bucket that starts full (as the emulator's does)."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    updated: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def admit(self, now: float, rate: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated, self.rate = now, rate
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class ClientBucket:
    """aiolimiter's leaky bucket: ``level`` drains at the rate it was last given."""

    burst: int
    rate: float
    level: float = 0.0
    updated: float = 0.0

    def sync(self, now: float, rate: float) -> None:
        """Drain up to ``now`` at the old rate, then switch (what ``AdaptiveLimiter`` does)."""
        self.level = max(0.0, self.level - (now - self.updated) * self.rate)
        self.updated, self.rate = now, rate

    def ready_at(self, now: float) -> float:
        need = self.level + 1.0 - self.burst
        return now if need <= 1e-9 else now + need / self.rate


@dataclass(frozen=True)
class SimResult:
    rows: int
    limit: float  # the service's mean rate over the run
    elapsed: float
    calls: int
    throttled: int
    sends: list[float]
    rates: list[tuple[float, float]]  # (time, controller rate) after every answer

    @property
    def throughput(self) -> float:
        """Rows per second over the service's limit (1.0: every token the service had)."""
        return self.rows / self.elapsed / self.limit

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.calls

    def most_sent_in_one_second(self) -> int:
        most, first = 0, 0
        for last, when in enumerate(self.sends):
            while self.sends[first] <= when - 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most


Schedule = Callable[[float], float]


def simulate(
    controller: RateController,
    *,
    service_rate: float,
    service_burst: int,
    rows: int = 2000,
    latency: float = 0.020,
    jitter: float = 0.5,
    seed: int = 1,
    network: bool = False,
    schedule: Schedule | None = None,
    stalls: tuple[float, float] = (0.0, 0.0),
    arrival: float = 0.0,
    late: tuple[float, float] = (0.0, 0.0),
) -> SimResult:
    """Provision ``rows`` rows in simulated time; a throttled row is sent again at once.

    Latency is ``latency`` with uniform ``±jitter``. ``network=False`` answers as bulk's
    emulator does (a 429 at once, other answers after the latency); ``network=True`` delays
    every answer, as a distant service does. ``schedule(t)`` changes the service's rate.
    ``stalls=(p, longest)``: after a call, with probability ``p`` the sender is busy elsewhere
    for up to ``longest`` seconds (a busy event loop); its bucket keeps filling meanwhile, so
    the calls after a stall go out bunched, up to ``burst`` at once. ``arrival``: calls reach
    the service up to this many seconds after they leave, in any order; ``late=(p, longest)``:
    with probability ``p`` a call arrives up to ``longest`` seconds later still (a sender or
    server busy between the token and the wire: the tail of a loaded machine).
    """
    rng = random.Random(seed)
    rate_at = schedule or (lambda _: service_rate)
    service = ServiceBucket(rate_at(0.0), service_burst)
    assert controller.rate is not None
    client = ClientBucket(controller.burst, controller.rate)
    events: list[tuple[float, int, bool, bool]] = []  # heap: (time, order, answer?, admitted)
    order = count()
    now, pending, done, throttled, busy_until = 0.0, rows, 0, 0, 0.0
    sends: list[float] = []
    rates: list[tuple[float, float]] = []

    def sync() -> None:
        assert controller.rate is not None
        client.sync(now, controller.rate)

    while done < rows:
        next_event = events[0][0] if events else math.inf
        next_send = math.inf
        if pending:
            wait = controller.window_wait(now)
            sync()
            next_send = now + wait if wait > 0 else max(client.ready_at(now), busy_until)
        if next_send < next_event:
            now = next_send
            if controller.window_wait(now) > 0:
                continue
            sync()
            if client.ready_at(now) > now:
                continue
            if rng.random() < stalls[0]:
                busy_until = now + stalls[1] * rng.random()
            client.level += 1.0
            pending -= 1
            controller.on_send(now)
            sends.append(now)
            delay = arrival * rng.random()
            if late[0] and rng.random() < late[0]:
                delay += late[1] * rng.random()
            heapq.heappush(events, (now + delay, next(order), False, False))
            continue
        assert next_event < math.inf, "the client stalled"
        now, _, answer, admitted = heapq.heappop(events)
        if not answer:  # the call reaches the service
            admitted = service.admit(now, rate_at(now))
            delay = latency * (1.0 + jitter * (2.0 * rng.random() - 1.0))
            if not admitted and not network:
                delay = 0.0005 + 0.001 * rng.random()
            heapq.heappush(events, (now + delay, next(order), True, admitted))
            continue
        if admitted:
            done += 1
            controller.on_success(now)
        else:
            throttled += 1
            pending += 1
            controller.on_throttle(now)
            share = controller.retry_share
            if share is not None:  # jitter: the next call goes a share of an interval later
                sync()
                client.level = min(client.level, client.burst - 1.0 + share)
        sync()
        rates.append((now, client.rate))
    if schedule is None:
        limit = service_rate
    else:
        steps = 1000
        limit = sum(rate_at(now * (i + 0.5) / steps) for i in range(steps)) / steps
    return SimResult(rows, limit, now, len(sends), throttled, sends, rates)


SEEDS = (1, 2, 3)

# The operating point: --rate equal to the service's, burst 1 on both sides; (rate, rows,
# arrival). Calls leave exactly 1/R apart and reach the service with up to 0.5% of that of
# jitter (5 ms at 1/s, 0.5 ms at 10/s): now and then one arrives early to an empty bucket.
OPERATING_POINTS = ((1.0, 120, 0.005), (10.0, 1200, 0.0005))


def runs(
    max_rate: float,
    burst: int,
    *,
    service_rate: float,
    service_burst: int,
    rows: int = 2000,
    initial_rate: float | None = None,
    arrival: float = 0.0,
) -> list[SimResult]:
    """The same run against both answer models, with several seeds for the latency jitter."""
    return [
        simulate(
            RateController(max_rate, burst, initial_rate=initial_rate),
            service_rate=service_rate,
            service_burst=service_burst,
            rows=rows,
            seed=seed,
            network=network,
            arrival=arrival,
        )
        for network in (False, True)
        for seed in SEEDS
    ]


def assert_never_above(result: SimResult, max_rate: float, burst: int) -> None:
    assert max(rate for _, rate in result.rates) <= max_rate
    assert result.most_sent_in_one_second() <= max_rate + burst


class TestSimulatedService:
    @pytest.mark.parametrize("burst", [1, 2, 3, 4, 5])
    def test_known_limit_is_used_in_full(self, burst: int) -> None:
        # --rate 100 --burst 1..5 against a 100/s service whose burst is 5.
        for result in runs(100, burst, service_rate=100, service_burst=5):
            assert result.throughput >= 0.99
            assert result.throttled_share <= 0.005
            assert_never_above(result, 100, burst)

    @pytest.mark.parametrize("burst", [1, 5])
    def test_unknown_limit_is_found_without_a_storm_of_429s(self, burst: int) -> None:
        # --rate 1000 against a 100/s service: the overshoot at startup counts too.
        for result in runs(1000, burst, service_rate=100, service_burst=5):
            assert result.throughput >= 0.95
            assert result.throttled_share <= 0.02
            assert_never_above(result, 1000, burst)

    @pytest.mark.parametrize("network", [False, True])
    def test_known_limit_with_a_bursty_sender(self, network: bool) -> None:
        # A busy event loop bunches calls: with client and service both at 100/s, burst 5, the
        # service's bucket runs near empty and jitter alone draws 429s. Adapting to them must
        # cost little against the same sender at a fixed rate.
        for seed in SEEDS:
            fixed, adaptive = (
                simulate(
                    RateController(100, 5, adaptive=adaptive),
                    service_rate=100,
                    service_burst=5,
                    seed=seed,
                    network=network,
                    stalls=(0.1, 0.05),
                    arrival=0.003,
                )
                for adaptive in (False, True)
            )
            assert fixed.throttled >= 10
            assert adaptive.throughput >= 0.96 * fixed.throughput
            assert adaptive.throttled < fixed.throttled

    def test_unknown_limit_with_a_bursty_sender(self) -> None:
        for seed in SEEDS:
            result = simulate(
                RateController(1000),
                service_rate=100,
                service_burst=5,
                seed=seed,
                stalls=(0.1, 0.05),
                arrival=0.003,
            )
            assert result.throughput >= 0.85
            assert result.throttled_share <= 0.02

    def test_slow_service(self) -> None:
        for result in runs(1000, 1, service_rate=10, service_burst=5):
            assert result.throughput >= 0.95
            assert result.throttled_share <= 0.03

    def test_fast_service(self) -> None:
        # 2,000 rows at 500/s is 4 s: the search for the limit has to be quick.
        for result in runs(1000, 1, service_rate=500, service_burst=5):
            assert result.throughput >= 0.85
            assert result.throttled_share <= 0.01
        result = simulate(RateController(1000), service_rate=500, service_burst=5, rows=10_000)
        assert result.throughput >= 0.95

    @pytest.mark.parametrize("max_rate", [105, 120])
    def test_limit_between_start_and_max(self, max_rate: float) -> None:
        # At 105 the lane holds at --rate, where 429s are taken for jitter at first: they must
        # still be found to be a limit once a margin cannot explain them.
        for result in runs(max_rate, 1, service_rate=100, service_burst=5):
            assert result.throughput >= 0.97
            assert result.throttled_share <= 0.01
            assert_never_above(result, max_rate, 1)

    @pytest.mark.parametrize(("rate", "rows", "arrival"), OPERATING_POINTS)
    def test_operating_point(self, rate: float, rows: int, arrival: float) -> None:
        for result in runs(rate, 1, service_rate=rate, service_burst=1, rows=rows, arrival=arrival):
            assert result.throughput >= 0.99
            assert result.throttled_share <= 0.01
            # The rate the run saves, which the next run starts from: the 429s were jitter.
            assert result.rates[-1][1] >= 0.98 * rate
            assert_never_above(result, rate, 1)

    @pytest.mark.parametrize(("rate", "rows", "arrival"), OPERATING_POINTS)
    def test_operating_point_resumed_from_the_learned_rate(
        self, rate: float, rows: int, arrival: float
    ) -> None:
        def run(rows: int, learned: float | None = None) -> list[SimResult]:
            return runs(
                rate,
                1,
                service_rate=rate,
                service_burst=1,
                rows=rows,
                arrival=arrival,
                initial_rate=learned,
            )

        learned = run(rows)[0].rates[-1][1]
        # Not a 429 until the margin first narrows (after MARGIN_DECAY calls).
        for result in run(min(rows, MARGIN_DECAY - 1), learned):
            assert result.throttled == 0
            assert result.throughput >= 0.99
            assert result.rates[-1][1] == pytest.approx(learned)

    @pytest.mark.parametrize("network", [False, True])
    def test_recovers_after_a_temporary_drop(self, network: bool) -> None:
        # The service halves its rate for 5 s, then comes back.
        def schedule(t: float) -> float:
            return 50.0 if 8.0 <= t < 13.0 else 100.0

        for seed in SEEDS:
            result = simulate(
                RateController(1000),
                service_rate=100,
                service_burst=5,
                rows=3000,
                seed=seed,
                network=network,
                schedule=schedule,
            )
            during = [rate for t, rate in result.rates if 9.0 <= t < 13.0]
            assert min(during) >= 40 and sum(during) / len(during) <= 60
            back = next(t for t, rate in result.rates if t >= 13.0 and rate >= 90)
            assert back - 13.0 <= 5.0
            assert result.throughput >= 0.85

    @pytest.mark.parametrize("initial_rate", [60, 95, 150])
    def test_resumed_run_starts_from_the_learned_rate(self, initial_rate: float) -> None:
        result = simulate(
            RateController(1000, initial_rate=initial_rate), service_rate=100, service_burst=5
        )
        assert result.rates[0][1] <= initial_rate
        assert result.throughput >= 0.93
        assert result.throttled_share <= 0.01


# -- controller, step by step -------------------------------------------------------------------


def send(controller: RateController, now: float, calls: int = 1) -> None:
    for _ in range(calls):
        controller.on_send(now)


def steady_at(rate: float, max_rate: float = 1000.0) -> RateController:
    """A controller that learned ``rate`` in an earlier run (STEADY from the start)."""
    controller = RateController(max_rate, initial_rate=rate)
    controller.update(0.0)
    return controller


def flow(controller: RateController, start: float, seconds: float, latency: float = 0.02) -> float:
    """Send at the controller's rate for ``seconds``, every call succeeding; returns the end."""
    now, sent = start, []
    while now < start + seconds:
        assert controller.rate is not None
        controller.on_send(now)
        sent.append(now)
        while sent and sent[0] + latency <= now:
            controller.on_success(sent.pop(0) + latency)
        now += 1.0 / controller.rate
    for when in sent:
        controller.on_success(when + latency)
    return now


class TestRateController:
    def test_starts_at_max_rate(self) -> None:
        controller = RateController(100, 5)
        assert controller.rate == 100
        assert controller.phase is Phase.STARTUP

    def test_learned_rate_below_max_skips_the_startup(self) -> None:
        assert RateController(1000, initial_rate=80).rate == 80
        assert RateController(1000, initial_rate=80).phase is Phase.STEADY
        assert RateController(100, initial_rate=400).phase is Phase.STARTUP
        assert RateController(100, initial_rate=400).rate == 100

    def test_startup_window_doubles_per_round_trip(self) -> None:
        controller = RateController(1000)
        send(controller, 0.0, INITIAL_WINDOW)
        assert controller.window_wait(0.001) > 0
        controller.on_success(0.02)
        # One success lets two more go: the window grows by one per answer.
        assert controller.window_wait(0.02) == 0
        send(controller, 0.02, 2)
        assert controller.window_wait(0.02) > 0

    def test_startup_window_fits_the_burst(self) -> None:
        controller = RateController(100, burst=5)
        send(controller, 0.0, 5)
        assert controller.window_wait(0.0) == 0

    def test_window_gives_up_on_answers_that_never_come(self) -> None:
        controller = RateController(1000)
        send(controller, 0.0, INITIAL_WINDOW)
        assert controller.window_wait(0.5) == pytest.approx(WAIT_LIMIT - 0.5)
        assert controller.window_wait(WAIT_LIMIT) == 0

    def test_first_throttle_drains_then_estimates(self) -> None:
        controller = RateController(1000)
        send(controller, 0.0, 4)
        for _ in range(4):
            controller.on_success(0.02)
        send(controller, 0.02, 8)
        assert controller.on_throttle(0.021)
        assert controller.phase is Phase.DRAIN
        assert controller.rate == 1000  # unchanged while draining: the window holds calls back
        # Nothing goes until every call sent has answered ...
        for answer in range(6):
            controller.on_throttle(0.022)
            assert controller.window_wait(0.022 + answer * 0.001) > 0
        controller.on_success(0.04)
        assert controller.window_wait(0.04) == 0
        # ... then the rate is the successes per second so far.
        assert controller.phase.value == "search"  # .value: mypy keeps .phase narrowed to DRAIN
        assert controller.rate == pytest.approx(5 / 0.04)
        assert controller.decreases == 1

    def test_search_doubles_until_the_next_throttle(self) -> None:
        controller = RateController(1000)
        send(controller, 0.0, 4)
        controller.on_throttle(0.001)
        for _ in range(3):
            controller.on_success(0.02)
        start = controller.rate
        assert controller.phase is Phase.SEARCH and start is not None
        end = flow(controller, 0.02, 0.5)
        assert controller.rate == pytest.approx(start * 2 ** ((end - 0.02) / 0.5), rel=0.1)

    def test_throttles_of_calls_in_flight_are_one_event(self) -> None:
        controller = steady_at(100)
        send(controller, 0.0, 10)
        assert controller.on_throttle(0.01)
        rate = controller.rate
        for _ in range(9):
            assert not controller.on_throttle(0.012)
        assert controller.rate is not None and rate is not None
        assert controller.rate >= rate  # no further cut (the curve has started back up)
        assert controller.decreases == 1
        assert controller.throttled == 10

    def test_one_throttle_never_collapses_the_rate(self) -> None:
        controller = steady_at(100)
        now = flow(controller, 0.0, 10.0)
        rate = controller.rate
        assert rate is not None
        controller.on_send(now)
        controller.on_throttle(now + 0.001)
        assert controller.rate is not None
        assert controller.rate >= BETA * FIRST_CUT * rate
        assert controller.rate < rate

    def test_a_429_at_max_rate_keeps_the_rate_with_a_margin(self) -> None:
        # Held at --rate, the lane was not probing: a 429 is jitter, not a lower limit.
        controller = steady_at(90, max_rate=100)
        now = flow(controller, 0.0, 5.0)
        assert controller.rate == 100
        controller.on_send(now)
        assert controller.on_throttle(now)
        assert controller.rate == pytest.approx(100 * (1 - MARGIN))
        # No climb back to the rate that drew the 429, and no cut that deepens over time.
        flow(controller, now, 2.0)
        assert controller.rate == pytest.approx(100 * (1 - MARGIN))

    def test_the_first_429_at_max_rate_in_startup_is_jitter(self) -> None:
        # --rate 1 against a 1/s service: the service took every call until one came early.
        # The next call goes a tenth of a second later, and its success says jitter.
        controller = RateController(1.0)
        for second in range(5):
            controller.on_send(float(second))
            controller.on_success(second + 0.02)
        controller.on_send(5.0)
        assert not controller.on_throttle(5.001)
        assert controller.retry_share == JITTER_RETRY
        controller.on_send(5.1)
        controller.on_success(5.12)
        assert controller.phase is Phase.STEADY
        assert controller.rate == pytest.approx(1 - MARGIN)

    def test_a_first_429_whose_next_call_fails_too_drains(self) -> None:
        # A service at a tenth of --rate: a tenth of an interval later its bucket is still
        # empty; the lane drains and searches from what the service took.
        controller = RateController(10.0)
        controller.on_send(0.0)
        controller.on_success(0.02)
        controller.on_send(0.1)
        assert not controller.on_throttle(0.101)
        assert controller.retry_share == JITTER_RETRY
        controller.on_send(0.11)
        assert controller.on_throttle(0.111)
        assert controller.phase is Phase.SEARCH  # nothing under way: drained at once
        assert controller.rate is not None and controller.rate < 10

    def test_a_first_429_with_calls_under_way_drains_at_once(self) -> None:
        controller = RateController(1000.0)
        send(controller, 0.0, 4)
        controller.on_success(0.01)
        assert controller.on_throttle(0.011)
        assert controller.phase is Phase.DRAIN
        assert controller.retry_share is None

    def test_the_margin_widens_while_429s_keep_coming_then_cuts(self) -> None:
        controller = steady_at(100 * (1 - MARGIN), max_rate=100)  # held at its cap
        now = flow(controller, 0.0, 0.1)
        rates = []
        for _ in range(2):  # a 429 every 10 calls: more than any margin up to MAX_MARGIN costs
            controller.on_send(now)
            assert controller.on_throttle(now + 0.001)
            rates.append(controller.rate)
            now = flow(controller, now + 0.001, 0.1)
        assert rates == pytest.approx([100 * (1 - m) for m in (2 * MARGIN, MAX_MARGIN)])
        # At MAX_MARGIN they still come: the service takes less than --rate after all. The
        # first of them may be the end of a cluster of jitter; the next is a limit.
        controller.on_send(now)
        assert not controller.on_throttle(now + 0.001)
        assert controller.rate == pytest.approx(100 * (1 - MAX_MARGIN))
        now = flow(controller, now + 0.001, 0.1)
        controller.on_send(now)
        assert controller.on_throttle(now + 0.001)
        assert controller.rate is not None and controller.rate < 100 * (1 - MAX_MARGIN) * 0.99
        assert controller.decreases == 3

    def test_a_rare_429_at_the_cap_keeps_the_margin(self) -> None:
        controller = steady_at(100, max_rate=100)
        controller.on_send(0.0)
        controller.on_throttle(0.001)
        now = flow(controller, 0.001, 2.0)  # ~200 calls: one 429 in them costs less than 1%
        controller.on_send(now)
        assert not controller.on_throttle(now + 0.001)
        assert controller.rate == pytest.approx(100 * (1 - MARGIN))
        # The same at MAX_MARGIN, once in more than LIMIT_CALLS calls: jitter, not a limit.
        for _ in range(2):
            now = flow(controller, now + 0.001, 0.05)
            controller.on_send(now)
            controller.on_throttle(now + 0.001)
        assert controller.rate == pytest.approx(100 * (1 - MAX_MARGIN))
        now = flow(controller, now + 0.001, 1.5 * LIMIT_CALLS / 100)
        controller.on_send(now)
        assert not controller.on_throttle(now + 0.001)
        assert controller.rate == pytest.approx(100 * (1 - MAX_MARGIN))

    def test_a_429_at_the_cap_lets_the_next_call_go_soon(self) -> None:
        # The service's bucket was a few milliseconds short of a token: the next call need
        # not wait a whole interval, and its own 429, if the bucket is still short, is the
        # same jitter: neither the margin nor the rate moves for it.
        controller = steady_at(1.0 - MARGIN, max_rate=1.0)  # held at its cap
        now = flow(controller, 0.0, 10.0)
        assert controller.retry_share is None
        controller.on_send(now)
        controller.on_throttle(now + 0.02)
        assert controller.retry_share == JITTER_RETRY
        rate, decreases = controller.rate, controller.decreases
        for probe in range(1, JITTER_PROBES):
            controller.on_send(now + probe)
            assert not controller.on_throttle(now + probe + 0.02)
            assert controller.retry_share == pytest.approx(JITTER_RETRY * 2**probe)
            assert (controller.rate, controller.decreases) == (rate, decreases)
        controller.on_send(now + JITTER_PROBES)
        controller.on_success(now + JITTER_PROBES + 0.02)
        assert controller.retry_share is None
        assert (controller.rate, controller.decreases) == (rate, decreases)

    def test_no_early_call_makes_a_second_hold_more_than_rate_and_burst(self) -> None:
        # At 1/s with a burst of 1 a lane sends at most two calls in any one second: the
        # 429's and one more. A second 429 in that second waits its whole interval.
        controller = steady_at(1.0 - MARGIN, max_rate=1.0)
        now = flow(controller, 0.0, 10.0)
        controller.on_send(now)
        controller.on_throttle(now + 0.02)
        assert controller.retry_share == JITTER_RETRY
        controller.on_send(now + 0.12)
        controller.on_throttle(now + 0.14)
        assert controller.retry_share is None

    def test_429s_that_keep_coming_after_the_last_probe_count_as_usual(self) -> None:
        controller = steady_at(1.0 - MARGIN, max_rate=1.0)
        now = flow(controller, 0.0, 10.0)
        for probe in range(JITTER_PROBES):
            controller.on_send(now + probe)
            controller.on_throttle(now + probe + 0.02)
        margin = controller.margin
        controller.on_send(now + JITTER_PROBES)
        assert controller.on_throttle(now + JITTER_PROBES + 0.02)  # the margin widens
        assert controller.margin == pytest.approx(2 * margin)

    def test_a_429_below_the_cap_waits_its_interval(self) -> None:
        # Probing above what the service took: a limit, not jitter; no early call after it.
        controller = steady_at(50, max_rate=100)
        now = flow(controller, 0.0, 3.0)
        controller.on_send(now)
        assert controller.on_throttle(now + 0.001)
        assert controller.retry_share is None

    def test_the_margin_narrows_once_429s_stop(self) -> None:
        controller = steady_at(100, max_rate=100)
        controller.on_send(0.0)
        controller.on_throttle(0.001)
        flow(controller, 0.001, 0.9 * MARGIN_DECAY / 100)
        assert controller.rate == pytest.approx(100 * (1 - MARGIN))
        flow(controller, 0.9 * MARGIN_DECAY / 100, 0.2 * MARGIN_DECAY / 100)
        assert controller.rate == 100

    def test_a_learned_rate_near_max_rate_holds_there(self) -> None:
        # The last run held at --rate 1 less a margin: this one starts and stays there.
        controller = RateController(1.0, initial_rate=0.99)
        assert controller.phase is Phase.STEADY and controller.rate == 0.99
        flow(controller, 0.0, 200.0)
        assert controller.rate == pytest.approx(0.99)

    def test_a_429_while_probing_cuts_to_what_was_accepted(self) -> None:
        controller = steady_at(100)
        controller.on_send(0.0)
        controller.on_throttle(0.0)
        # The service takes 100/s while the curve climbs back and probes beyond.
        now = 0.0
        for _ in range(330):
            now += 0.01
            controller.on_send(now)
            controller.on_success(now + 0.02)
        rate = controller.rate
        assert rate is not None and 1.05 * 100 < rate < 100 / FIRST_CUT
        controller.on_send(now)
        controller.on_throttle(now + 0.03)
        accepted = 330 / (now + 0.03)
        assert controller.rate == pytest.approx(BETA * max(accepted, FIRST_CUT * rate))
        assert controller.rate is not None and controller.rate < 100

    def test_throttles_that_keep_coming_cut_deeper_but_at_most_half_each(self) -> None:
        controller = steady_at(400)
        now, rates = 0.0, [400.0]
        for _ in range(40):
            # The service accepts nothing: every call is throttled.
            controller.on_send(now)
            controller.on_throttle(now + 0.001)
            now += 0.02
            assert controller.rate is not None
            assert controller.rate >= MAX_CUT * rates[-1]
            rates.append(controller.rate)
        assert rates[-1] < 50
        assert min(rates) >= FLOOR

    def test_probes_back_up_and_beyond(self) -> None:
        controller = steady_at(100)
        now = flow(controller, 0.0, 1.0)
        controller.on_send(now)
        controller.on_throttle(now)
        cut = controller.rate
        assert cut is not None and cut < 100
        now = flow(controller, now, 2.0)
        assert controller.rate is not None and controller.rate >= 0.99 * cut / BETA
        flow(controller, now, 4.0)
        assert controller.rate > 1.2 * cut / BETA

    def test_no_growth_without_demand(self) -> None:
        controller = steady_at(100)
        controller.on_send(0.0)
        controller.on_throttle(0.001)
        ceiling = (controller.rate or 0) / BETA
        # One call every half second for a minute: nothing says the service takes more.
        for step in range(120):
            now = 0.01 + step * 0.5
            controller.on_send(now)
            controller.on_success(now + 0.02)
        assert controller.rate is not None and controller.rate <= ceiling + 1e-9

    def test_never_exceeds_max_rate(self) -> None:
        controller = steady_at(90, max_rate=100)
        flow(controller, 0.0, 60.0)
        assert controller.rate == 100

    def test_not_adaptive_keeps_its_rate(self) -> None:
        controller = RateController(100, adaptive=False)
        send(controller, 0.0, 10)
        assert not controller.on_throttle(0.01)
        assert controller.rate == 100
        assert controller.window_wait(0.01) == 0
        assert (controller.throttled, controller.decreases) == (1, 0)

    def test_no_limit_counts_answers(self) -> None:
        controller = RateController(None)
        send(controller, 0.0, 3)
        controller.on_throttle(0.01)
        controller.on_success(0.02)
        assert controller.rate is None
        assert (controller.sent, controller.throttled, controller.succeeded) == (3, 1, 1)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"max_rate": -1.0}, "max_rate must be a positive number or None, got -1.0"),
            ({"max_rate": math.nan}, "got nan"),
            ({"max_rate": 10.0, "burst": 0}, "burst must be at least 1, got 0"),
            ({"max_rate": 10.0, "initial_rate": 0.0}, "initial_rate must be a positive number"),
        ],
    )
    def test_rejects_bad_settings(self, kwargs: dict[str, float], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            RateController(**kwargs)  # type: ignore[arg-type]

    @settings(max_examples=100, deadline=None)
    @given(
        max_rate=st.floats(0.2, 2000),
        burst=st.integers(1, 10),
        events=st.lists(
            st.tuples(st.sampled_from(["send", "ok", "429"]), st.floats(0, 0.5)), max_size=300
        ),
    )
    def test_rate_stays_between_floor_and_max(
        self, max_rate: float, burst: int, events: list[tuple[str, float]]
    ) -> None:
        controller = RateController(max_rate, burst)
        now = 0.0
        for event, step in events:
            now += step
            if event == "send":
                controller.window_wait(now)
                controller.on_send(now)
            elif event == "ok":
                controller.on_success(now)
            else:
                controller.on_throttle(now)
            assert controller.rate is not None
            assert min(FLOOR, max_rate) <= controller.rate <= max_rate
            assert controller.decreases <= controller.throttled
