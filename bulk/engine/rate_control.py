"""How fast a lane may send: a control law that follows the service's 429s.

The service's quota is the tool's physical limit, but users rarely know it and the service
sends no ``Retry-After``: a 429 is the only signal. :class:`RateController` decides a lane's
rate from the answers its calls get; :class:`~bulk.engine.limiter.AdaptiveLimiter` applies that
rate to the lane's token bucket. The controller is pure logic with time passed in: tests drive
it with a fake clock and a simulated server (``tests/test_rate_control.py``).

How the controller behaves (the service is modelled as a token bucket, rate ``R``, burst
``Bs``, that answers 429 when empty):

``STARTUP``
    Sends at ``max_rate`` but, like TCP's slow start, keeps at most ``INITIAL_WINDOW`` calls
    without an answer at first and lets two more go per success: the window doubles every round
    trip. Starting at ``--rate 1000`` against a 100/s service thus overshoots by a handful of
    calls, not by the ~20 that a full round trip at 1,000/s would send blind.
``DRAIN``
    On the first 429 no more calls go out until every call already sent has answered. The
    successes so far over the time since the first call give the first estimate of ``R``.
``SEARCH``
    From that estimate the rate doubles every ``SEARCH_DOUBLING`` seconds until the next 429:
    an estimate that came out low (a slow first round trip) costs a fraction of a second.
``STEADY``
    On a 429 the rate drops to ``BETA`` times an estimate of the accepted rate, then follows a
    cubic curve (as TCP CUBIC does): back up to the estimate within ``tau``, a plateau around
    it, then faster and faster probing beyond it, so a limit that was raised is found again.

Estimating ``R`` without collapsing on one 429: a 429 means the service's bucket is empty at
that moment, so between two 429s the successes count ``R`` times the time between them (give or
take one call), less whatever the bucket lost while full, which only happens while the lane sends
below ``R``: a lower bound. The first 429 after a quiet spell cuts to ``BETA`` times that bound,
taken as at least ``FIRST_CUT`` of the current rate (one 429 is weak evidence). When the bound
says the service took about all the lane sent, or the lane was holding at ``max_rate`` rather
than probing, the 429 is more likely jitter (calls bunched on their way: with ``--rate`` equal to
the limit and equal bursts, the service's bucket runs near empty) and the cut only
``FIRST_BETA``. Further 429s within ``EPISODE_GAP`` belong to the same congestion episode; once
it is clearly saturated (a quarter of its answers 429s, or a third decrease) its successes per
second, which are then ``R``, set the rate; until then each cuts by ``REPEAT_CUT``. No single
429 cuts the rate by more than half, or below ``FLOOR``.

429s from calls already under way when the rate dropped say nothing about the new rate: after a
decrease the controller holds (ignores 429s) until those calls have answered, so a burst of
429s is one congestion event, not ten halvings.

Measured with the simulation in ``tests/test_rate_control.py`` (2,000 rows, 100/s service with
burst 5, ~20 ms latency): ``--rate 100 --burst 1..5`` uses the whole limit with at most one 429;
``--rate 1000`` reaches 0.99-1.00 of it with 0.6-1.3% of calls throttled, startup overshoot
included.
"""

from __future__ import annotations

import enum
import math
from collections import deque

#: The rate after a decrease, as a share of the estimated accepted rate. Below 1 so the service's
#: bucket refills a little while the lane climbs back; close to 1 so little throughput is lost.
BETA = 0.95
#: The first 429 of an episode cuts to BETA times the rate accepted since the previous 429,
#: taken as at least FIRST_CUT times the current rate (one 429 is weak evidence); if that rate
#: is at least FIRST_KEEP times the current one, only to FIRST_BETA times the current rate.
FIRST_CUT = 0.85
FIRST_KEEP = 0.95
FIRST_BETA = 0.98
#: A lane held at max_rate this long (seconds, or 10 calls), or heading back to it, was not
#: probing beyond a limit when a 429 came.
CAPPED = 0.5
#: The cut of a further 429 in an episode that does not say more yet.
REPEAT_CUT = 0.95
#: An episode's own estimate counts once at least this share of its answers are 429s, or once
#: it has had this many decreases.
SATURATED = 0.25
EPISODE_EVENTS = 3
#: No single 429 lowers the rate below this share of the current rate: no collapse to ~1/s.
MAX_CUT = 0.5
#: The lowest rate the controller ever picks (requests per second), unless max_rate is lower.
FLOOR = 0.5
#: 429s closer together than this (seconds, or two calls at the current rate) are one episode.
EPISODE_GAP = 1.0
#: An episode's own rate estimate needs this many seconds of data.
MIN_SPAN = 0.05
#: The cubic curve's time unit (seconds): at least this, and at least this many calls.
TAU_MIN = 1.5
TAU_CALLS = 75
#: Growth beyond the last estimate ``c``: ``x`` taus after a decrease the rate is
#: ``c * (1 + PROBE_GROWTH * (x - 1) ** 3)`` (+20% one tau past ``c``, +160% two taus past).
PROBE_GROWTH = 0.2
#: SEARCH doubles the rate this often (seconds; at least two calls' worth).
SEARCH_DOUBLING = 0.5
#: STARTUP's window: calls without an answer before the first answer (at least burst + 2).
INITIAL_WINDOW = 4
#: A window or hold that waits longer than this (seconds) for answers gives up waiting: calls
#: whose answer is never reported (cancelled, crashed) must not stall the lane.
WAIT_LIMIT = 1.0
#: Growth above the last estimate needs demand: the rate stays below this multiple of the rate
#: actually sent over the last ``max(SEND_WINDOW, 4 calls)`` seconds.
APP_LIMIT = 2.0
SEND_WINDOW = 1.0
#: 429s remembered for the between-429s estimate.
HISTORY = 64


class Phase(enum.Enum):
    """Where the controller is in its search for the service's rate."""

    STARTUP = "startup"  # no 429 yet: max rate, with a doubling window of unanswered calls
    DRAIN = "drain"  # first 429: waiting for the calls under way to answer
    SEARCH = "search"  # doubling from the first estimate until the next 429
    STEADY = "steady"  # cut on 429, cubic probing in between
    FIXED = "fixed"  # not adaptive, or no limit at all


class RateController:
    """Decides one lane's sending rate from the answers its calls get.

    Pure logic: every method takes the current time ``now`` (seconds, any origin) and nothing
    here sleeps or touches an event loop, so tests drive it with a fake clock and a simulated
    service. :class:`~bulk.engine.limiter.AdaptiveLimiter` feeds it and applies :attr:`rate` to
    its token bucket.

    The caller reports each call once: :meth:`on_send` when it goes out, then :meth:`on_success`
    (any answer but a 429) or :meth:`on_throttle` (a 429). Before sending it asks
    :meth:`window_wait` whether the startup window or a drain holds calls back.
    ``max_rate=None`` means no client-side limit: the rate stays ``None``, answers are counted.
    """

    def __init__(
        self,
        max_rate: float | None,
        burst: int = 1,
        *,
        initial_rate: float | None = None,
        adaptive: bool = True,
    ) -> None:
        if max_rate is not None and not (max_rate > 0 and math.isfinite(max_rate)):
            raise ValueError(f"max_rate must be a positive number or None, got {max_rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        if initial_rate is not None and not (initial_rate > 0 and math.isfinite(initial_rate)):
            raise ValueError(f"initial_rate must be a positive number, got {initial_rate!r}")
        self.max_rate = max_rate
        self.burst = burst
        self.sent = 0
        self.succeeded = 0
        self.throttled = 0
        self.decreases = 0
        self._floor = min(FLOOR, max_rate) if max_rate is not None else FLOOR
        self._window = max(INITIAL_WINDOW, burst + 2)
        self._last_answer: float | None = None  # time of the last answer (or first send)
        self._first_send: float | None = None
        # Hold: after a decrease, 429s are ignored until ``_hold_answers`` calls have answered
        # (the calls under way at the decrease) or until ``_hold_until``.
        self._hold_answers = 0
        self._hold_until = -math.inf
        # The curve since the last decrease: r(t) from ``_start_rate`` at ``_since`` towards the
        # estimate ``_ceiling``.
        self._since: float | None = None
        self._start_rate = 0.0
        self._ceiling = 0.0
        # The current congestion episode: time, successes and 429s at its start, decreases since.
        self._episode: tuple[float, int, int, int] | None = None
        self._last_decrease = -math.inf
        self._capped_since: float | None = None  # at max_rate since then
        self._throttles: deque[tuple[float, int]] = deque(maxlen=HISTORY)  # (time, successes)
        self._sends: deque[float] = deque()  # send times, for the rate actually sent
        self._rate: float | None
        if max_rate is None or not adaptive:
            self.phase = Phase.FIXED
            self._rate = max_rate
        elif initial_rate is None or initial_rate >= max_rate:
            # Nothing learned yet (or nothing below the most the lane may send): search.
            self.phase = Phase.STARTUP
            self._rate = max_rate
        else:
            # A resumed run starts where the last one left off, on the plateau of the curve.
            self.phase = Phase.STEADY
            self._rate = self._start_rate = self._ceiling = min(max_rate, initial_rate)

    # -- what the sender asks ------------------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """The rate calls may go out at now (requests/s); ``None``: no limit."""
        return self._rate

    def window_wait(self, now: float, queued: int = 0) -> float:
        """Seconds a call must wait for an answer before it may go (0: go now).

        ``queued`` counts calls already let through but not yet sent (waiting for a token).
        The wait is an upper bound: any answer may open the window earlier.
        """
        self.update(now)
        if self.phase is Phase.STARTUP:
            if self.sent + queued < self._window + 2 * self.succeeded:
                return 0.0
        elif self.phase is not Phase.DRAIN:
            return 0.0
        # Wait for an answer, but not forever: the answers of some calls may never come.
        since = self._last_answer if self._last_answer is not None else now
        return max(0.0, since + WAIT_LIMIT - now)

    # -- what the sender reports ---------------------------------------------------------------

    def on_send(self, now: float) -> None:
        """A call goes out now."""
        self.sent += 1
        if self._first_send is None:
            self._first_send = self._last_answer = now
        self._sends.append(now)
        self._send_rate(now)  # drops the sends that fell out of the window

    def on_success(self, now: float) -> None:
        """A call got an answer that is not a 429."""
        self.succeeded += 1
        self._last_answer = now
        self.update(now)

    def on_throttle(self, now: float) -> bool:
        """A call got a 429; ``True`` if the controller lowered the rate for it."""
        held = self._holding(now)  # this answer is one of the calls under way at a decrease
        self.throttled += 1
        self._last_answer = now
        acted = False
        if self.phase is Phase.STARTUP:
            # Every call under way was sent blind at the startup pace: stop and count them.
            self.phase = Phase.DRAIN
            self._hold_until = now + WAIT_LIMIT
            self.decreases += 1
            acted = True
        elif self.phase in (Phase.SEARCH, Phase.STEADY) and not held:
            self._decrease(now)
            acted = True
        self._throttles.append((now, self.succeeded))
        self.update(now)
        return acted

    def update(self, now: float) -> None:
        """Move the rate along the current phase's curve up to ``now``."""
        if self.phase is Phase.DRAIN:
            self._end_drain(now)
            return
        if self._rate is None or self.phase in (Phase.FIXED, Phase.STARTUP):
            return
        if self._since is None:
            self._since = now  # a resumed run's curve starts with its first call
        if self._holding(now):
            return
        assert self.max_rate is not None
        elapsed = now - self._since
        if self.phase is Phase.SEARCH:
            doubling = max(SEARCH_DOUBLING, 2 / self._start_rate)
            rate = self._start_rate * 2 ** (elapsed / doubling)
        else:
            rate = self._curve(elapsed)
        if rate > self._rate:
            # Growth needs demand: a lane that sends less than it may (few rows left, waiting on
            # retries) learns nothing about the service by raising a rate it does not use.
            rate = min(rate, max(self._ceiling, self._rate, APP_LIMIT * self._send_rate(now)))
        self._rate = min(self.max_rate, max(self._floor, rate))
        if self._rate < self.max_rate:
            self._capped_since = None
        elif self._capped_since is None:
            self._capped_since = now

    # -- internals -----------------------------------------------------------------------------

    def _holding(self, now: float) -> bool:
        answered = self.succeeded + self.throttled
        return answered < self._hold_answers and now < self._hold_until

    def _end_drain(self, now: float) -> None:
        """Leave DRAIN once every call sent has answered (or waiting timed out)."""
        if self.succeeded + self.throttled < self.sent and now < self._hold_until:
            return
        assert self.max_rate is not None
        # Successes per second since the first call: the service's burst makes this high, the
        # first round trip (no answers yet) and the drain itself make it low. SEARCH fixes a low
        # estimate within a fraction of a second, and STEADY a high one after a 429 or two.
        first = self._first_send if self._first_send is not None else now
        span = max(now - first, 1e-3)
        estimate = max(self.succeeded, 1) / span
        self.phase = Phase.SEARCH
        self._rate = self._start_rate = self._ceiling = min(
            self.max_rate, max(self._floor, estimate)
        )
        self._since = now

    def _decrease(self, now: float) -> None:
        """Act on a 429: cut the rate and start a new curve."""
        assert self._rate is not None
        rate = self._rate
        if (
            self.phase is Phase.SEARCH
            or self._episode is None
            or now - self._last_decrease > max(EPISODE_GAP, 2 / rate)
        ):
            self._episode = (now, self.succeeded, self.throttled - 1, 0)
            estimate: float | None = self._first_estimate(now)
        else:
            estimate = self._episode_estimate(now)
        start, successes, throttled, events = self._episode
        self._episode = (start, successes, throttled, events + 1)
        if estimate is None:
            # The last cut was not enough, by an unknown amount: cut again and stay there (no
            # climb back towards the rate that just failed) until the curve probes again.
            new = max(self._floor, MAX_CUT * rate, REPEAT_CUT * rate)
            ceiling = new
        else:
            cut = BETA * min(rate, estimate)
            if events == 0 and estimate >= FIRST_KEEP * rate:
                # The service took about all the lane sent until this 429: more likely jitter
                # (calls bunched on their way) than a limit. A small step gives its bucket room;
                # if the rate is too high after all, more 429s follow soon.
                cut = FIRST_BETA * rate
            new = max(self._floor, MAX_CUT * rate, cut)
            ceiling = max(new, min(rate, estimate))
        self.phase = Phase.STEADY
        self._rate = self._start_rate = new
        self._ceiling = ceiling
        self._capped_since = None
        self._since = self._last_decrease = now
        self.decreases += 1
        # Ignore 429s until the calls under way now have answered: they went out at the old rate.
        self._hold_answers = self.sent
        self._hold_until = now + WAIT_LIMIT

    def _first_estimate(self, now: float) -> float:
        """The accepted rate at the first 429 of an episode (at least ``FIRST_CUT`` of the rate).

        The service's bucket was empty at the previous 429 and is empty now, so the successes
        in between count its rate over that time, within one call: a lower bound, lower still
        if the bucket overflowed while the lane sent below R, or if demand, not the rate, set
        the pace. A lane holding at (or heading back to) ``max_rate`` was not probing beyond a
        limit, so its 429 says nothing about one: the estimate is then the rate itself.
        """
        assert self._rate is not None and self.max_rate is not None
        rate = self._rate
        capped = self._capped_since
        if self._ceiling >= self.max_rate or (
            capped is not None and now - capped >= max(CAPPED, 10 / rate)
        ):
            return rate
        for when, successes in reversed(self._throttles):
            span = now - when
            if span >= MIN_SPAN and span * rate >= 2:
                return max((self.succeeded - successes) / span, FIRST_CUT * rate)
        return FIRST_CUT * rate

    def _episode_estimate(self, now: float) -> float | None:
        """The accepted rate over the current episode, once it says enough; else ``None``.

        While 429s keep coming the lane sends above R and the service accepts R per second, but
        only a run of 429s shows that: a few 429s between many successes are as likely jitter
        (calls bunched on the way) as a rate too high, and then the successes per second measure
        the lane's own sending, not the service.
        """
        assert self._episode is not None
        start, successes, throttled, events = self._episode
        span = now - start
        accepted, refused = self.succeeded - successes, self.throttled - throttled
        if span < MIN_SPAN:
            return None
        if refused < SATURATED * (accepted + refused) and events < EPISODE_EVENTS:
            return None
        # The +1 keeps a short span with few successes from reading too low.
        return (accepted + 1) / span

    def _curve(self, elapsed: float) -> float:
        """CUBIC's window curve as a rate: concave up to the ceiling, convex beyond it."""
        ceiling = self._ceiling
        tau = max(TAU_MIN, TAU_CALLS / ceiling)
        x = elapsed / tau - 1.0
        if x < 0:
            # From the start rate back to the ceiling within one tau, flattening as it gets there.
            return ceiling + (ceiling - self._start_rate) * x**3
        return ceiling * (1.0 + PROBE_GROWTH * x**3)

    def _send_rate(self, now: float) -> float:
        """Calls sent per second over the last ``max(SEND_WINDOW, 4 calls)`` seconds."""
        window = max(SEND_WINDOW, 4 / (self._rate or 1.0))
        while self._sends and self._sends[0] < now - window:
            self._sends.popleft()
        if self._first_send is not None:
            window = min(window, max(now - self._first_send, 1e-3))
        return len(self._sends) / window
