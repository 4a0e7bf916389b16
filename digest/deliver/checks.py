"""What `digest check` and the console's config screen find wrong in a valid config: the
config's own readiness warnings, and what the DKIM signer a send builds would do.

Here, not in ``config``, because the DKIM check builds the signer (``deliver.signing``);
one function, so the command line and the console cannot disagree.
"""

from __future__ import annotations

from digest.config import Config, warnings_for
from digest.deliver.signing import STRONG_KEY_BITS, key_bits, make_signer, private_key
from digest.errors import ConfigProblem, DigestError


def config_problems(config: Config) -> tuple[list[ConfigProblem], list[ConfigProblem]]:
    """Errors (a send would fail) and warnings (valid, but a send or webhook will stop or
    silently do less) of a loaded config."""
    errors, warnings = dkim_problems(config)
    return errors, [*warnings_for(config), *warnings]


def dkim_problems(config: Config) -> tuple[list[ConfigProblem], list[ConfigProblem]]:
    """Errors and warnings of [delivery.dkim]: what make_signer, which a send calls, would do."""
    settings = config.delivery.dkim
    table = ("delivery", "dkim")
    try:
        signer = make_signer(config)
    except DigestError as exc:
        problem = config.problem(table, exc.message, exc.hint)
        # A key read from the environment may be set where digest runs, if not here.
        return ([], [problem]) if settings.private_key_env else ([problem], [])
    keys = (settings.domain, settings.selector, settings.private_key_file, settings.private_key_env)
    if signer is None and any(keys):  # some of the table is written, but signing is off
        missing = "domain" if not settings.domain else "selector"
        problem = config.problem(
            (*table, missing),
            f"DKIM is off without a {missing}, so mail goes out unsigned",
            f"add {missing} = ... under [delivery.dkim], or comment out its other keys "
            "if your relay signs",
        )
        return [], [problem]
    if signer is None:
        return [], []
    return [], _weak_key(config)


def _weak_key(config: Config) -> list[ConfigProblem]:
    """A key that signs, but under the 2048 bits RFC 8301 asks for: a receiver may treat
    a 1024-bit signature as weak, and one under 1024 bits as no signature at all."""
    settings = config.delivery.dkim
    bits = key_bits(private_key(config))
    if bits is None or bits >= STRONG_KEY_BITS:
        return []
    where = "private_key_env" if settings.private_key_env else "private_key_file"
    return [
        config.problem(
            ("delivery", "dkim", where),
            f"the DKIM key is {bits} bits; receivers expect at least {STRONG_KEY_BITS}",
            f"make a new key (openssl genrsa -out dkim.pem {STRONG_KEY_BITS}), publish its "
            "public half under a new selector, then switch selector and key together",
        )
    ]
