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
    successes so far over the time since the first call give the first estimate of ``R``. An
    estimate of about ``max_rate`` says the service took all the lane sent: the 429 was jitter,
    and the lane holds at its cap (below); a lower one starts the search.
``SEARCH``
    From that estimate the rate doubles every ``SEARCH_DOUBLING`` seconds until the next 429:
    an estimate that came out low (a slow first round trip) costs a fraction of a second.
``STEADY``
    On a 429 the rate drops to ``BETA`` times an estimate of the accepted rate, then follows a
    cubic curve (as TCP CUBIC does): back up to the estimate within ``tau``, a plateau around
    it, then faster and faster probing beyond it, so a limit that was raised is found again.

Holding at the operator's rate. The rate never exceeds the lane's cap: ``max_rate`` less a
margin, 0 until jitter asks for one. A lane at its cap was not probing beyond a limit, so a 429
there says nothing about a lower one: it is jitter. With ``--rate`` equal to the limit and
bursts of 1 on both sides, calls that leave exactly ``1 / R`` apart reach the service a little
closer together now and then and meet an empty bucket. Cutting the rate for that (and climbing
back over ``tau``, 75 s at 1/s) loses more than the 429 did, and the lower rate would be saved
as the lane's learned rate. Instead the lane keeps its rate and spaces its calls a little
wider: a first 429 at the cap sets a margin of ``MARGIN`` (0.5%: 5 ms at 1/s), and it doubles,
up to ``MAX_MARGIN``, only while 429s there come more often than the wider margin would cost; a
rare late call is cheaper to take as it comes. The margin halves after ``MARGIN_DECAY`` calls
without a 429 at the cap. A 429 at the cap also lets the lane's next call go a tenth of an
interval later, not a whole one (:attr:`RateController.retry_share`): the service's bucket was
only a few milliseconds short, and it did not take that call's token; so does a lane's first
429, while it sends one call at a time, and the early call's answer tells jitter (it goes
through) from a lower limit (it does not, and the lane drains). Only 429s that keep coming at
``MAX_MARGIN`` (``LIMIT_THROTTLES`` in ``LIMIT_CALLS`` calls) say the service takes less than
``max_rate``, and the cut below applies. Early calls are for lanes of at most
``JITTER_RETRY_RATE``, where an interval is long. So a lane that holds at its cap learns,
and saves, a rate within ``MAX_MARGIN`` of ``max_rate``, and a run resumed from that rate
holds there, margin and all.

Estimating ``R`` without collapsing on one 429: a 429 means the service's bucket is empty at
that moment, so between two 429s the successes count ``R`` times the time between them (give or
take one call), less whatever the bucket lost while full, which only happens while the lane sends
below ``R``: a lower bound. The first 429 after a quiet spell cuts to ``BETA`` times that bound,
taken as at least ``FIRST_CUT`` of the current rate (one 429 is weak evidence). When the bound
says the service took about all the lane sent, the 429 is more likely jitter (calls bunched on
their way) and the cut only ``FIRST_BETA``. Further 429s within ``EPISODE_GAP`` belong to the same
congestion episode; once it is clearly saturated (a quarter of its answers 429s, or a third
decrease) its successes per second, which are then ``R``, set the rate; until then each cuts by
``REPEAT_CUT``. No single 429 cuts the rate by more than half, or below ``FLOOR``.

429s from calls already under way when the rate dropped say nothing about the new rate: after a
decrease (or a wider margin) the controller holds (ignores 429s) until those calls have
answered, so a burst of 429s is one congestion event, not ten halvings.

Measured with the simulation in ``tests/test_rate_control.py`` (2,000 rows, 100/s service with
burst 5, ~20 ms latency): ``--rate 100 --burst 1..5`` uses the whole limit with at most one 429;
``--rate 1000`` reaches 0.99-1.00 of it with 0.6-1.3% of calls throttled, startup overshoot
included. At the operating point (``--rate`` equal to a service whose burst is 1, ``--burst 1``,
calls delayed on their way by up to 0.5% of ``1 / R`` at random): at 1/s, 120 rows, 0.995 of
the limit with one 429 and 0.995/s learned (the law before the margin: 0.84, two 429s, 0.88/s
learned); at 10/s, 1,200 rows, 0.99 with 0.25-0.33% throttled and 9.95/s learned.
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
#: Held at its cap (``max_rate`` less the margin), the lane was not probing beyond a limit: a
#: 429 there is jitter, calls that left evenly spaced reaching the service a little closer
#: together than ``1 / R``. The lane keeps its rate and spaces its calls a little wider: the
#: margin becomes MARGIN, then doubles while 429s keep coming, up to MAX_MARGIN. Invariant:
#: the cap, and with it the rate a lane learns while it holds there, is within MAX_MARGIN of
#: ``max_rate``.
MARGIN = 0.005
MAX_MARGIN = 0.02
#: Once the margin is MAX_MARGIN, LIMIT_THROTTLES more 429s at the cap within LIMIT_CALLS
#: calls (more than 1% of calls throttled, at the widest margin) say the service takes less
#: than ``max_rate`` after all: the regular cut applies. The 429 that widened the margin to
#: MAX_MARGIN is not one of them: jitter comes in clusters (an event loop busy for a moment
#: delays several calls of a lane in a row), and a cluster widens the margin in a few calls.
LIMIT_CALLS = 100
LIMIT_THROTTLES = 2
#: A 429 at the cap lets the next call go this share of an interval later, not a whole one
#: (see RateController.retry_share); the share doubles for each 429 of those calls in a row,
#: up to JITTER_PROBES 429s.
JITTER_RETRY = 0.1
JITTER_PROBES = 4
#: Above this rate (calls per second) a 429 costs an interval of under 50 ms, about the jitter
#: itself: an early call would often find the service's bucket still short, and each such
#: 429 spent is a call the service counts. Lanes that fast wait their interval.
JITTER_RETRY_RATE = 20.0
#: The margin halves (below MARGIN: goes) after this many calls without a 429 at the cap.
MARGIN_DECAY = 500
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
        # Jitter 429s in a row, and how soon the next call may go (see :attr:`retry_share`).
        self._probes = 0
        self._retry_share: float | None = None
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
        # The margin below max_rate that 429s at the cap asked for, and ``sent`` at the last
        # of them (or at the margin's last decay).
        self._margin = 0.0
        self._margin_sent = 0
        # ``sent`` at the last 429s at the cap at MAX_MARGIN (see _jitter_margin).
        self._at_max: deque[int] = deque(maxlen=LIMIT_THROTTLES)
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
        elif initial_rate >= (1.0 - MAX_MARGIN) * max_rate:
            # The last run held at max_rate, with a margin for jitter: hold there again.
            self.phase = Phase.STEADY
            self._margin = 1.0 - initial_rate / max_rate
            self._rate = self._start_rate = self._ceiling = initial_rate
        else:
            # A resumed run starts where the last one left off, on the plateau of the curve.
            self.phase = Phase.STEADY
            self._rate = self._start_rate = self._ceiling = min(max_rate, initial_rate)

    # -- what the sender asks ------------------------------------------------------------------

    @property
    def margin(self) -> float:
        """The share of ``max_rate`` held back for jitter (0: none asked for)."""
        return self._margin

    @property
    def rate(self) -> float | None:
        """The rate calls may go out at now (requests/s); ``None``: no limit."""
        return self._rate

    @property
    def retry_share(self) -> float | None:
        """After a 429 taken for jitter: how soon the next call may go, as a share of one
        interval (``None``: the next call waits a whole interval).

        A 429 at the cap is a call that reached the service a little before its bucket
        refilled, not a rate above the limit: that bucket was nearly full, and did not take
        the call's token. So the next call goes a share of an interval later
        (:data:`JITTER_RETRY`), not a whole one. Its own 429 belongs to the same jitter (it
        changes neither the margin nor the rate), and the share doubles for each, up to
        :data:`JITTER_PROBES` of them; after that, 429s count as usual. The early call is
        still one of the lane's calls: it goes early only while the second that ends with it
        holds fewer than ``max_rate + burst`` calls, the most a lane ever sends in one.
        """
        return self._retry_share

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
        if self._margin and self.sent - self._margin_sent >= MARGIN_DECAY:
            # The margin has kept 429s away for a while: try a narrower one (the cap rises, and
            # the curve, long past its plateau, follows at once).
            self._margin = self._margin / 2 if self._margin >= 2 * MARGIN else 0.0
            self._margin_sent = self.sent
            self._at_max.clear()

    def on_success(self, now: float) -> None:
        """A call got an answer that is not a 429."""
        probed = self._probes and self.phase is Phase.STARTUP
        self._probes, self._retry_share = 0, None
        self.succeeded += 1
        self._last_answer = now
        if probed:
            # The call after the first 429 went through a share of an interval later: the
            # service's bucket was only that short, and the lane's rate is its limit.
            self._hold_at_cap(now)
        self.update(now)

    def on_throttle(self, now: float) -> bool:
        """A call got a 429; ``True`` if the controller lowered the rate for it."""
        held = self._holding(now)  # this answer is one of the calls under way at a decrease
        self.throttled += 1
        self._last_answer = now
        acted = False
        probes, self._probes, self._retry_share = self._probes, 0, None
        if self.phase is Phase.STARTUP and self._try_startup_probe(probes, now):
            return False
        if self.phase is Phase.STARTUP:
            # Every call under way was sent blind at the startup pace: stop and count them.
            self.phase = Phase.DRAIN
            self._hold_until = now + WAIT_LIMIT
            self.decreases += 1
            acted = True
        elif probes and probes < JITTER_PROBES and self._at_cap():
            # The call that went again soon after a jitter 429 came a little early too.
            self._retry_early(probes + 1, now)
            return False
        elif self.phase in (Phase.SEARCH, Phase.STEADY) and not held:
            margin = self._jitter_margin() if self._at_cap() else None
            if margin is None:
                self._decrease(now)
                acted = True
            else:
                acted = self._set_margin(margin, now)
                self._retry_early(1, now)
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
        self._rate = min(self._cap(), max(self._floor, rate))

    # -- internals -----------------------------------------------------------------------------

    def _cap(self) -> float:
        """The most the lane sends now: ``max_rate`` less the margin jitter asked for."""
        assert self.max_rate is not None
        return max(self._floor, self.max_rate * (1.0 - self._margin))

    def _at_cap(self) -> bool:
        assert self._rate is not None
        return self._rate >= self._cap() * (1.0 - 1e-9)

    def _hold(self, now: float) -> None:
        """Ignore 429s until the calls under way now have answered: they left at the old rate."""
        self._hold_answers = self.sent
        self._hold_until = now + WAIT_LIMIT

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
        if estimate >= FIRST_KEEP * self.max_rate:
            # The service took about all the lane sent at max_rate: jitter, not a lower limit.
            # (Early on, one round trip in the span makes this low: then SEARCH gets back to
            # the cap within a second, and a 429 there is jitter all the same.)
            self._hold_at_cap(now)
            return
        self.phase = Phase.SEARCH
        self._rate = self._start_rate = self._ceiling = min(
            self.max_rate, max(self._floor, estimate)
        )
        self._since = now

    def _try_startup_probe(self, probes: int, now: float) -> bool:
        """At the first 429 of a lane that sends one call at a time, let the next call go a
        share of an interval later (``True``), instead of draining.

        A lane at ``--rate`` 1/s has sent a handful of calls when jitter brings its first
        429; successes over time are then too few to tell jitter from a lower limit (one
        success in the second before the 429 reads as 0.9/s, and the lane would search up
        from there for a minute). The next call tells: a service whose bucket was only
        jitter short takes it a tenth of an interval later; one whose limit is lower does
        not (at a tenth of ``--rate``, its bucket is nine intervals short), and the lane
        drains as before. Only with nothing else under way: calls in flight at the 429 say
        the lane was sending faster than its answers came, which a drain counts.
        """
        if probes or not self.succeeded or self.succeeded + self.throttled < self.sent:
            return False
        return self._retry_early(1, now)

    def _hold_at_cap(self, now: float) -> None:
        """The 429s so far were jitter: hold at ``max_rate`` less a first margin."""
        self._margin, self._margin_sent = max(self._margin, MARGIN), self.sent
        self.phase = Phase.STEADY
        self._rate = self._start_rate = self._ceiling = self._cap()
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
        self._since = self._last_decrease = now
        self.decreases += 1
        self._at_max.clear()
        self._hold(now)

    def _jitter_margin(self) -> float | None:
        """The margin a 429 at the cap asks for; ``None``: it is a limit, not jitter.

        A margin of ``m`` costs ``m`` of the throughput, a 429 about one call: the margin
        doubles only while 429s come more often than once in ``1 / 2m`` calls, which a wider
        margin would cost; a rarer one (a call held up on its way) is cheaper to take as it
        comes. At MAX_MARGIN, LIMIT_THROTTLES 429s within LIMIT_CALLS calls are a limit.
        """
        margin = self._margin
        calls = self.sent - self._margin_sent  # since the last 429 at the cap
        if margin == 0.0:
            return MARGIN
        if margin >= MAX_MARGIN:
            at_max = self._at_max
            at_max.append(self.sent)
            if len(at_max) == LIMIT_THROTTLES and self.sent - at_max[0] < LIMIT_CALLS:
                return None
            return margin
        if calls * 2 * margin >= 1:
            return margin
        return min(MAX_MARGIN, 2 * margin)

    def _retry_early(self, probes: int, now: float) -> bool:
        """Let the next call go ``retry_share`` of an interval from now, the ``probes``-th
        early call in a row (``True``), if the lane's rate is at most
        :data:`JITTER_RETRY_RATE` and the second that would end with that call holds fewer
        than ``max_rate + burst`` calls; else the next call waits its interval."""
        assert self.max_rate is not None and self._rate is not None
        share = JITTER_RETRY * 2.0 ** (probes - 1)
        since = now + share / self._rate - 1.0
        if self._rate > JITTER_RETRY_RATE or (
            sum(1 for when in self._sends if when > since) + 1 > self.max_rate + self.burst
        ):
            return False
        self._probes, self._retry_share = probes, share
        return True

    def _set_margin(self, margin: float, now: float) -> bool:
        """Hold at ``max_rate`` less ``margin``; ``True`` if that lowered the rate."""
        self._margin_sent = self.sent
        if margin <= self._margin:
            return False
        self._margin = margin
        self.phase = Phase.STEADY
        self._rate = self._start_rate = self._ceiling = self._cap()
        self._since = now
        self.decreases += 1
        self._hold(now)
        return True

    def _first_estimate(self, now: float) -> float:
        """The accepted rate at the first 429 of an episode (at least ``FIRST_CUT`` of the rate).

        The service's bucket was empty at the previous 429 and is empty now, so the successes
        in between count its rate over that time, within one call: a lower bound, lower still
        if the bucket overflowed while the lane sent below R, or if demand, not the rate, set
        the pace. (A 429 at the cap never gets here unless 429s there keep coming: see
        :meth:`_jitter_margin`.)
        """
        assert self._rate is not None
        rate = self._rate
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
