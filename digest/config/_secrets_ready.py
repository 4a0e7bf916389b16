"""`digest check`'s warnings on secrets: the variables the signing key, the transport's
login or keys and the webhooks are read from at send (or request) time, unset in this
shell or half configured. Part of ``_readiness.warnings_for``, kept apart so each file
reads in one sitting.
"""

from __future__ import annotations

import os

from digest.config.models import Config, secret_hint
from digest.errors import ConfigProblem

# The settings naming the variables a transport's credentials are in; "api_key_env" if unlisted.
_KEY_SETTINGS = {"maildir": (), "ses": ("access_key_id_env", "secret_access_key_env")}
_WEBHOOK_SECRETS = {
    "sendgrid": "sendgrid_public_key_env",
    "mailgun": "mailgun_signing_key_env",
    "postmark": "postmark_credentials_env",
    "resend": "resend_secret_env",
}


def secret_warnings(config: Config) -> list[ConfigProblem]:
    """The secrets a send or a webhook will need that this environment does not hold, and a
    login half configured."""
    return [
        *_signing_secret(config),
        *_previous_secrets(config),
        *_transport_secrets(config),
        *_smtp_login(config),
        *_webhook_secrets(config),
    ]


def _not_set(env: str, needed_for: str) -> str:
    return f"${env} is not set in this environment; {needed_for} needs it"


def _signing_secret(config: Config) -> list[ConfigProblem]:
    env = config.service.secret_env
    secret = os.environ.get(env, "")
    if secret and len(secret) >= 16:
        return []
    what = (
        _not_set(env, "sending")
        if not secret
        else f"${env} is shorter than 16 characters, and sending refuses it"
    )
    return [config.problem(("service", "secret_env"), what, secret_hint(env))]


def _previous_secrets(config: Config) -> list[ConfigProblem]:
    """An earlier secret shorter than any digest signs with is surely a typo (a value cut
    short), and is not used: links signed with the real one would stop working."""
    env = config.service.previous_secrets_env
    short = [s for s in config.previous_secrets() if len(s) < 16]
    if not short:
        return []
    what = (
        f"${env} holds {len(short)} value(s) shorter than 16 characters, which links are "
        "never checked against"
    )
    fix = f"set {env} to the earlier secrets as they were, separated by spaces"
    return [config.problem(("service", "previous_secrets_env"), what, fix)]


def _transport_secrets(config: Config) -> list[ConfigProblem]:
    """The password or API keys the chosen transport reads from the environment at send time."""
    transport = config.delivery.transport
    settings = getattr(config.delivery, transport)
    if transport == "smtp":  # an empty password is still a password; an unset one is not
        env = settings.password_env
        unset = [("password_env", env)] if env and env not in os.environ else []
    else:  # a provider refuses an empty key as surely as a missing one
        named = [(k, getattr(settings, k)) for k in _KEY_SETTINGS.get(transport, ("api_key_env",))]
        unset = [(key, env) for key, env in named if not os.environ.get(env)]
    return [
        config.problem(
            ("delivery", transport, key),
            _not_set(env, "sending"),
            f"export {env}=... where digest runs, or name another variable in "
            f"delivery.{transport}.{key}",
        )
        for key, env in unset
    ]


def _smtp_login(config: Config) -> list[ConfigProblem]:
    """A login half configured: a password no login uses (the server then answers 530
    "Authentication required" to every message), or a login with an empty password."""
    smtp = config.delivery.smtp
    if config.delivery.transport != "smtp":
        return []
    if smtp.password_env and not smtp.username:
        return [
            config.problem(
                ("delivery", "smtp", "password_env"),
                "is set but delivery.smtp.username is not: digest never logs in, so the "
                "password goes unused",
                'add username = "..." (the login name) under [delivery.smtp], or remove '
                "password_env if the server needs no login",
            )
        ]
    if smtp.username and not smtp.password_env:
        return [
            config.problem(
                ("delivery", "smtp", "username"),
                "is set but delivery.smtp.password_env is not: digest logs in with an empty "
                "password",
                "name the environment variable holding the password in delivery.smtp.password_env",
            )
        ]
    return []


def _webhook_secrets(config: Config) -> list[ConfigProblem]:
    """A webhook whose secret is named but not set answers 503 to the provider."""
    problems = []
    for provider, key in _WEBHOOK_SECRETS.items():
        env = getattr(config.webhooks, key)
        if env and not os.environ.get(env):
            problems.append(
                config.problem(
                    ("webhooks", key),
                    f"{_not_set(env, f'/webhooks/{provider}')}: it answers 503 without it",
                    f"export {env}=... where `digest serve` runs, or remove {key}",
                )
            )
    return problems
