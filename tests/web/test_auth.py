"""Nothing changes an appliance without its console's credential, on loopback too."""

from __future__ import annotations

import stat

import httpx
import pytest
from starlette.routing import Route

from mesh.events import ApiDenied, EVENT_KINDS
from mesh.web.api import build_app
from mesh.web.auth import ConsoleAuth, Denial, is_loopback, new_token_file
from web.conftest import key_pem, pem, serve

#: Every request that changes state, with a body the route would accept.
CHANGES = [
    ("PUT", "/api/v1/validation", {"json": {"enabled": False}}),
    ("POST", "/api/v1/crls/refresh", {}),
    ("POST", "/api/v1/certificate", {"files": {"crt": ("a.crt", b"x"), "key": ("a.key", b"y")}}),
]
IDS = [path for _, path, _ in CHANGES]


def _client(console, **kwargs) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=console.url, verify=False, timeout=10, **kwargs)


def _unchanged(appliance, pki) -> bool:
    return (appliance.validation is True and appliance.current is pki.self_signed
            and "crls-refreshed" not in [e.kind for e in appliance.log])


def test_every_route_that_changes_state_is_listed_here(appliance, tmp_path):
    """A new POST/PUT/DELETE route must be added to CHANGES (and so be tested)."""
    auth = ConsoleAuth(token="t", token_file=tmp_path / "t")
    app = build_app(appliance, auth=auth)
    changing = {(method, route.path) for route in app.routes if isinstance(route, Route)
                for method in route.methods or () if method not in ("GET", "HEAD")}
    signing_in = {("POST", "/api/v1/session"), ("DELETE", "/api/v1/session")}
    assert changing - signing_in == {(method, path) for method, path, _ in CHANGES}


@pytest.mark.parametrize(("method", "path", "body"), CHANGES, ids=IDS)
async def test_no_credential_is_401_and_changes_nothing(console, appliance, pki, method, path, body):
    async with _client(console) as client:
        answer = await client.request(method, path, **body)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json() == {"code": "unauthorized", "message": Denial.MISSING.message}
    assert _unchanged(appliance, pki)
    assert console.recorded == [ApiDenied(at=pki.now, appliance=appliance.name, method=method,
                                          path=path, reason="no-credential", source="127.0.0.1")]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "token"])
async def test_another_scheme_or_an_empty_token_is_401(console, appliance, pki, header):
    async with _client(console, headers={"Authorization": header}) as client:
        answer = await client.post("/api/v1/crls/refresh")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"
    assert _unchanged(appliance, pki)


@pytest.mark.parametrize(("method", "path", "body"), CHANGES, ids=IDS)
async def test_a_wrong_token_is_403_and_changes_nothing(console, appliance, pki, method, path, body):
    wrong = {"Authorization": f"Bearer {console.auth.token}x"}
    async with _client(console, headers=wrong) as client:
        answer = await client.request(method, path, **body)
    assert answer.status_code == 403
    assert "www-authenticate" not in answer.headers
    assert answer.json() == {"code": "forbidden", "message": Denial.WRONG_TOKEN.message}
    assert _unchanged(appliance, pki)
    [denied] = console.recorded
    assert (denied.kind, denied.method, denied.path, denied.reason) == (
        "api-denied", method, path, "wrong-token")


async def test_another_consoles_token_is_403(nursery, console, appliance, pki, tmp_path):
    other = await serve(nursery, appliance, tmp_path / "other.api-token")
    assert other.auth.token != console.auth.token
    async with _client(console, headers=other.headers) as client:
        answer = await client.put("/api/v1/validation", json={"enabled": False})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert appliance.validation is True
    async with _client(other, headers=other.headers) as client:
        assert (await client.put("/api/v1/validation", json={"enabled": False})).status_code == 200
    assert appliance.validation is False


async def test_the_right_token_changes_it(console, appliance):
    async with _client(console, headers=console.headers) as client:
        answer = await client.put("/api/v1/validation", json={"enabled": False})
    assert answer.status_code == 200 and answer.json() == {"enabled": False}
    assert appliance.validation is False and console.recorded == []


async def test_reads_stay_open_on_loopback(console):
    async with _client(console) as client:
        for path in ("/api/v1/status", "/api/v1/events", "/graph.svg", "/", "/console.js"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/api/v1/session")).json() == {
            "signed_in": False, "reads_open": True}
    assert console.recorded == []


async def test_off_loopback_reads_need_the_credential_too(nursery, appliance, tmp_path):
    console = await serve(nursery, appliance, tmp_path / "wide.api-token", host="0.0.0.0")
    url = f"https://127.0.0.1:{console.port}"
    async with httpx.AsyncClient(base_url=url, verify=False, timeout=10) as client:
        for path in ("/api/v1/status", "/api/v1/events", "/graph.svg"):
            answer = await client.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["code"] == "unauthorized"
        # The page and its script stay open: that is where a person signs in.
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/api/v1/session")).json()["reads_open"] is False
        assert (await client.get("/api/v1/status", headers=console.headers)).status_code == 200
    assert [e.path for e in console.recorded] == ["/api/v1/status", "/api/v1/events", "/graph.svg"]


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "sensor-1.contoso.test"))


# -- the page's session --


async def _signed_in(client: httpx.AsyncClient, console) -> httpx.Response:
    answer = await client.post("/api/v1/session", json={"token": console.auth.token})
    assert answer.status_code == 200 and answer.json()["signed_in"] is True
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return answer


async def test_signing_in_sets_a_strict_secure_httponly_session_cookie(console, appliance):
    async with _client(console) as client:
        answer = await _signed_in(client, console)
        cookie = answer.headers["set-cookie"]
        name, _, rest = cookie.partition("=")
        assert name == f"mesh-session-{console.port}"
        value = rest.partition(";")[0]
        assert console.auth.token not in cookie and len(value) >= 43
        assert {part.strip().lower() for part in cookie.split(";")[1:]} >= {
            "httponly", "secure", "samesite=strict", "path=/"}
        assert (await client.get("/api/v1/session")).json()["signed_in"] is True
        changed = await client.put("/api/v1/validation", json={"enabled": False})
        assert changed.status_code == 200
    assert appliance.validation is False


async def test_a_forged_session_cookie_is_401(console, appliance, pki):
    forged = {f"mesh-session-{console.port}": "made-up-session-id"}
    async with _client(console, cookies=forged) as client:
        answer = await client.put("/api/v1/validation", json={"enabled": False})
    assert answer.status_code == 401
    assert answer.json() == {"code": "unauthorized", "message": Denial.UNKNOWN_SESSION.message}
    assert _unchanged(appliance, pki)
    assert [e.reason for e in console.recorded] == ["unknown-session"]


async def test_a_cross_site_form_post_with_a_valid_cookie_is_refused_by_the_origin_check(
    console, appliance, pki
):
    async with _client(console) as client:
        await _signed_in(client, console)
        answer = await client.post("/api/v1/crls/refresh", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden_origin"
    assert _unchanged(appliance, pki)


async def test_signing_in_from_another_origin_is_refused(console):
    async with _client(console) as client:
        answer = await client.post("/api/v1/session", json={"token": console.auth.token},
                                   headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden_origin"
    assert "set-cookie" not in answer.headers


async def test_a_wrong_token_does_not_sign_in(console):
    async with _client(console) as client:
        answer = await client.post("/api/v1/session", json={"token": "guess"})
        assert answer.status_code == 403
        assert answer.json() == {"code": "forbidden", "message": Denial.WRONG_TOKEN.message}
        assert "set-cookie" not in answer.headers
        assert (await client.post("/api/v1/session", json={})).status_code == 400
    assert [(e.method, e.path, e.reason) for e in console.recorded] == [
        ("POST", "/api/v1/session", "wrong-token")]


async def test_signing_out_ends_the_session_for_good(console, appliance, pki):
    async with _client(console) as client:
        await _signed_in(client, console)
        name = f"mesh-session-{console.port}"
        session = client.cookies[name]
        answer = await client.delete("/api/v1/session")
        assert answer.status_code == 200 and answer.json() == {"signed_in": False}
        assert 'max-age=0' in answer.headers["set-cookie"].lower()
    # The old cookie, replayed, is an unknown session.
    async with _client(console, cookies={name: session}) as client:
        answer = await client.post("/api/v1/crls/refresh")
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert _unchanged(appliance, pki)


async def test_an_upload_with_the_token_is_judged(console, appliance, pki):
    async with _client(console, headers=console.headers) as client:
        answer = await client.post("/api/v1/certificate", files={
            "crt": ("a.crt", pem(pki.leaf.cert)), "key": ("a.key", key_pem(pki.leaf)),
            "chain": ("c.pem", b"".join(pem(c) for c in pki.leaf.chain))})
    assert answer.status_code == 200 and answer.json()["accepted"] is True


# -- the token file and the event --


def test_the_token_file_is_private_and_new_each_time(tmp_path):
    path = tmp_path / "node.api-token"
    first = new_token_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first + "\n" and len(first) >= 43
    assert new_token_file(path) != first


def test_the_denied_event_names_no_credential(epoch):
    event = ApiDenied(at=epoch, appliance="s", method="POST", path="/api/v1/crls/refresh",
                      reason="wrong-token")
    assert EVENT_KINDS["api-denied"] is ApiDenied
    assert event.as_dict() == {
        "kind": "api-denied", "severity": "warning", "at": "2027-01-15T09:00:00Z",
        "appliance": "s", "method": "POST", "path": "/api/v1/crls/refresh",
        "reason": "wrong-token", "source": "", "coalesced": 0}
    assert event.log_line().endswith("s: POST /api/v1/crls/refresh refused (wrong-token)")


# -- the judge, without a server --


@pytest.mark.parametrize(("authorization", "session", "expected"), [
    (None, None, Denial.MISSING),
    ("Bearer right", None, None),
    ("bearer right", None, None),
    ("Bearer wrong", None, Denial.WRONG_TOKEN),
    ("Bearer right ", None, None),
    ("Basic right", None, Denial.MISSING),
    ("Bearer", None, Denial.MISSING),
    (None, "unknown", Denial.UNKNOWN_SESSION),
    ("Bearer wrong", "any", Denial.WRONG_TOKEN),  # a bearer token decides alone
])
def test_judge(tmp_path, authorization, session, expected):
    auth = ConsoleAuth(token="right", token_file=tmp_path / "t")
    assert auth.judge(authorization, session) is expected


def test_sessions_are_kept_by_digest_and_bounded(tmp_path):
    from mesh.web.auth import MAX_SESSIONS

    auth = ConsoleAuth(token="right", token_file=tmp_path / "t")
    first = auth.sign_in()
    assert auth.judge(None, first) is None and auth.signed_in(first)
    assert first not in repr(auth) and "right" not in repr(auth)
    for _ in range(MAX_SESSIONS):
        auth.sign_in()
    assert auth.judge(None, first) is Denial.UNKNOWN_SESSION  # the oldest was forgotten
    second = auth.sign_in()
    auth.sign_out(second)
    assert not auth.signed_in(second)


# -- the admin password --

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def with_password(nursery, appliance, tmp_path):
    from mesh.password_hash import hash_password

    return await serve(nursery, appliance, tmp_path / "pw.api-token",
                       admin_password=hash_password(PASSWORD, n=2**10))


async def test_the_admin_password_signs_in(with_password, appliance):
    async with _client(with_password) as client:
        answer = await client.post("/api/v1/session", json={"user": "admin", "password": PASSWORD})
        assert answer.status_code == 200 and answer.json()["signed_in"] is True
        csrf = answer.json()["csrf_token"]
        assert (await client.get("/api/v1/session")).json()["csrf_token"] == csrf
        changed = await client.put("/api/v1/validation", json={"enabled": False},
                                   headers={"X-CSRF-Token": csrf})
    assert changed.status_code == 200 and appliance.validation is False
    assert with_password.recorded == []


@pytest.mark.parametrize(("user", "password"), [
    ("admin", PASSWORD + "!"), ("root", PASSWORD), ("admin", PASSWORD.upper())])
async def test_a_wrong_user_or_password_is_403(with_password, appliance, pki, user, password):
    async with _client(with_password) as client:
        answer = await client.post("/api/v1/session", json={"user": user, "password": password})
    assert answer.status_code == 403
    assert answer.json() == {"code": "forbidden", "message": Denial.WRONG_PASSWORD.message}
    assert "set-cookie" not in answer.headers
    assert [(e.method, e.path, e.reason) for e in with_password.recorded] == [
        ("POST", "/api/v1/session", "wrong-password")]
    assert password not in repr(with_password.recorded)
    assert _unchanged(appliance, pki)


async def test_without_a_password_hash_only_the_token_signs_in(console):
    async with _client(console) as client:
        answer = await client.post("/api/v1/session", json={"user": "admin", "password": "x"})
    assert answer.status_code == 403
    assert answer.json() == {"code": "forbidden", "message": Denial.NO_PASSWORD.message}
    assert [e.reason for e in console.recorded] == ["no-admin-password"]


@pytest.mark.parametrize("body", [
    {"user": "admin"}, {"password": "x"}, {"user": "admin", "password": ""},
    {"token": "t", "password": "x"}, {"user": 1, "password": "x"}, ["admin", "x"]])
async def test_a_sign_in_with_neither_credential_is_400(with_password, body):
    async with _client(with_password) as client:
        answer = await client.post("/api/v1/session", json=body)
    assert answer.status_code == 400 and answer.json()["code"] == "bad_request"


# -- cross-site requests --


async def test_a_cookie_change_without_the_csrf_token_is_403(console, appliance, pki):
    """An old browser that sends no Origin still cannot be made to post: no header, no change."""
    async with _client(console) as client:
        await _signed_in(client, console)
        csrf = client.headers.pop("X-CSRF-Token")
        for headers in ({}, {"X-CSRF-Token": csrf[::-1]}, {"X-CSRF-Token": ""}):
            answer = await client.post("/api/v1/crls/refresh", headers=headers)
            assert answer.status_code == 403
            assert answer.json() == {"code": "forbidden_csrf", "message": Denial.NO_CSRF_TOKEN.message}
    assert _unchanged(appliance, pki)
    assert [e.reason for e in console.recorded] == ["no-csrf-token"] * 3


async def test_one_sessions_csrf_token_does_not_serve_another(console, appliance, pki):
    async with _client(console) as first, _client(console) as second:
        await _signed_in(first, console)
        await _signed_in(second, console)
        assert first.headers["X-CSRF-Token"] != second.headers["X-CSRF-Token"]
        answer = await second.post("/api/v1/crls/refresh",
                                   headers={"X-CSRF-Token": first.headers["X-CSRF-Token"]})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden_csrf"
    assert _unchanged(appliance, pki)


@pytest.mark.parametrize("site", ["cross-site", "same-site", "Cross-Site"])
async def test_a_browser_saying_another_site_sent_it_is_refused_whatever_it_carries(
    console, appliance, pki, site
):
    async with _client(console, headers=console.headers) as client:
        answer = await client.post("/api/v1/crls/refresh", headers={"Sec-Fetch-Site": site})
        signing_in = await client.post("/api/v1/session", json={"token": console.auth.token},
                                       headers={"Sec-Fetch-Site": site})
    assert answer.status_code == 403
    assert answer.json() == {"code": "forbidden_cross_site", "message": Denial.CROSS_SITE.message}
    assert signing_in.status_code == 403 and "set-cookie" not in signing_in.headers
    assert _unchanged(appliance, pki)
    assert [e.reason for e in console.recorded] == ["cross-site", "cross-site"]


@pytest.mark.parametrize("site", ["same-origin", "none"])
async def test_the_consoles_own_page_passes_the_fetch_metadata_check(console, appliance, site):
    async with _client(console, headers=console.headers) as client:
        answer = await client.put("/api/v1/validation", json={"enabled": False},
                                  headers={"Sec-Fetch-Site": site})
    assert answer.status_code == 200 and appliance.validation is False


# -- a flood of refusals --


class _Clock:
    """An emulated monotonic clock for the rate limit: it moves when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_flood_of_bad_requests_is_one_event_a_second_with_a_count(
    nursery, appliance, pki, tmp_path
):
    from mesh.web.auth import DENIED_EVENT_INTERVAL

    clock = _Clock()
    console = await serve(nursery, appliance, tmp_path / "flood.api-token", monotonic=clock)
    async with _client(console) as client:
        for _ in range(50):
            assert (await client.post("/api/v1/crls/refresh")).status_code == 401
        # Another reason is news at once; the same one again is counted.
        assert (await client.post("/api/v1/crls/refresh",
                                  headers={"Authorization": "Bearer nope"})).status_code == 403
        clock.now += DENIED_EVENT_INTERVAL - 0.001
        assert (await client.post("/api/v1/crls/refresh")).status_code == 401
        clock.now += 0.001
        assert (await client.post("/api/v1/crls/refresh")).status_code == 401
    assert [(e.reason, e.coalesced, e.source) for e in console.recorded] == [
        ("no-credential", 0, "127.0.0.1"),
        ("wrong-token", 0, "127.0.0.1"),
        ("no-credential", 50, "127.0.0.1"),
    ]
    assert console.recorded[-1].describe().endswith(
        "from 127.0.0.1 refused (no-credential); 50 more refused since the last report")
    assert _unchanged(appliance, pki)


def test_each_source_has_its_own_allowance_and_the_book_is_bounded(tmp_path, epoch):
    from mesh.web.auth import MAX_SOURCES

    recorded: list = []
    clock = _Clock()
    auth = ConsoleAuth(token="t" * 20, token_file=tmp_path / "t", record=recorded.append,
                       monotonic=clock)
    event = ApiDenied(at=epoch, appliance="s", method="POST", path="/x", reason="no-credential")
    assert auth.deny(event, source="10.0.0.1") and auth.deny(event, source="10.0.0.2")
    assert not auth.deny(event, source="10.0.0.1")
    for n in range(MAX_SOURCES + 10):
        auth.deny(event, source=f"fd00::{n:x}")
    assert len(auth._quiet) == MAX_SOURCES
    assert len(recorded) == 2 + MAX_SOURCES + 10


# -- a token file given, not made --


def test_a_token_file_that_holds_a_token_is_used_as_it_is(tmp_path):
    from mesh.web.auth import console_token

    path = tmp_path / "mounted-token"
    path.write_text("provided-token-from-a-secret\n")
    path.chmod(0o400)
    assert console_token(path) == "provided-token-from-a-secret"
    assert path.read_text() == "provided-token-from-a-secret\n"  # not rewritten
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_a_missing_or_empty_token_file_gets_a_new_token(tmp_path):
    from mesh.web.auth import console_token

    made = console_token(tmp_path / "new")
    assert (tmp_path / "new").read_text() == made + "\n"
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o600
    empty = tmp_path / "empty"
    empty.touch(mode=0o600)
    assert len(console_token(empty)) >= 43 and empty.read_text().strip()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620])
def test_a_token_file_open_to_others_is_one_line_naming_it_and_the_fix(tmp_path, mode):
    from mesh.errors import InputError
    from mesh.web.auth import console_token

    path = tmp_path / "node.api-token"
    path.write_text("provided-token-from-a-secret\n")
    path.chmod(mode)
    with pytest.raises(InputError) as info:
        console_token(path)
    assert info.value.line() == (
        f"{path}: is open to group or others (mode {mode:04o}); "
        f"chmod 600 {path} (a Kubernetes Secret: defaultMode 0400)")
    assert "provided-token" not in info.value.line()


@pytest.mark.parametrize("content", [b"short\n", b"has a space in it somewhere\n", b"\xff" * 20])
def test_a_token_file_without_a_usable_token_is_one_line(tmp_path, content):
    from mesh.errors import InputError
    from mesh.web.auth import console_token

    path = tmp_path / "node.api-token"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(InputError) as info:
        console_token(path)
    assert info.value.where == str(path) and "does not hold a token" in info.value.problem
    assert "short" not in info.value.line() and "space" not in info.value.line()
