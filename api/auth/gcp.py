"""Google Cloud as authentication and authorization see it: service-account naming, and the REST calls
they make to IAM and Cloud Resource Manager.

JSON over an injectable `httpx.AsyncClient`. Outside tests the client carries application default
credentials (`credentialed_client`); tests point the base URLs at a local fake server and pass a bare client.
Network errors and 5xx/429 answers are retried with jittered exponential backoff until a deadline, as Styx
does; what is left is raised as `GoogleApiError` carrying the HTTP status (None when nothing answered).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import httpx
from google.auth.credentials import Credentials
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from styx_actors.errors import PicklableError

log = logging.getLogger(__name__)

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
USER_CREATED_SERVICE_ACCOUNT = re.compile(r"^.+@(.+)\.iam\.gserviceaccount\.com$")


def is_service_account(email: str) -> bool:
    return email.endswith(".gserviceaccount.com") and "@" in email


def project_in_email(service_account: str) -> str | None:
    """`<name>@<project>.iam.gserviceaccount.com` names its project; Google-managed accounts do not."""
    match = USER_CREATED_SERVICE_ACCOUNT.match(service_account)
    return match.group(1) if match else None


class GoogleApiError(PicklableError):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status or 'no answer'}: {message}")
        self.status = status
        self.message = message

    @property
    def retriable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class Binding:
    role: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Ancestor:
    type: str  # project, folder or organization
    id: str


class GoogleRestClient:
    """GET/POST of JSON with retries; every failure becomes a GoogleApiError."""

    def __init__(self, http: httpx.AsyncClient, retry_deadline: timedelta = timedelta(seconds=10)) -> None:
        self._http = http
        self._retry_deadline = retry_deadline

    async def get(self, url: str) -> dict[str, Any]:
        return await self._request("GET", url, None)

    async def post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", url, body)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda error: isinstance(error, GoogleApiError) and error.retriable),
            stop=stop_after_delay(self._retry_deadline.total_seconds()),
            wait=wait_random_exponential(multiplier=0.1, max=2.0),
            before_sleep=lambda state: log.warning(
                "Google API %s %s failed, retrying: %s",
                method,
                url,
                state.outcome.exception() if state.outcome else None,
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await self._send_once(method, url, body)
        return result

    async def _send_once(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url, json=body)
        except (httpx.HTTPError, google.auth.exceptions.GoogleAuthError) as error:
            raise GoogleApiError(None, f"{method} {url}: {error!r}") from error
        if response.is_success:
            try:
                payload = response.json()
            except ValueError as error:
                raise GoogleApiError(response.status_code, f"{method} {url}: answer is not JSON") from error
            if not isinstance(payload, dict):
                raise GoogleApiError(response.status_code, f"{method} {url}: answer is not a JSON object")
            return payload
        raise GoogleApiError(response.status_code, f"{method} {url}: {_error_message(response)}")


def _error_message(response: httpx.Response) -> str:
    """Google's error envelope is `{"error": {"code": N, "message": "..."}}`; anything else is shown raw."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _segment(value: str) -> str:
    """A path segment taken from user input (a service account, a project), so `/` cannot escape it."""
    return quote(value, safe="@")


def _bindings(policy: dict[str, Any]) -> list[Binding]:
    return [
        Binding(role=str(binding.get("role", "")), members=tuple(str(m) for m in binding.get("members") or ()))
        for binding in policy.get("bindings") or ()
    ]


class GoogleCloudApis:
    """The IAM and Cloud Resource Manager v1 methods Styx uses (resource names as in the REST reference)."""

    def __init__(self, rest: GoogleRestClient, iam_base_url: str, crm_base_url: str) -> None:
        self._rest = rest
        self._iam = iam_base_url.rstrip("/")
        self._crm = crm_base_url.rstrip("/")

    async def service_account_project(self, email: str) -> str:
        """`projects.serviceAccounts.get`; raises GoogleApiError 404 for an unknown account."""
        account = await self._rest.get(f"{self._iam}/v1/projects/-/serviceAccounts/{_segment(email)}")
        project = account.get("projectId")
        if not isinstance(project, str) or not project:
            raise GoogleApiError(200, f"service account {email} has no projectId")
        return project

    async def service_account_iam_policy(self, email: str) -> list[Binding]:
        url = f"{self._iam}/v1/projects/-/serviceAccounts/{_segment(email)}:getIamPolicy"
        return _bindings(await self._rest.post(url, {}))

    async def project_iam_policy(self, project: str) -> list[Binding]:
        # Version 3 so that conditional bindings are returned rather than refused.
        url = f"{self._crm}/v1/projects/{_segment(project)}:getIamPolicy"
        return _bindings(await self._rest.post(url, {"options": {"requestedPolicyVersion": 3}}))

    async def project_ancestry(self, project: str) -> list[Ancestor]:
        """The project itself first, then its folders upward, then its organization."""
        answer = await self._rest.post(f"{self._crm}/v1/projects/{_segment(project)}:getAncestry", {})
        return [
            Ancestor(type=str(item["resourceId"]["type"]), id=str(item["resourceId"]["id"]))
            for item in answer.get("ancestor") or ()
        ]


class GoogleCredentialsAuth(httpx.Auth):
    """Adds an OAuth2 access token from google-auth credentials, refreshed off the event loop.

    Application default credentials are looked up on the first request, not at start-up, so a service that
    never needs a Google API (e.g. only a domain whitelist) starts without any.
    """

    def __init__(self, scopes: Sequence[str], subject: str | None = None) -> None:
        self._scopes = list(scopes)
        self._subject = subject
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        credentials = await self._valid_credentials()
        credentials.apply(request.headers)
        yield request

    async def _valid_credentials(self) -> Credentials:
        async with self._lock:
            if self._credentials is None:
                self._credentials = await asyncio.to_thread(self._default_credentials)
            if not self._credentials.valid:
                await asyncio.to_thread(self._credentials.refresh, google.auth.transport.requests.Request())
            return self._credentials

    def _default_credentials(self) -> Credentials:
        credentials, _ = google.auth.default(scopes=self._scopes)
        # Workspace group lookups act as a Workspace user (domain-wide delegation), which only
        # service-account key credentials can do.
        if self._subject is not None and hasattr(credentials, "with_subject"):
            credentials = credentials.with_subject(self._subject)
        return credentials


def credentialed_client(scopes: Sequence[str], timeout: timedelta, subject: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(auth=GoogleCredentialsAuth(scopes, subject), timeout=timeout.total_seconds())
