"""Masking secrets: registered values and secret patterns, in texts and in log records."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from pluggedin_proxy.redact import MAX_SECRETS, RedactingFilter, Redactor, looks_secret

# Fake secrets, made up for these tests.
TOKEN = "tok-0123456789abcdef"
PG_KEY = "pg_in_" + "Ab3" * 21 + "x"


class TestRegisteredValues:
    def test_a_registered_value_is_masked_wherever_it_appears(self):
        """Every occurrence of a registered secret becomes `***`."""
        redactor = Redactor()
        redactor.add(TOKEN)
        assert redactor.redact(f"sent {TOKEN} twice: {TOKEN}.") == "sent *** twice: ***."

    def test_text_without_secrets_is_unchanged(self):
        """Ordinary text passes through as it was."""
        redactor = Redactor()
        redactor.add(TOKEN)
        text = "server 'echo' connected (python3) in 12 ms"
        assert redactor.redact(text) == text

    def test_a_secret_str_is_registered_by_its_value_and_none_is_ignored(self):
        """The resolved API key arrives as a pydantic `SecretStr`; an absent one as `None`."""
        redactor = Redactor()
        redactor.add(SecretStr(TOKEN), None, "")
        assert redactor.redact(TOKEN) == "***"

    def test_values_too_short_to_mask_safely_are_ignored(self):
        """A value such as `1` or `true` would blank out ordinary text, so it is not registered."""
        redactor = Redactor()
        redactor.add("1", "true", "abc12")
        assert redactor.redact("debug=1 verbose=true id=abc12") == "debug=1 verbose=true id=abc12"

    def test_a_secret_containing_another_is_masked_whole(self):
        """Longer secrets are matched first, so no tail of one is left showing."""
        redactor = Redactor()
        redactor.add("secret-part", "secret-part-and-more")
        assert redactor.redact("x secret-part-and-more y") == "x *** y"

    def test_regex_characters_in_a_secret_are_taken_literally(self):
        """A password full of regex metacharacters masks itself and nothing else."""
        redactor = Redactor()
        redactor.add("p4ss.*(w)+rd?")
        assert redactor.redact("p4ss.*(w)+rd? and p4ssXXwwrd") == "*** and p4ssXXwwrd"

    def test_the_credential_of_an_authorization_value_is_masked_on_its_own(self):
        """A header value `Basic <credential>` also masks the credential where it appears alone."""
        redactor = Redactor()
        redactor.add("Basic dXNlcjpodW50ZXIy")
        assert redactor.redact("decoded dXNlcjpodW50ZXIy") == "decoded ***"

    def test_only_values_with_secret_looking_names_are_registered(self):
        """`add_named` takes env or header pairs and keeps the values of keys, tokens, secrets and passwords."""
        redactor = Redactor()
        redactor.add_named(
            [
                ("GITHUB_TOKEN", "ghp-value-123456"),
                ("DB_PASSWORD", "pw-value-123456"),
                ("Authorization", "Bearer zz-value-123456"),
                ("client_secret", "cs-value-123456"),
                ("LOG_LEVEL", "verbose-logging"),
            ]
        )
        text = "ghp-value-123456 pw-value-123456 zz-value-123456 cs-value-123456 verbose-logging"
        assert redactor.redact(text) == "*** *** *** *** verbose-logging"

    @pytest.mark.parametrize(
        ("name", "secret"),
        [
            ("API_KEY", True),
            ("x-api-key", True),
            ("OPENAI_API_KEY", True),
            ("SLACK_BOT_TOKEN", True),
            ("AWS_SECRET_ACCESS_KEY", True),
            ("PGPASSWORD", True),
            ("Authorization", True),
            ("Cookie", True),
            ("OAUTH_CLIENT_SECRET", True),
            ("GIT_AUTHOR_NAME", False),
            ("PATH", False),
            ("LOG_LEVEL", False),
            ("X-Request-Id", False),
        ],
    )
    def test_secret_looking_names(self, name: str, secret: bool):
        """Names with KEY, TOKEN, SECRET, PASSWORD, AUTH or COOKIE in them look secret."""
        assert looks_secret(name) is secret

    def test_the_oldest_secrets_are_forgotten_past_the_limit(self):
        """Rotated tokens cannot grow the registry without bound; the newest stay masked."""
        redactor = Redactor()
        values = [f"secret-{i:06d}" for i in range(MAX_SECRETS + 10)]
        redactor.add(*values)
        assert redactor.redact(values[0]) == values[0]
        assert redactor.redact(values[-1]) == "***"


class TestPatterns:
    def test_a_bearer_token_is_masked_without_being_registered(self):
        """`Bearer <token>` keeps the word and loses the token."""
        assert Redactor().redact("Authorization: Bearer eyJhbGciOi.J9x-y_z") == "Authorization: Bearer ***"
        assert Redactor().redact("authorization: bearer eyJhbGciOi.J9x-y_z") == "authorization: bearer ***"

    def test_a_plugged_in_key_is_masked_without_being_registered(self):
        """Keys of the plugged.in App (`pg_in_` and 64 characters) keep only their prefix."""
        assert Redactor().redact(f"key {PG_KEY} rejected") == "key pg_in_*** rejected"

    def test_the_shown_form_of_a_plugged_in_key_is_kept(self):
        """`doctor` shows keys as `pg_in_…abcd`; that form is already safe and stays readable."""
        assert Redactor().redact("API key: pg_in_…a1b2") == "API key: pg_in_…a1b2"

    def test_url_userinfo_is_masked(self):
        """`scheme://user:password@host` keeps the scheme and host."""
        text = "cannot reach https://bob:hunter2@db.example.com:5432/x"
        assert Redactor().redact(text) == "cannot reach https://***@db.example.com:5432/x"

    @pytest.mark.parametrize(
        "param", ["api_key", "apikey", "api-key", "API_KEY", "token", "access_token", "key", "password"]
    )
    def test_secret_query_parameters_are_masked(self, param: str):
        """A secret in a URL's query keeps its name and loses its value; other parameters stay."""
        text = f"GET https://mcp.example.com/sse?{param}=abc123def&region=eu failed"
        assert Redactor().redact(text) == f"GET https://mcp.example.com/sse?{param}=***&region=eu failed"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, Redactor]]:
    """A logger writing through a `RedactingFilter` to a string, as `pluggedin-mcp` writes to stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    redactor = Redactor()
    handler.addFilter(RedactingFilter(redactor))
    log = logging.getLogger("tests.redact")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield log, stream, redactor
    finally:
        log.removeHandler(handler)


class TestLogFilter:
    def test_secrets_in_a_log_message_and_its_arguments_are_masked(self, logged):
        """Both the format string and its %-arguments are masked in the written line."""
        log, stream, redactor = logged
        redactor.add(TOKEN)
        log.info("token %s for %s", TOKEN, "https://u:p4ssw0rd@h/x")
        assert stream.getvalue() == "INFO token *** for https://***@h/x\n"

    def test_a_secret_in_a_traceback_is_masked(self, logged):
        """An exception's message is masked in the traceback written with `logger.exception`."""
        log, stream, redactor = logged
        redactor.add(TOKEN)
        try:
            raise RuntimeError(f"upstream said {TOKEN}")
        except RuntimeError:
            log.exception("failed")
        assert TOKEN not in stream.getvalue()
        assert "RuntimeError: upstream said ***" in stream.getvalue()

    def test_a_secret_registered_later_is_masked_from_then_on(self, logged):
        """A server's secrets are registered when it connects; lines after that are masked."""
        log, stream, redactor = logged
        log.info("one %s", TOKEN)
        redactor.add(TOKEN)
        log.info("two %s", TOKEN)
        assert stream.getvalue().splitlines() == [f"INFO one {TOKEN}", "INFO two ***"]

    def test_a_record_whose_message_cannot_be_formatted_is_passed_on_untouched(self):
        """The filter lets logging's own error handling report a broken format string."""
        record = logging.LogRecord("tests", logging.INFO, __file__, 1, "%d", ("not a number",), None)
        assert RedactingFilter(Redactor()).filter(record) is True
        assert (record.msg, record.args) == ("%d", ("not a number",))
