"""A small, careful HTTP client for the Craton v1 API.

One ``requests.Session`` (keep-alive), an explicit (connect, read) timeout on
every call, TLS verification on unless told otherwise, and a
``urllib3`` ``Retry`` that retries connection errors, dropped connections,
429 and 5xx answers with exponential backoff and honours ``Retry-After``.
POST is retried too: the plugin makes creation idempotent by treating the
409 of a repeated create as "it exists" and looking the object up.

Every failure becomes a :class:`CratonError`: one line naming the URL and
what to do, never the credentials (they live only in the session headers,
which no message or repr shows).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from typing import Any, Iterator

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ...bounded import parse_json
from ...errors import AccessDenied, InventoryError, StorageError, one_line
from ..http_answer import MAX_ANSWER_BYTES, read_answer
from ..tls import strict_ca_advice, tls_reason

LOG = logging.getLogger(__name__)

RETRY_STATUSES = frozenset([429] + list(range(500, 600)))
RETRY_METHODS = frozenset(["GET", "HEAD", "PUT", "DELETE", "POST"])
MAX_RETRY_AFTER = 60.0
PAGE = 100


class CratonError(StorageError):
    """A request to Craton failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class CratonAccessDenied(CratonError, AccessDenied):
    """Craton refused the credentials (401) or the request (403)."""


class _CappedRetry(Retry):
    """A Retry whose ``Retry-After`` wait is capped, so a confused server cannot stall a run for hours."""

    def get_retry_after(self, response):  # type: ignore[override]
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER)


class CratonClient:
    """JSON requests against ``<url>/v1`` with the given auth headers.

    ``who`` describes the identity for 401 messages (e.g. "user osa in project
    <id>"); it must not contain secrets.
    """

    max_answer = MAX_ANSWER_BYTES  # bytes of one answer's body; more is refused (see http_answer)

    def __init__(self, url: str, headers: dict[str, str], who: str, *, verify: bool | str = True,
                 timeout: float = 30.0, retries: int = 3, backoff: float = 0.5):
        self.url = url.rstrip("/")
        self.who = who
        self.timeout = timeout
        self.retries = retries
        self.verify = verify
        self.sent: Counter = Counter()
        self._session = requests.Session()
        self._session.headers.update(headers)
        self._session.headers["User-Agent"] = "osa-inventory-craton/1"
        self._session.headers["Accept"] = "application/json"
        self._session.verify = verify
        self._session.trust_env = False  # no proxy or netrc surprises for a deployment tool
        retry = _CappedRetry(total=retries, connect=retries, read=retries, status=retries, other=0,
                             redirect=0, allowed_methods=RETRY_METHODS, status_forcelist=RETRY_STATUSES,
                             backoff_factor=backoff, raise_on_status=False, raise_on_redirect=False,
                             respect_retry_after_header=True)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=4)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"<CratonClient {self.url}>"

    def close(self) -> None:
        self._session.close()

    # -- requests ---------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                expect: tuple[int, ...] = (200,)) -> Any:
        """Send one request; return the decoded JSON body (None for an empty one)."""
        full = f"{self.url}/v1{path}"
        kwargs: dict = {"params": params, "timeout": (self.timeout, self.timeout)}
        if body is not None:
            kwargs["json"] = body
        self.sent[method] += 1
        LOG.debug("craton %s %s", method, path)
        try:
            with warnings.catch_warnings():
                if self.verify is False:
                    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                response = self._session.request(method, full, stream=True, **kwargs)
                content = read_answer(response, limit=self.max_answer, shown=f"{method} {full}", error=CratonError,
                                      advice="check that [craton] url points at the Craton API")
        except requests.RequestException as exc:
            raise CratonError(self._explain(exc, method, path)) from None
        if response.status_code not in expect:
            kind = CratonAccessDenied if response.status_code in (401, 403) else CratonError
            raise kind(self._status_message(response, content, method, path), response.status_code)
        if not content:
            return None
        try:
            return parse_json(content, shown=f"the answer to {method} {full}", error=CratonError)
        except CratonError as exc:
            raise CratonError(f"{method} {full} answered {response.status_code} with a body that is not JSON "
                              f"Craton could have sent ({one_line(exc)}); check that [craton] url points at the "
                              "Craton API") from None

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body, expect=(200, 201))

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str, body: Any = None) -> None:
        self.request("DELETE", path, body=body, expect=(200, 204))

    def list_all(self, path: str, key: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a paginated list: pages of 100 by marker, up to a short or empty page."""
        query = dict(params or {})
        query["limit"] = PAGE
        marker = None
        while True:
            if marker is not None:
                query["marker"] = marker
            page = self.get(path, query)
            items = page.get(key) if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise CratonError(f"GET {self.url}/v1{path} answered without a {key!r} list; "
                                  "check that [craton] url points at the Craton API")
            if not items:
                return
            yield from items
            last = items[-1].get("id")
            if last is None or last == marker:
                raise CratonError(f"GET {self.url}/v1{path}: pagination does not advance (marker {marker})")
            marker = last
            # A short page is the last one: Craton honours limit, so this saves the empty end page.
            if len(items) < PAGE or not any(link.get("rel") == "next" for link in page.get("links") or []):
                return

    # -- messages ---------------------------------------------------------

    def _status_message(self, response: requests.Response, content: bytes, method: str, path: str) -> str:
        status = response.status_code
        full = f"{self.url}/v1{path}"
        text = _server_message(response, content)
        if status == 401:
            return (f"Craton at {self.url} refused the credentials of {self.who} (401 on {method} {path}); "
                    "check [craton] project_id, username and api_key (or token): a user of that project, "
                    "made by a Craton admin; a plain user is enough (docs/craton.md)")
        if status == 429:
            return (f"{method} {full}: still rate-limited (429) after {self.retries} retries; "
                    "try again later or raise [craton] retries")
        if status >= 500:
            return (f"{method} {full}: server error {status} ({text}) after {self.retries} retries; "
                    "check the Craton API service and its logs")
        return f"{method} {full}: {status} {text}"

    def _explain(self, exc: Exception, method: str, path: str) -> str:
        full = f"{self.url}/v1{path}"
        reason = _root_reason(exc)
        attempts = self.retries + 1
        if isinstance(exc, requests.exceptions.SSLError) or isinstance(reason, urllib3.exceptions.SSLError):
            detail = tls_reason(exc)
            advice = strict_ca_advice(
                detail, "[craton] verify", self.verify if isinstance(self.verify, str) else None) or (
                "set [craton] verify to the CA bundle that signed the server certificate "
                "(verify = false turns checking off, unsafe)")
            return f"TLS connection to {self.url} failed ({detail}); {advice}"
        # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            why = "connection refused" if "refused" in str(reason).lower() else _short(reason)
            return (f"cannot connect to Craton at {self.url} ({why}, {attempts} attempts); "
                    "check [craton] url and that the API service is running")
        if isinstance(reason, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError)) \
                or isinstance(exc, requests.exceptions.Timeout):
            return (f"Craton at {self.url} did not answer {method} {path} within {self.timeout:g} s "
                    f"({attempts} attempts); check the service or raise [craton] timeout")
        if isinstance(reason, urllib3.exceptions.ProtocolError) or "aborted" in str(exc).lower():
            return (f"Craton at {self.url} dropped the connection during {method} {path} "
                    f"({attempts} attempts); check the API service and its logs")
        return f"{method} {full} failed: {type(exc).__name__}: {_short(reason or exc)}"


def _root_reason(exc: Exception) -> Any:
    """The urllib3 error under a requests exception (MaxRetryError.reason, when present)."""
    arg = exc.args[0] if exc.args else None
    reason = getattr(arg, "reason", None)
    return reason if reason is not None else arg


def _short(value: Any) -> str:
    text = " ".join(str(value or "").split())
    # urllib3 prefixes reasons with object reprs ("<urllib3.connection...>: "): keep the words.
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return text[:200]


def _server_message(response: requests.Response, content: bytes) -> str:
    try:
        data = parse_json(content, shown="an error answer")
    except InventoryError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return " ".join(data["message"].split())[:300]
    return response.reason or "no message"
