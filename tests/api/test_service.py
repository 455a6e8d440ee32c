"""Starting the service: the authentication mode, clear startup errors, and the local service on real HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.security import AllowAll, NoAuthentication
from styx_actors.settings import Settings
from styx_server.auth_mode import choose_auth
from styx_server.service import BackgroundService
from styx_server.startup import ServiceError, ensure_port_free, open_service_store, runner_summary
from tests.api.conftest import API, api_settings, workflow_config
from tests.conftest import free_port, wait_for


def test_auth_is_off_on_loopback_by_default_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    choice = choose_auth(Settings(data_dir=tmp_path, host="127.0.0.1", port=8080, auth="auto"))
    assert not choice.enabled
    assert isinstance(choice.authenticator, NoAuthentication) and isinstance(choice.authorizer, AllowAll)
    assert "AUTHENTICATION OFF (STYX_AUTH=auto): anyone who can reach 127.0.0.1:8080" in caplog.text


def test_auth_is_on_off_loopback_by_default_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    choice = choose_auth(Settings(data_dir=tmp_path, host="0.0.0.0", auth="auto"))
    assert choice.enabled and not isinstance(choice.authenticator, NoAuthentication)
    assert "AUTHENTICATION ON" in caplog.text


def test_a_contradictory_auth_configuration_stops_the_start(tmp_path: Path) -> None:
    role = "roles/iam.serviceAccountUser"
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", auth="none", authorization_role=role)
    with pytest.raises(ServiceError, match="Service-account authorization needs authenticated callers"):
        choose_auth(settings)


async def test_a_bad_store_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"STYX_STORE is not a store URL: unsupported store URL scheme 'postgres'"):
        await open_service_store(Settings(data_dir=tmp_path, store="postgres://db/styx"))


async def test_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = Settings(data_dir=tmp_path, store=f"redis://:secret@127.0.0.1:{port}/0")
    with pytest.raises(ServiceError) as raised:
        await open_service_store(settings)
    message = str(raised.value)
    assert message.startswith(f"Cannot open the store at redis://127.0.0.1:{port}/0?prefix=styx: ")
    assert message.endswith("). Is redis-server running there?")
    assert "secret" not in message


async def test_the_default_store_is_created_under_the_data_dir(tmp_path: Path) -> None:
    store = await open_service_store(Settings(data_dir=tmp_path / "new" / "dir"))
    try:
        await store.ping()
    finally:
        await store.close()
    assert (tmp_path / "new" / "dir" / "styx.db").exists()


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"Cannot listen on 127.0.0.1:{port}: .*STYX_PORT"):
            ensure_port_free("127.0.0.1", port)


def test_the_service_exits_non_zero_with_the_reason_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "STYX_PORT": str(port), "STYX_HOST": "127.0.0.1", "STYX_DATA_DIR": str(tmp_path)}
        result = subprocess.run(
            [sys.executable, "-m", "styx_server.service"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"styx-actors: Cannot listen on 127.0.0.1:{port}" in result.stderr


def test_the_local_service_serves_real_http(tmp_path: Path) -> None:
    settings = api_settings(tmp_path, port=0, store=f"sqlite:///{tmp_path / 'styx.db'}")
    with BackgroundService(settings) as service:
        with httpx.Client(base_url=service.url) as client:
            assert client.get("/ping").text == "pong"
            assert client.get("/readyz").json() == {"status": "ready"}
            created = client.post(f"{API}/resources", json={"id": "r", "concurrency": 2})
            assert created.status_code == 200
            assert client.get(f"{API}/resources").json() == {"resources": [{"id": "r", "concurrency": 2}]}
            assert client.get("/openapi.json").json()["info"]["title"] == "styx-actors"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{service.url}/ping", timeout=2)


def test_the_local_service_reports_a_store_it_cannot_open(tmp_path: Path) -> None:
    settings = api_settings(tmp_path, port=0, store=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ServiceError, match="the local service failed to start: .*Cannot open the store"):
        BackgroundService(settings).start()


# Lines of Ray's own logger ("<time>\tWARNING authentication_token_setup.py:85 -- Token authentication is ...").
RAY_LOG_LINE = re.compile(r"\t(DEBUG|INFO|WARNING) \S+\.py:\d+ -- ", re.MULTILINE)


def start_styx_serve(data_dir: Path, *flags: str, **env: str) -> tuple[subprocess.Popen[str], str]:
    """`styx serve` on a local Ray; the process, once it answers, and its URL."""
    port = free_port()
    env = {
        **os.environ,
        "STYX_PORT": str(port),
        "STYX_HOST": "127.0.0.1",
        "STYX_DATA_DIR": str(data_dir),
        "STYX_SHARD_COUNT": "1",
        **env,
    }
    process = subprocess.Popen(
        ["styx", "serve", *flags], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        except httpx.TransportError:
            assert process.poll() is None, "the service exited"
            return False

    wait_for(ready, timeout=90, interval=0.2, message="the service to answer")
    return process, url


def stop_styx_serve(process: subprocess.Popen[str]) -> str:
    """SIGTERM, as a service manager stops it; everything it printed."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises SIGTERM, which Ray's handler turns into exit status 15.
    assert process.returncode in (0, signal.SIGTERM), output
    return output


def test_the_service_runs_the_api_over_the_actors_on_ray(tmp_path: Path) -> None:
    """The production path: `styx serve` on a local Ray, stopped by SIGTERM. What it prints is the service's
    own lines, ending with the ready line; Ray's banners and warnings are not shown."""
    process, url = start_styx_serve(tmp_path, STYX_RUNNER="noop")
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.post(f"{API}/workflows/c", json=workflow_config("w", schedule="days")).status_code == 200
            trigger = {"workflow_id": {"component_id": "c", "id": "w"}, "parameter": "2020-01-01"}
            assert client.post(f"{API}/scheduler/trigger", json=trigger).status_code == 200

            def succeeded() -> bool:
                events = client.get(f"{API}/status/events/c/w/2020-01-01").json()["events"]
                return any(entry["event"]["@type"] == "success" for entry in events)

            wait_for(succeeded, timeout=30, interval=0.1, message="the instance to succeed")
    finally:
        output = stop_styx_serve(process)
    assert "AUTHENTICATION OFF" in output and "Finished server process" in output
    store = f"sqlite:///{tmp_path.resolve()}/styx.db"
    ready = (
        f"styx-actors is ready. Dashboard: {url}/ | API: {url}/api/v3 | store: {store} | "
        "runner: noop (no containers: every execution succeeds at once) | actors: a local Ray | Ctrl-C stops it"
    )
    assert [line for line in output.splitlines() if line.endswith(ready)], output
    assert not RAY_LOG_LINE.search(output), output
    assert "Token authentication" not in output and "Started a local Ray" not in output


def test_serve_debug_shows_rays_own_lines_and_the_ready_line_says_the_docker_engine_answered(tmp_path: Path) -> None:
    process, url = start_styx_serve(tmp_path, "--debug", STYX_RUNNER="docker")
    output = stop_styx_serve(process)
    assert RAY_LOG_LINE.search(output), output  # what the line above keeps from users without --debug
    [ready] = [line for line in output.splitlines() if "styx-actors is ready." in line]
    assert re.search(r"\| runner: docker \(Docker Engine answered at \S+\) \| actors: a local Ray \|", ready), ready


async def test_the_ready_line_says_when_no_docker_engine_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = f"unix://{tmp_path / 'no-engine.sock'}"
    summary = await runner_summary(Settings(data_dir=tmp_path, runner="docker", docker_host=engine))
    assert summary == f"docker (NO Docker Engine answers at {engine})"
    assert f"Docker Engine not reachable at {engine}" in caplog.text
    assert "start one (bash scripts/setup-docker.sh) or point STYX_DOCKER_HOST at yours" in caplog.text
