"""Malformed and hostile JSON-RPC thrown at the proxy, over stdio and over Streamable HTTP.

Every request gets an answer or a clean refusal, the process stays up, and a valid call afterwards succeeds.
One proxy process per transport serves the whole module (a spawn per example would take minutes), with the echo
test server as its upstream so that routed calls are exercised too. Each `Case` says what a correct proxy does
with it (`Expect`); `StdioProxy.check` and `HttpProxy.check` hold one transport to that, then make a real
`tools/call echo__echo` and check that the process still runs.

Hypothesis runs derandomized, so every run (and CI) tries the same examples, and without shrinking: the process is
shared, so once it is broken every input fails, and shrinking would blame the smallest input instead of the one
that broke it. Each failure names the case that was sent. Hand-written hostile cases run as plain parametrized
tests over both transports.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx2
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import _STRIPPED_PREFIXES, REPO, echo_server, proxy_command
from tests.http.conftest import HEADERS, INITIALIZE, LISTENING, STARTUP_TIMEOUT, session_headers

# How long one answer may take: an 8 MiB echo crosses two processes and is parsed four times on a busy 2-core box.
ANSWER_TIMEOUT = 30.0
# The HTTP body limit (`HttpOptions.max_body_bytes`); a larger body must get 413.
HTTP_BODY_LIMIT = 4 * 1024 * 1024
# The default `--max-result-size`: a longer tool result reaches the client truncated, with a note.
RESULT_LIMIT = 1024 * 1024
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
# Every example makes a tool call or two; the default 60 calls per minute per session would refuse most of them.
NO_CALL_LIMIT = ("--rate-limit", "0")

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    # The autouse `clean_environ` is function-scoped; the proxies under test are module-scoped and built apart.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# --- what a correct proxy does with a case ---------------------------------------------------------------------


class Expect(enum.Enum):
    REPLY = "exactly one answer (result or error) carrying the request's id"
    INVALID = "not a valid request, but its id is readable: exactly one error, with that id or a null one"
    REPLY_OR_REJECT = "exactly one answer: one carrying the request's id, or an error with a null id"
    REJECT = "no readable request: exactly one error, with a null id"
    BAD_ID = "a request whose id is neither a string nor an integer: exactly one error, with a null id"
    SILENT = "a notification: no answer at all"


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile message: the bytes sent (one stdio line, one HTTP body) and what must come back."""

    body: bytes
    expect: Expect
    id: int | str | None = None
    """The id a `REPLY`, `INVALID` or `REPLY_OR_REJECT` answer carries."""
    text: str | None = None
    """For a valid `tools/call echo__echo`: the text its result must carry (cut short past `RESULT_LIMIT`)."""

    def __repr__(self) -> str:  # a failing case is printed; a 4 MiB body would drown the report
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"...(%d bytes)" % len(self.body)
        return f"Case({self.expect.name}, id={_short(self.id)}, body={body!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # what hypothesis prints a failing example with
        printer.text(repr(self))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}...({len(text)} chars)"


# --- strategies ------------------------------------------------------------------------------------------------

KNOWN_METHODS = (
    "ping", "initialize", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list",
    "resources/read", "resources/templates/list", "resources/subscribe", "resources/unsubscribe",
    "completion/complete", "logging/setLevel", "notifications/initialized", "notifications/cancelled",
)  # fmt: skip
UNKNOWN_METHODS = ("no/such/method", "rpc.discover", "$/cancelRequest", "tools/call/", "TOOLS/CALL", "", " ping")
NOTIFICATION_METHODS = (
    "notifications/initialized", "notifications/cancelled", "notifications/progress",
    "notifications/roots/list_changed", "notifications/message", "no/such/notification",
)  # fmt: skip
# Never a tool that sleeps, crashes or asks the client something back (sampling, elicitation, roots).
TOOL_NAMES = ("echo__echo", "echo__whoami", "echo__fail", "echo__raise_error", "echo__nope", "nope__echo", "echo", "")
MEMBERS = ("jsonrpc", "id", "method", "params", "result", "error")
# Strings JSON can spell but UTF-8 cannot carry (lone surrogates).
UNREADABLE_STRINGS = ('"\\ud800"', '"a\\udfffb"', '"\\udc00\\ud800"')
# Bytes that break a line: invalid or overlong UTF-8, an encoded surrogate, past U+10FFFF, NULs, a BOM, a terminal
# escape sequence, a carriage return.
JUNK = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00",
        b"\x00\x00\x00\x00", b"\xef\xbb\xbf", b"\x1b[2J", b"\r")  # fmt: skip
LONG_SIZES = (1 << 10, 1 << 16, 1 << 20, HTTP_BODY_LIMIT + 1024)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ARRAYS = st.lists(JSON_VALUES, max_size=4)
OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)
NON_OBJECTS = SCALARS | ARRAYS
# Wrong types for a member that must be a string (numbers, nulls, booleans, arrays, objects; NaN and infinities too).
NOT_STRINGS = st.none() | st.booleans() | st.integers() | st.floats() | ARRAYS | OBJECTS
VALID_IDS = (
    st.integers()
    | st.integers(min_value=2**63, max_value=2**200)
    | st.integers(min_value=-(2**200), max_value=-(2**63) - 1)
    | st.text(max_size=30)
    | st.sampled_from(["NaN", "Infinity", "-1", "1e400", "null", ""])
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class _Member:
    """One member of an envelope, as raw JSON text, and whether it is what JSON-RPC asks there."""

    raw: str
    valid: bool
    value: Any = None
    readable: bool = True
    """False for a string UTF-8 cannot carry: the SDK refuses the whole message."""


def _valid(values: st.SearchStrategy[Any]) -> st.SearchStrategy[_Member | None]:
    return values.map(lambda v: _Member(_dumps(v), True, v))


def _wrong(values: st.SearchStrategy[Any]) -> st.SearchStrategy[_Member | None]:
    return values.map(lambda v: _Member(_dumps(v), False, v))


def _raw(tokens: tuple[str, ...], *, valid: bool = False, readable: bool = True) -> st.SearchStrategy[_Member | None]:
    return st.sampled_from(tokens).map(lambda raw: _Member(raw, valid, json.loads(raw), readable))


def _weighted(*choices: tuple[int, st.SearchStrategy[_Member | None]]) -> st.SearchStrategy[_Member | None]:
    """One of `choices`, each picked in proportion to its weight; `None` stands for a missing member."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


MISSING = st.none()
# Mostly right, so that most envelopes get past the first check and reach the next one.
JSONRPC_MEMBERS = _weighted(
    (7, _valid(st.just("2.0"))), (2, _wrong(st.sampled_from(["1.0", "2", 2.0, 2, None, True, [], {}, "2.0 "]))),
    (1, MISSING),
)  # fmt: skip
ID_MEMBERS = _weighted(
    (5, _valid(VALID_IDS)), (1, _raw(("-0", "0"), valid=True)),
    (2, _wrong(st.none() | st.booleans() | st.floats() | ARRAYS | OBJECTS)),
    (1, _raw(("1e400", "1.0", "1E2", "-1.5e-7", "NaN", "Infinity"))),
    (1, _raw(UNREADABLE_STRINGS, readable=False)), (2, MISSING),
)  # fmt: skip
METHOD_MEMBERS = _weighted(
    (7, _valid(st.sampled_from(KNOWN_METHODS + UNKNOWN_METHODS) | st.text(max_size=30))), (2, _wrong(NOT_STRINGS)),
    (1, _raw(UNREADABLE_STRINGS, readable=False)), (1, MISSING),
)  # fmt: skip
TOOL_CALL_PARAMS = st.fixed_dictionaries(
    {"name": st.sampled_from(TOOL_NAMES) | JSON_VALUES},
    optional={
        "arguments": st.dictionaries(st.sampled_from(["text", "message", "code"]) | st.text(max_size=6), JSON_VALUES)
        | JSON_VALUES,
        "_meta": st.fixed_dictionaries({}, optional={"progressToken": SCALARS}) | JSON_VALUES,
    },
)
RESOURCE_PARAMS = st.fixed_dictionaries(
    {"uri": st.sampled_from(["echo://static", "echo://item/1", "echo://item/", "file:///etc/passwd", ""]) | SCALARS}
)
OBJECT_PARAMS = OBJECTS | TOOL_CALL_PARAMS | RESOURCE_PARAMS
PARAMS_MEMBERS = _weighted(
    (5, _valid(st.none() | OBJECT_PARAMS)),
    (2, _wrong(st.booleans() | st.integers() | st.floats() | st.text() | ARRAYS)),
    (2, MISSING),
)  # fmt: skip


def _object(members: list[tuple[str, str]]) -> bytes:
    return ("{" + ",".join(f"{_dumps(key)}:{raw}" for key, raw in members) + "}").encode()


@st.composite
def envelopes(draw: st.DrawFn) -> Case:
    """A JSON-RPC-shaped object whose members are each missing, right, or of a wrong type."""
    drawn = {
        key: draw(strategy)
        for key, strategy in (
            ("jsonrpc", JSONRPC_MEMBERS),
            ("id", ID_MEMBERS),
            ("method", METHOD_MEMBERS),
            ("params", PARAMS_MEMBERS),
        )
    }
    present = [(key, member.raw) for key, member in drawn.items() if member is not None]
    if draw(st.booleans()):
        present.append(("extra", _dumps(draw(JSON_VALUES))))
    body = _object(draw(st.permutations(present)))
    jsonrpc, request_id, method, params = drawn["jsonrpc"], drawn["id"], drawn["method"], drawn["params"]
    well_formed = (
        jsonrpc is not None
        and jsonrpc.valid
        and method is not None
        and method.valid
        and (params is None or params.valid)
    )
    if request_id is None:
        return Case(body, Expect.SILENT if well_formed else Expect.REJECT)
    if not request_id.readable:
        return Case(body, Expect.REJECT)
    if not request_id.valid:
        return Case(body, Expect.BAD_ID if well_formed else Expect.REJECT)
    return Case(body, Expect.REPLY if well_formed else Expect.INVALID, request_id.value)


@st.composite
def notifications(draw: st.DrawFn) -> Case:
    """A well-formed notification (no id): known, unknown, or with garbage params."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": draw(st.sampled_from(NOTIFICATION_METHODS))}
    if draw(st.booleans()):
        message["params"] = draw(OBJECT_PARAMS | st.fixed_dictionaries({"requestId": SCALARS, "reason": SCALARS}))
    return Case(_dumps(message).encode(), Expect.SILENT)


@st.composite
def non_messages(draw: st.DrawFn) -> Case:
    """JSON that is no JSON-RPC message at all: scalars, arrays, and objects without any JSON-RPC member."""
    value = draw(NON_OBJECTS | st.dictionaries(st.text(max_size=8).filter(lambda k: k not in MEMBERS), JSON_VALUES))
    return Case(_dumps(value).encode(), Expect.REJECT)


@st.composite
def batches(draw: st.DrawFn) -> Case:
    """A JSON array of messages (MCP has no batches): empty, all requests, or mixed with garbage."""
    items = draw(st.lists(envelopes().map(lambda case: case.body) | JSON_VALUES.map(lambda v: _dumps(v).encode())))
    return Case(b"[" + b",".join(items) + b"]", Expect.REJECT)


def _not_an_object(body: bytes) -> bool:
    try:
        return not isinstance(json.loads(body.decode("utf-8", errors="replace")), dict)
    except (ValueError, RecursionError):
        return True


@st.composite
def garbage(draw: st.DrawFn) -> Case:
    """A line that is not JSON: text (with NULs, control characters, any script) or raw bytes."""
    text = st.text(st.characters(exclude_characters="\n"), max_size=200).map(str.encode)
    raw = st.binary(max_size=200).map(lambda b: b.replace(b"\n", b""))
    body = draw((text | raw).filter(_not_an_object))
    return Case(body, Expect.REJECT)


def _request(request_id: int, text: str = "fuzz", **extra: Any) -> str:
    return _dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "echo__echo", "arguments": {"text": text, **extra}},
        }
    )


@st.composite
def mangled(draw: st.DrawFn) -> Case:
    """A valid `tools/call` with invalid UTF-8, NULs or control bytes before, after, between tokens or in a string."""
    request_id = draw(st.integers(min_value=0))
    junk = draw(st.sampled_from(JUNK))
    head, tail = _request(request_id, "\x01MARK\x01").encode().split(b"\\u0001MARK\\u0001")
    where = draw(st.sampled_from(["before", "after", "in-text", "between-tokens"]))
    if where == "before":
        body = junk + head + b"text" + tail
    elif where == "after":
        body = head + b"text" + tail + junk
    elif where == "in-text":
        body = head + b"te" + junk + b"xt" + tail
    else:
        commas = [i for i, byte in enumerate(head) if byte == ord(",")]
        cut = draw(st.sampled_from(commas)) + 1
        body = head[:cut] + junk + head[cut:] + b"text" + tail
    return Case(body, Expect.REPLY_OR_REJECT, request_id)


@st.composite
def deeply_nested(draw: st.DrawFn) -> Case:
    """A request whose params nest arrays or objects from one to 100,000 levels deep (built as bytes)."""
    depth = draw(st.integers(min_value=1, max_value=20_000) | st.sampled_from([254, 255, 256, 999, 1000, 100_000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    inner = b"null" if opener == b"{" else b""
    nested = opener * depth + inner + closer * depth
    request_id = draw(st.integers(min_value=0))
    if draw(st.booleans()):
        body = b'{"jsonrpc":"2.0","id":%d,"method":"ping","params":{"deep":%s}}' % (request_id, nested)
    else:
        head, tail = _request(request_id, "deep", deep=None).encode().rsplit(b"null", 1)
        body = head + nested + tail
    return Case(body, Expect.REPLY_OR_REJECT, request_id)


@st.composite
def long_strings(draw: st.DrawFn) -> Case:
    """Requests with a very long string (up to past the HTTP body limit) as a param, echo text, method or id."""
    size = draw(st.sampled_from(LONG_SIZES))
    char = draw(st.sampled_from(["a", "é", "😀", "\\"]))
    text = char * (size // len(char.encode()))
    request_id = draw(st.integers(min_value=0))
    where = draw(st.sampled_from(["param", "echo", "method", "id"]))
    if where == "echo" and size <= 1 << 16:
        return Case(_request(request_id, text).encode(), Expect.REPLY, request_id, text=text)
    if where == "method" and size <= 1 << 20:
        return Case(_dumps({"jsonrpc": "2.0", "id": request_id, "method": text}).encode(), Expect.REPLY, request_id)
    if where == "id" and size <= 1 << 16:
        return Case(_dumps({"jsonrpc": "2.0", "id": text, "method": "ping"}).encode(), Expect.REPLY, text)
    message = {"jsonrpc": "2.0", "id": request_id, "method": "ping", "params": {"pad": text}}
    return Case(_dumps(message).encode(), Expect.REPLY, request_id)


def cases() -> st.SearchStrategy[Case]:
    """Every kind of hostile message; envelopes, which vary the most, three times as often as the rest."""
    return st.one_of(
        envelopes(), envelopes(), envelopes(), notifications(), non_messages(), batches(), garbage(), mangled(),
        deeply_nested(), long_strings(),
    )  # fmt: skip


def _hand_written() -> list[Any]:
    deep = b"[" * 10_000 + b"]" * 10_000
    huge = "x" * (8 * 1024 * 1024)
    ping = b'{"jsonrpc":"2.0","id":7,"method":"ping"}'
    batch = b"[" + b",".join(_request(i, f"call {i}").encode() for i in range(1000)) + b"]"
    cases = {
        "nesting-10000-deep": Case(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":%s}}' % deep,
                                   Expect.REPLY_OR_REJECT, 1),
        "line-of-8-MiB": Case(_request(2, huge).encode(), Expect.REPLY, 2, text=huge),
        "invalid-utf8-before-json": Case(b"\xff\xfe" + ping, Expect.REJECT),
        "invalid-utf8-in-a-string": Case(_request(3, "\x01").encode().replace(b"\\u0001", b"\xc3\x28\xff"),
                                         Expect.REPLY_OR_REJECT, 3),
        "nul-inside-the-json": Case(ping.replace(b",", b",\x00", 1), Expect.REJECT),
        "batch-of-1000-calls": Case(batch, Expect.REJECT),
        "id-2**200": Case(b'{"jsonrpc":"2.0","id":%d,"method":"ping"}' % 2**200, Expect.REPLY, 2**200),
        "id-null": Case(b'{"jsonrpc":"2.0","id":null,"method":"ping"}', Expect.BAD_ID),
        "id-1.5": Case(b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', Expect.BAD_ID),
        "id-lone-surrogate-invalid-message": Case(b'{"jsonrpc":"2.0","id":"\\ud800","method":42}', Expect.REJECT),
        "empty-line": Case(b"", Expect.REJECT),
    }  # fmt: skip
    return [pytest.param(case, id=name) for name, case in cases.items()]


# --- judging answers -------------------------------------------------------------------------------------------


def _is_answer(message: Any) -> bool:
    """A response or error (not a server-to-client request or notification)."""
    return isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message)


def _same_id(answer: dict[str, Any], request_id: int | str | None) -> bool:
    got = answer.get("id")
    return type(got) is type(request_id) and got == request_id


def _assert_error(answer: dict[str, Any], codes: tuple[int, ...] | None = None) -> None:
    error = answer.get("error")
    assert answer.get("jsonrpc") == "2.0" and isinstance(error, dict), f"not a JSON-RPC error: {_short(answer)}"
    assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), _short(answer)
    assert codes is None or error["code"] in codes, f"error code {error['code']}, wanted one of {codes}"


def judge(case: Case, answers: list[dict[str, Any]], reject_codes: tuple[int, ...]) -> None:
    """Hold the answers one case got to what its `Expect` asks; `reject_codes` are the codes a refusal may use."""
    if case.expect is Expect.SILENT:
        assert answers == [], f"a notification was answered: {_short(answers)}"
        return
    assert len(answers) == 1, f"wanted exactly one answer, got {len(answers)}: {_short(answers)}"
    (answer,) = answers
    assert answer.get("jsonrpc") == "2.0", _short(answer)
    if case.expect in (Expect.REJECT, Expect.BAD_ID):
        assert answer.get("id") is None, f"a refusal must carry a null id: {_short(answer)}"
        _assert_error(answer, reject_codes)
    elif _same_id(answer, case.id):
        assert ("result" in answer) != ("error" in answer), _short(answer)
        if case.expect is Expect.INVALID or "error" in answer:
            _assert_error(answer)
        else:
            assert isinstance(answer["result"], dict), _short(answer)
    else:
        assert case.expect is not Expect.REPLY, f"answer id {_short(answer.get('id'))}, wanted {_short(case.id)}"
        assert answer.get("id") is None, f"an answer with a foreign id: {_short(answer)}"
        _assert_error(answer, reject_codes)
    if case.text is not None:
        assert "result" in answer, f"the echo failed: {_short(answer)}"
        echoed = answer["result"]["content"][0]["text"]
        if len(case.text.encode()) > RESULT_LIMIT:
            assert echoed and case.text.startswith(echoed), "the truncated echo is not a prefix of the text sent"
        else:
            assert echoed == case.text, "the echo came back altered"


def _probe_call(request_id: str) -> bytes:
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo__echo", "arguments": {"text": request_id}},
    }
    return json.dumps(message).encode()


def _assert_echoed(answer: dict[str, Any], text: str) -> None:
    assert "result" in answer, f"the valid call after the case failed: {_short(answer)}"
    assert answer["result"]["content"][0]["text"] == text, _short(answer)


class Transport(Protocol):
    def check(self, case: Case) -> None: ...


# --- stdio -----------------------------------------------------------------------------------------------------


class StdioProxy:
    """The proxy on stdio: each case goes out as one line; answers read back are paired with it."""

    # Codes the stdio module docstring promises for lines it cannot serve.
    REJECT_CODES = (PARSE_ERROR, INVALID_REQUEST)

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self._process = process
        self._log = log
        self._answers: queue.Queue[dict[str, Any] | BaseException] = queue.Queue()
        self._probes = itertools.count()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self._answers.put(AssertionError(f"stdout carried a line that is not JSON: {line[:200]!r}"))
                continue
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                self._answers.put(AssertionError(f"stdout carried a non-JSON-RPC line: {line[:200]!r}"))
            elif _is_answer(message):
                self._answers.put(message)
        self._answers.put(EOFError("the proxy closed stdout"))

    def initialize(self) -> None:
        self._send(json.dumps(INITIALIZE).encode())
        assert "result" in self._next(), "initialize failed"
        self._send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')

    def check(self, case: Case) -> None:
        """Send `case`, judge what comes back, then require a routed call to succeed and the process to run."""
        assert b"\n" not in case.body
        self._send(case.body)
        answers = [] if case.expect is Expect.SILENT else [self._next()]
        probe = f"probe-{next(self._probes)}"
        self._send(_probe_call(probe))
        while not _same_id(answer := self._next(), probe):
            answers.append(answer)  # anything else the case caused, read before the probe's answer
        judge(case, answers, self.REJECT_CODES)
        _assert_echoed(answer, probe)
        assert self._process.poll() is None, f"the proxy exited with {self._process.returncode}"

    def _send(self, line: bytes) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(line + b"\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            pytest.fail(f"the proxy is gone (exit {self._process.poll()}):\n{self._tail()}")

    def _next(self) -> dict[str, Any]:
        try:
            item = self._answers.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no answer within {ANSWER_TIMEOUT} s:\n{self._tail()}")
        if isinstance(item, BaseException):
            pytest.fail(f"{item} (exit {self._process.poll()}):\n{self._tail()}")
        return item

    def _tail(self) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-30:])

    def close(self) -> None:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a proxy that died leaves unflushed bytes behind
            self._process.stdin.close()
        try:
            self._process.wait(timeout=ANSWER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# --- Streamable HTTP -------------------------------------------------------------------------------------------


class HttpProxy:
    """The proxy on Streamable HTTP: each case is POSTed to `/mcp` inside a session and without one."""

    # Also `-32602`: the SDK answers a body that is JSON but no JSON-RPC message with INVALID_PARAMS.
    REJECT_CODES = (PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS)

    def __init__(self, process: subprocess.Popen[str], client: httpx2.Client, lines: list[str]) -> None:
        self._process = process
        self._client = client
        self._lines = lines
        self._session: dict[str, str] = {}
        self._probes = itertools.count()

    def initialize(self) -> None:
        opened = self._post(json.dumps(INITIALIZE).encode(), HEADERS)
        assert opened.status_code == 200, opened.text
        self._session = session_headers(opened)
        initialized = self._post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}', self._session)
        assert initialized.status_code == 202, initialized.text

    def check(self, case: Case) -> None:
        """POST `case` in the session and without one, judge both, then require a routed call to succeed."""
        self._judge_in_session(case, self._post(case.body, self._session))
        self._judge_without_session(case, self._post(case.body, HEADERS))
        probe = f"probe-{next(self._probes)}"
        reply = self._post(_probe_call(probe), self._session)
        assert reply.status_code == 200, reply.text[:500]
        answers = [message for message in _messages(reply) if _same_id(message, probe)]
        assert len(answers) == 1, f"the valid call after the case got {len(answers)} answers: {reply.text[:500]}"
        _assert_echoed(answers[0], probe)
        assert self._process.poll() is None, f"the proxy exited with {self._process.returncode}"

    def _judge_in_session(self, case: Case, response: httpx2.Response) -> None:
        status = response.status_code
        if self._refused_as_too_large(case, response):
            return
        if case.expect is Expect.SILENT:
            assert status == 202 and not response.content, f"{status}: {response.text[:500]}"
        elif case.expect is Expect.BAD_ID and status == 202:
            pass  # the SDK reads a request with such an id as a notification and accepts it silently (see report)
        elif status == 200:
            assert case.expect in (Expect.REPLY, Expect.INVALID, Expect.REPLY_OR_REJECT), f"200 for {case.expect}"
            judge(case, [m for m in _messages(response) if _is_answer(m)], self.REJECT_CODES)
        else:
            assert case.expect is not Expect.REPLY, f"{status} for a valid request: {response.text[:500]}"
            self._assert_refusal(response, {400})

    def _judge_without_session(self, case: Case, response: httpx2.Response) -> None:
        if self._refused_as_too_large(case, response):
            return
        if response.status_code == 200:  # only a valid `initialize` (it opens a session) is served without one
            assert case.expect in (Expect.REPLY, Expect.INVALID, Expect.REPLY_OR_REJECT), response.text[:500]
            judge(case, [m for m in _messages(response) if _is_answer(m)], self.REJECT_CODES)
        else:
            self._assert_refusal(response, {400, 404})

    def _refused_as_too_large(self, case: Case, response: httpx2.Response) -> bool:
        if len(case.body) <= HTTP_BODY_LIMIT:
            return False
        self._assert_refusal(response, {413})
        return True

    def _assert_refusal(self, response: httpx2.Response, statuses: set[int]) -> None:
        assert response.status_code in statuses, f"{response.status_code}: {response.text[:500]}"
        assert response.headers.get("content-type", "").startswith("application/json"), response.headers
        _assert_error(response.json())

    def _post(self, body: bytes, headers: dict[str, str]) -> httpx2.Response:
        try:
            return self._client.post("/mcp", content=body, headers=headers)
        except httpx2.TimeoutException:
            pytest.fail(f"no answer within {ANSWER_TIMEOUT} s:\n{self._tail()}")
        except httpx2.TransportError as exc:
            pytest.fail(f"the connection failed ({type(exc).__name__}, exit {self._process.poll()}):\n{self._tail()}")

    def post_raw(self, body: bytes, headers: dict[str, str]) -> httpx2.Response:
        """POST `body` with exactly `headers`, for header-level cases."""
        return self._post(body, headers)

    @property
    def session(self) -> dict[str, str]:
        return dict(self._session)

    def _tail(self) -> str:
        return "".join(self._lines[-30:])


def _messages(response: httpx2.Response) -> list[Any]:
    """The JSON-RPC messages of a 200 answer, a JSON body or an SSE stream."""
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        return [response.json()]
    assert content_type.startswith("text/event-stream"), content_type
    messages = []
    for event in response.text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:"))
        if data:
            messages.append(json.loads(data))
    return messages


# --- fixtures --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Environment:
    """What `clean_environ` gives a test, built once for the module's long-lived proxies, and the echo config."""

    home: Path
    config: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> _Environment:
    home = tmp_path_factory.mktemp("fuzz-home")
    config = home / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"echo": echo_server()}}))
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith(_STRIPPED_PREFIXES)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return _Environment(home, config, env)


@pytest.fixture(scope="module")
def stdio_proxy(environment: _Environment) -> Iterator[StdioProxy]:
    """`pluggedin-mcp --config …` on stdio, initialized, for the whole module."""
    log = environment.home / "stdio-proxy.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            proxy_command("--config", str(environment.config), *NO_CALL_LIMIT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO,
            env=environment.env,
        )
    proxy = StdioProxy(process, log)
    try:
        proxy.initialize()
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def http_proxy(environment: _Environment) -> Iterator[HttpProxy]:
    """`pluggedin-mcp --transport streamable-http --port 0 …`, with one initialized session, for the whole module."""
    process = subprocess.Popen(
        proxy_command(
            "--config", str(environment.config), *NO_CALL_LIMIT, "--transport", "streamable-http", "--port", "0"
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=environment.env,
    )
    lines: list[str] = []
    url = _drain_until_listening(process, lines)
    try:
        if url is None:
            pytest.fail(f"the proxy did not start listening (exit {process.poll()}):\n{''.join(lines[-30:])}")
        with httpx2.Client(base_url=url, timeout=ANSWER_TIMEOUT) as client:
            proxy = HttpProxy(process, client, lines)
            proxy.initialize()
            yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drain_until_listening(process: subprocess.Popen[str], lines: list[str]) -> str | None:
    """Collect `process`'s stderr into `lines` on a daemon thread; return the URL it listens on (None if it died)."""
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if not found and (match := LISTENING.search(line)):
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    ready.wait(STARTUP_TIMEOUT)
    return found[0] if found else None


# --- tests -----------------------------------------------------------------------------------------------------


@FUZZ
@given(case=cases())
def test_stdio_answers_or_refuses_every_hostile_line_and_keeps_serving(stdio_proxy: StdioProxy, case: Case) -> None:
    """Each line gets the answer its case calls for and nothing else; a routed call afterwards succeeds."""
    stdio_proxy.check(case)


@FUZZ
@given(case=cases())
def test_http_answers_or_refuses_every_hostile_body_and_keeps_serving(http_proxy: HttpProxy, case: Case) -> None:
    """Each body, in a session and without, gets a JSON-RPC answer or a clean 4xx; a routed call afterwards works."""
    http_proxy.check(case)


@pytest.mark.parametrize("case", _hand_written())
@pytest.mark.parametrize("transport", ["stdio_proxy", "http_proxy"])
def test_hand_written_hostile_message_is_answered_and_the_proxy_keeps_serving(
    transport: str, case: Case, request: pytest.FixtureRequest
) -> None:
    """The classic attacks, on both transports: the case's answer, then a routed call succeeds."""
    proxy: Transport = request.getfixturevalue(transport)
    proxy.check(case)


# Header changes (None: leave the header out) and the statuses that refuse them cleanly. The SDK's transport
# security answers a wrong content type with a plain-text 400 rather than 415 (see the report).
HEADER_CASES: dict[str, tuple[dict[str, str | None], tuple[int, ...]]] = {
    "content-type-text-plain": ({"Content-Type": "text/plain"}, (400, 415)),
    "no-content-type": ({"Content-Type": None}, (400, 415)),
    "accept-html-only": ({"Accept": "text/html"}, (406,)),
    "unknown-session": ({"mcp-session-id": "no-such-session"}, (404,)),
    "path-like-session-id": ({"mcp-session-id": "../" * 100 + "%00"}, (404,)),
    "bogus-protocol-version": ({"mcp-protocol-version": "1999-01-01"}, (400,)),
}


@pytest.mark.parametrize(("changes", "statuses"), HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_http_refuses_hostile_headers_cleanly_and_keeps_serving(
    http_proxy: HttpProxy, changes: dict[str, str | None], statuses: tuple[int, ...]
) -> None:
    """A wrong content type, accept header, session id or protocol version gets a clean 4xx; service goes on."""
    ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    headers = {key: value for key, value in {**http_proxy.session, **changes}.items() if value is not None}
    refused = http_proxy.post_raw(ping, headers)
    assert refused.status_code in statuses, f"{refused.status_code}: {refused.text[:500]}"
    if refused.headers.get("content-type", "").startswith("application/json"):
        _assert_error(refused.json())
    http_proxy.check(Case(ping, Expect.REPLY, 1))
