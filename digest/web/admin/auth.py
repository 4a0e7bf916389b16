"""Who may use the console: argon2 password hashes, signed session cookies, the login guard.

A session cookie holds the admin's id and their account's ``generation``, signed with the
service secret (itsdangerous, with its own salt, so no subscriber link can pass for one) and
dated: it is refused after ``admin.session_hours``, after "log out everywhere" (which raises
the generation), and when the account is removed. HttpOnly, SameSite=Strict, Secure when
the request came over https (through a trusted proxy too).

Logging in never tells whether an account exists: an unknown address costs the same argon2
verification (against a dummy hash) and gets the same answers, lockout included.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from digest.clock import Clock
from digest.web.security import RateLimit, rate_key

SESSION_COOKIE = "digest_admin"
_SALT = "digest.admin.session"
_hasher = PasswordHasher()  # argon2id with the library's current RFC 9106 parameters


def hash_password(password: str) -> str:
    """The stored form of a password (argon2id, salted)."""
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Made once, before the first login (``Console`` asks at start-up): made during one,
    it would make that unknown address's answer slower than a known one's."""
    return _hasher.hash("not the password of anyone")


def prepare() -> None:
    """Make the dummy hash now, at start-up."""
    _dummy_hash()


def check_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored`` (None: no such account, checked against a
    dummy hash so both cost the same), and a new hash when the parameters were raised."""
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, hash_password(password) if _hasher.check_needs_rehash(stored) else None


@dataclass(frozen=True)
class SessionClaim:
    """What a valid cookie says: whose session, and of which generation."""

    admin_id: int
    generation: int


class _ClockSigner(TimestampSigner):
    """itsdangerous's dated signer, dating and ageing by the app's clock, not the wall's."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        """The clock's now, in whole seconds since the epoch."""
        return int(self._clock.now().timestamp())


class Sessions:
    """Issue and read session cookies signed with the service secret, dated by ``clock``
    (the app's: a test moves a session past its age with a ``ManualClock``)."""

    def __init__(self, secret: str, max_age_seconds: float, clock: Clock) -> None:
        self._serializer = URLSafeTimedSerializer(
            secret, salt=_SALT, signer=_ClockSigner, signer_kwargs={"clock": clock}
        )
        self.max_age = max_age_seconds

    def issue(self, admin_id: int, generation: int) -> str:
        """A cookie value for this admin's current generation."""
        return self._serializer.dumps({"a": admin_id, "g": generation})

    def read(self, value: str | None) -> SessionClaim | None:
        """The claim of a genuine, unexpired cookie; None for anything else."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=int(self.max_age))
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        admin_id, generation = data.get("a"), data.get("g")
        if not isinstance(admin_id, int) or not isinstance(generation, int):
            return None
        return SessionClaim(admin_id, generation)


class LoginGuard:
    """Wrong passwords per address tried (known account or not) and attempts per client.

    After ``max_failures`` wrong passwords in a row an address is locked for ``lockout``
    seconds, whatever password comes next; the right password clears its count. ``clock``:
    the app's monotonic count (``app.clock.monotonic``). Kept in
    the process: `digest serve` is one process, and a restart forgetting a lock is the
    price of not writing a row per unknown address someone tries.
    """

    def __init__(
        self,
        max_failures: int,
        lockout: float,
        clock: Callable[[], float],
        per_client: int = 30,
    ) -> None:
        self.max_failures, self.lockout, self.per_client = max_failures, lockout, per_client
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        # Attempts per client: the sign-up's sliding window, over the lockout time.
        self._attempts = RateLimit(per_client, lockout, clock)

    def locked(self, email: str) -> float:
        """Seconds until the address may try again (0: it may)."""
        failures = self._failures.get(email)
        now = self.clock()
        while failures and failures[0] <= now - self.lockout:
            failures.popleft()
        if failures is None or len(failures) < self.max_failures:
            return 0.0
        return max(0.0, failures[-1] + self.lockout - now)

    def client_allowed(self, client: str) -> bool:
        """Record an attempt from ``client``; False over ``per_client`` in the lockout time.
        Counted as the sign-up limit counts: an IPv6 client by its /64 (``rate_key``)."""
        return self._attempts.allow(rate_key(client))

    def failed(self, email: str) -> None:
        """A wrong password for ``email``."""
        self._failures[email].append(self.clock())
        self._bound(self._failures)

    def succeeded(self, email: str) -> None:
        """The right password: the address's count starts again."""
        self._failures.pop(email, None)

    @staticmethod
    def _bound(table: dict[str, deque[float]]) -> None:
        if len(table) > 100_000:  # memory stays bounded under a flood of addresses
            newest = max(table, key=lambda k: table[k][-1] if table[k] else 0.0)
            kept = table[newest]
            table.clear()
            table[newest] = kept
