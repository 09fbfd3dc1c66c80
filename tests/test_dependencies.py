"""What bulk leans on in its dependencies beyond their public API, and what it declares.

Private pieces, each pinned in pyproject.toml to the versions tested:

- aiolimiter (``>=1.2,<1.4``): :meth:`bulk.engine.limiter.AdaptiveLimiter._sync_bucket` changes
  the rate of a live ``AsyncLimiter`` through ``_rate_per_sec`` and re-times its sleeping waiter
  with ``_wake_next``, and :meth:`~bulk.engine.limiter.AdaptiveLimiter.on_wire` writes the
  bucket's ``_level``;
- aiobotocore: :class:`bulk.engine.http.SharedTLSSession` overrides ``_build_ssl_contexts``
  (pinned in ``tests/test_http.py``);
- botocore (through aiobotocore's pin): :meth:`bulk.input.validate.Validator._check_shape`
  reads the ``(kind, path, details)`` tuples of a ``ParamValidator`` report's ``_errors``.

A release that changes either must fail here, saying what changed, rather than leave a bucket
at its first rate or turn every row with a bad cell into a crash. The pacing test runs on an
event loop whose clock is virtual: it jumps to the next timer instead of sleeping.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import re
import selectors
import sys
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiolimiter import AsyncLimiter
from botocore.validate import ParamValidator
from packaging.requirements import Requirement
from packaging.version import Version

from bulk.engine.limiter import AdaptiveLimiter
from bulk.input.columns import input_shape

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def broken(dependency: str, what: str, where: str) -> str:
    """The message of a guard that failed: what changed, and where bulk relies on it."""
    version = importlib.metadata.version(dependency)
    return (
        f"{dependency} {version} changed a private detail bulk relies on: {what}. "
        f"Fix {where} for this version, or keep the pin in pyproject.toml below it."
    )


# -- a virtual clock -------------------------------------------------------------------------


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, with nothing ready, moves the loop's clock to the next timer at once.

    Every pass of the loop also moves the clock a microsecond, as a real clock would: a timer
    that re-arms itself a rounding error away (aiolimiter's, for a level of 1e-16 token) must
    not find time standing still.
    """

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("nothing ready and no timer: the test would wait forever")
            self._clock[0] += timeout
        self._clock[0] += 1e-6
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual: sleeps and timers take no real time."""

    def __init__(self) -> None:
        self._clock = [1000.0]
        super().__init__(_JumpingSelector(self._clock))

    def time(self) -> float:
        return self._clock[0]


def in_virtual_time(main: Callable[[], Awaitable[T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())  # type: ignore[arg-type]
    finally:
        loop.close()


class TestVirtualTime:
    def test_sleeps_take_no_real_time_and_keep_their_order(self) -> None:
        async def main() -> tuple[float, list[int]]:
            loop = asyncio.get_running_loop()
            start, woke = loop.time(), []

            async def sleeper(delay: int) -> None:
                await asyncio.sleep(delay)
                woke.append(delay)

            await asyncio.gather(*(sleeper(d) for d in (30, 10, 20)))
            return loop.time() - start, woke

        elapsed, woke = in_virtual_time(main)
        assert elapsed == pytest.approx(30)
        assert woke == [10, 20, 30]


# -- aiolimiter --------------------------------------------------------------------------------


class TestAiolimiter:
    def test_the_bucket_has_the_private_names_the_limiter_writes(self) -> None:
        bucket = AsyncLimiter(5, 0.05)
        assert "_rate_per_sec" in AsyncLimiter.__slots__, broken(
            "aiolimiter",
            "AsyncLimiter has no `_rate_per_sec` slot (the rate `_leak` drains at)",
            "bulk/engine/limiter.py AdaptiveLimiter._sync_bucket",
        )
        assert bucket._rate_per_sec == pytest.approx(100), broken(
            "aiolimiter",
            f"`_rate_per_sec` is {bucket._rate_per_sec!r}, not max_rate / time_period (100)",
            "bulk/engine/limiter.py AdaptiveLimiter._sync_bucket",
        )
        assert "_level" in AsyncLimiter.__slots__, broken(
            "aiolimiter",
            "AsyncLimiter has no `_level` slot (the tokens in use, drained by `_leak`)",
            "bulk/engine/limiter.py AdaptiveLimiter.on_wire",
        )
        assert callable(getattr(bucket, "_wake_next", None)), broken(
            "aiolimiter",
            "AsyncLimiter has no `_wake_next()` (re-times the waiter that sleeps)",
            "bulk/engine/limiter.py AdaptiveLimiter._sync_bucket",
        )

    def test_a_live_bucket_paces_at_each_rate_it_is_given(self) -> None:
        """The limiter's own rate change, on aiolimiter's bucket: a waiter asleep at the old
        rate wakes by the new one, and later calls are spaced at the new rate, up and down."""

        async def main() -> dict[str, float]:
            loop = asyncio.get_running_loop()
            limiter = AdaptiveLimiter(2.0, 1, adaptive=False, clock=loop.time)

            def set_rate(rate: float) -> None:
                limiter.controller._rate = rate  # as if the controller had decided it
                limiter._sync_bucket()

            async def spacing(calls: int) -> float:
                start = loop.time()
                for _ in range(calls):
                    await limiter.acquire()
                return (loop.time() - start) / calls

            await limiter.acquire()  # the bucket is full: the next token is 0.5 s away at 2/s
            start = loop.time()
            waiter = asyncio.ensure_future(limiter.acquire())
            for _ in range(5):
                await asyncio.sleep(0)  # the waiter is asleep on the bucket
            assert not waiter.done()
            set_rate(100.0)
            await waiter
            woke = loop.time() - start
            up = await spacing(50)
            set_rate(4.0)
            down = await spacing(8)
            return {"woke": woke, "up": up, "down": down}

        seen = in_virtual_time(main)
        where = "bulk/engine/limiter.py AdaptiveLimiter._sync_bucket"
        assert seen["woke"] == pytest.approx(0.01, abs=1e-3), broken(
            "aiolimiter",
            f"a waiter asleep at 2/s woke {seen['woke']:.3f} s after the rate became 100/s "
            "(0.010 s expected): `_wake_next()` no longer re-times it",
            where,
        )
        assert seen["up"] == pytest.approx(0.01, rel=0.01), broken(
            "aiolimiter",
            f"after the rate was raised to 100/s calls came every {seen['up']:.4f} s (0.01 s "
            "expected): writing `_rate_per_sec` no longer sets the rate",
            where,
        )
        assert seen["down"] == pytest.approx(0.25, rel=0.01), broken(
            "aiolimiter",
            f"after the rate was cut to 4/s calls came every {seen['down']:.4f} s (0.25 s "
            "expected): writing `_rate_per_sec` no longer sets the rate",
            where,
        )


# -- botocore ----------------------------------------------------------------------------------


class TestBotocoreValidationReport:
    """The shape of ParamValidator's report that ``Validator._check_shape`` reads."""

    def test_each_error_is_kind_path_details_with_the_keys_read(self) -> None:
        request = {
            # no ConfigurationSetName: 'missing required field'
            "SendingOptions": {"SendingEnabled": "yes"},  # 'invalid type'
            "DeliveryOptions": {"MaxDeliverySeconds": 5},  # 'invalid range' (min 300)
            "ArchivingOptions": {"ArchiveArn": "arn"},  # 'invalid length' (min 20)
        }
        report = ParamValidator().validate(request, input_shape("sesv2"))
        where = "bulk/input/validate.py Validator._check_shape and _param_problem"
        errors = getattr(report, "_errors", None)
        assert isinstance(errors, list), broken(
            "botocore", "a ParamValidator report has no `_errors` list", where
        )
        assert all(isinstance(e, tuple) and len(e) == 3 for e in errors), broken(
            "botocore", f"`_errors` holds {errors!r}, not (kind, path, details) tuples", where
        )
        by_kind: dict[str, tuple[str, dict[str, Any]]] = {}
        for kind, path, details in errors:
            assert isinstance(kind, str) and isinstance(path, str), broken(
                "botocore", f"an error's kind and path are {kind!r}, {path!r}, not text", where
            )
            assert isinstance(details, dict), broken(
                "botocore", f"an error's details are {details!r}, not a dict", where
            )
            by_kind[kind] = (path, details)
        # The path's members, as _param_problem splits it (botocore writes ".A.B").
        expected = {
            "missing required field": ([], {"required_name", "user_params"}),
            "invalid type": (["SendingOptions", "SendingEnabled"], {"param"}),
            "invalid range": (["DeliveryOptions", "MaxDeliverySeconds"], {"param", "min_allowed"}),
            "invalid length": (["ArchivingOptions", "ArchiveArn"], {"param", "min_allowed"}),
        }
        for kind, (members, keys) in expected.items():
            assert kind in by_kind, broken(
                "botocore", f"no {kind!r} error among {sorted(by_kind)}", where
            )
            path, details = by_kind[kind]
            assert [part for part in path.split(".") if part] == members, broken(
                "botocore", f"the {kind!r} error's path is {path!r}, not {members!r}", where
            )
            assert keys <= set(details), broken(
                "botocore",
                f"the {kind!r} error's details lack {sorted(keys - set(details))}",
                where,
            )
        assert by_kind["missing required field"][1]["required_name"] == "ConfigurationSetName"


# -- what pyproject declares ---------------------------------------------------------------------


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _declared() -> set[str]:
    """The distributions pyproject.toml's ``dependencies`` name, normalised."""
    return {_normal(Requirement(spec).name) for spec in _project()["dependencies"]}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(package: Path) -> set[str]:
    """The top-level modules the package's code imports, other than itself and the stdlib."""
    modules: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {package.name, "__future__"}


class TestDeclared:
    def test_every_package_the_code_imports_is_a_declared_dependency(self) -> None:
        """A package used only through another's dependencies (botocore through aiobotocore)
        can vanish or move when that one changes; each is named with the bounds tested."""
        declared = _declared()
        distributions = importlib.metadata.packages_distributions()
        undeclared = {
            module: distributions.get(module, ["?"])
            for module in sorted(_imported(ROOT / "bulk"))
            if not {_normal(d) for d in distributions.get(module, [])} & declared
        }
        assert not undeclared, (
            f"bulk imports packages pyproject.toml does not declare: {undeclared}; "
            "add each to [project] dependencies, and its lower bound to constraints/lowest.txt"
        )

    def test_the_lowest_constraints_pin_every_lower_bound(self) -> None:
        """``make test-lowest`` installs exactly the lower bounds pyproject.toml states."""
        project = _project()
        bounds: dict[str, Version] = {}
        for spec in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
            requirement = Requirement(spec)
            for clause in requirement.specifier:
                if clause.operator == ">=":
                    bounds[_normal(requirement.name)] = Version(clause.version)
        pins: dict[str, Version] = {}
        for line in (ROOT / "constraints" / "lowest.txt").read_text().splitlines():
            text = line.split("#")[0].strip()
            if text:
                requirement = Requirement(text)
                (clause,) = requirement.specifier
                assert clause.operator == "==", f"constraints/lowest.txt: {line!r} is not a pin"
                pins[_normal(requirement.name)] = Version(clause.version)
        mismatched = {
            name: (str(bound), str(pins.get(name)))
            for name, bound in bounds.items()
            if pins.get(name) != bound
        }
        assert not mismatched, (
            "constraints/lowest.txt must pin each dependency at pyproject.toml's lower bound "
            f"(name: (bound, pin)): {mismatched}"
        )
