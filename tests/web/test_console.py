"""The console page in Debian's headless chromium, over HTTPS."""

from __future__ import annotations

from mesh.errors import FailureCode
from mesh.web.auth import Denial
from web.browser import dump_dom, open_webdriver
from web.conftest import NAME, write_files

PEER = "console.contoso.test"
PROMPT = ("This appliance uses a locally generated self-signed certificate. "
          "Upload the CA-signed certificate, key and chain below.")


async def _submit(driver, files, *, chain: bool = True) -> None:
    """Fill the upload form with ``files`` (and the chain, unless not) and submit it."""
    await driver.send_keys("#upload-crt", str(files["crt"]))
    await driver.send_keys("#upload-key", str(files["key"]))
    if chain:
        await driver.send_keys("#upload-chain", str(files["chain"]))
    await driver.click("#upload-submit")


async def test_page_loads_over_https_and_shows_a_halted_link(console, appliance, tmp_path):
    appliance.halt(PEER, FailureCode.REVOKED)
    dom = await dump_dom(f"{console.url}/", profile=tmp_path / "profile",
                         cert=appliance.current.cert)
    assert f'<span id="appliance-name">{NAME}</span>' in dom
    assert f'data-link="{NAME} -&gt; {PEER}" data-state="halted"' in dom
    assert FailureCode.REVOKED.message in dom
    assert 'class="link link-halted"' in dom  # drawn red in the graph too


async def sign_in(driver, token: str) -> None:
    """What an admin does first: paste the token from the console's token file."""
    await driver.send_keys("#sign-in-token", token)
    await driver.click("#sign-in-submit")
    await driver.wait_for_text("#sign-in-state", "signed in")


async def test_the_upload_form_is_refused_before_signing_in_and_works_after(
    nursery, console, appliance, pki, tmp_path
):
    driver = await open_webdriver(nursery, profile=tmp_path / "profile",
                                  cert=appliance.current.cert)
    await driver.get(f"{console.url}/")
    await driver.wait_for_text("#appliance-name", NAME)
    assert await driver.text("#sign-in-state") == "signed out"
    files = write_files(tmp_path / "upload", pki.leaf, root=pki.root.cert)

    # Signed out: refused, nothing changes, the refusal is an event.
    await _submit(driver, files)
    assert await driver.wait_for_text("#upload-verdict", Denial.MISSING.message) == Denial.MISSING.message
    assert await driver.attribute("#upload-verdict", "data-code") == "unauthorized"
    assert appliance.current is pki.self_signed
    assert [(e.kind, e.method, e.path, e.reason) for e in console.recorded] == [
        ("api-denied", "POST", "/api/v1/certificate", "no-credential")]

    # A wrong token does not sign in.
    await driver.send_keys("#sign-in-token", "not-" + console.auth.token)
    await driver.click("#sign-in-submit")
    assert await driver.wait_for_text("#sign-in-state", Denial.WRONG_TOKEN.message) == \
        Denial.WRONG_TOKEN.message
    assert await driver.execute("return document.cookie") == ""

    # Signed in with the token file's token: the same form is accepted.
    await sign_in(driver, console.auth.token)
    await _submit(driver, files)
    await driver.wait_for_text("#upload-verdict", "Accepted: ")
    assert appliance.current.cert == pki.leaf.cert
    # The session cookie is HttpOnly: the page's script never sees it.
    assert await driver.execute("return document.cookie") == ""

    # Signed out again: refused again.
    await driver.click("#sign-out")
    await driver.wait_for_text("#sign-in-state", "signed out")
    await _submit(driver, files, chain=False)
    await driver.wait_for_text("#upload-verdict", Denial.MISSING.message)
    assert [e.reason for e in console.recorded] == ["no-credential", "wrong-token", "no-credential"]


async def test_page_updates_as_events_arrive_and_refuses_an_upload(
    nursery, console, appliance, pki, tmp_path
):
    driver = await open_webdriver(nursery, profile=tmp_path / "profile",
                                  cert=appliance.current.cert)
    await driver.get(f"{console.url}/")
    await driver.wait_for_text("#appliance-name", NAME)
    row = f'#links tr[data-link="{NAME} -> {PEER}"]'
    assert await driver.attribute(row, "data-state") == "up"

    # A revocation halts the link; the page picks it up from the event stream.
    appliance.halt(PEER, FailureCode.REVOKED)
    await driver.wait_for_text('#links tr[data-state="halted"] td.message',
                               FailureCode.REVOKED.message)
    await driver.wait_for_text("#graph .link-halted title", FailureCode.REVOKED.message)

    # An upload through the form with a certificate from a root nobody trusts.
    await sign_in(driver, console.auth.token)
    files = write_files(tmp_path / "upload", pki.stranger)
    await _submit(driver, files, chain=False)
    verdict = await driver.wait_for_text("#upload-verdict", FailureCode.CHAIN_UNTRUSTED.message)
    assert verdict == FailureCode.CHAIN_UNTRUSTED.message
    assert await driver.attribute("#upload-verdict", "data-code") == "chain_untrusted"
    assert appliance.current is pki.self_signed

    # The validation switch goes through the API.
    await driver.click("#validation-switch")
    await driver.wait_for_text("#validation-label", "off")
    assert appliance.validation is False


async def test_an_unvalidated_link_shows_the_message_beside_each_code(console, appliance, tmp_path):
    link = appliance.link_list[0]
    link.state, link.unvalidated_by = "up-unvalidated", (NAME,)
    link.would_fail = (FailureCode.EXPIRED, FailureCode.REVOKED)
    dom = await dump_dom(f"{console.url}/", profile=tmp_path / "profile",
                         cert=appliance.current.cert)
    assert ('<ul class="would-fail">'
            f'<li data-code="expired"><code>expired</code> {FailureCode.EXPIRED.message}</li>'
            f'<li data-code="revoked"><code>revoked</code> {FailureCode.REVOKED.message}</li>'
            '</ul>') in dom


async def test_a_self_signed_appliance_prompts_for_an_upload_until_dismissed(
    nursery, console, appliance, pki, tmp_path
):
    driver = await open_webdriver(nursery, profile=tmp_path / "profile",
                                  cert=appliance.current.cert)
    await driver.get(f"{console.url}/")
    await driver.wait_for_text("#appliance-name", NAME)
    assert await driver.displayed("#self-signed-prompt")
    assert await driver.text("#self-signed-prompt-text") == PROMPT
    # The form is opened for it: first on the page, its certificate field focused.
    assert await driver.execute("return document.activeElement.id") == "upload-crt"
    assert await driver.execute(
        "return document.querySelector('main').classList.contains('upload-first')") is True
    # The prompt says it; the warnings do not repeat it meanwhile.
    assert await driver.text("#warnings") == ""

    await driver.click("#self-signed-dismiss")
    warning = (f"self-signed-certificate: The certificate "
               f"{pki.self_signed.cert.subject.rfc4514_string()} is self-signed; "
               "upload a CA-signed certificate, key and chain.")
    assert await driver.wait_for_text("#warnings", warning) == warning
    assert not await driver.displayed("#self-signed-prompt")

    # Dismissed for the session: a reload shows the warning, not the prompt.
    await driver.get(f"{console.url}/")
    await driver.wait_for_text("#warnings", warning)
    assert not await driver.displayed("#self-signed-prompt")
    assert await driver.execute("return document.activeElement.id") != "upload-crt"


async def test_a_ca_signed_appliance_does_not_prompt(console, appliance, pki, tmp_path):
    appliance.current = pki.leaf
    dom = await dump_dom(f"{console.url}/", profile=tmp_path / "profile", cert=pki.leaf.cert)
    assert f'<span id="appliance-name">{NAME}</span>' in dom
    assert '<div id="self-signed-prompt" class="prompt" role="alert" hidden="">' in dom
    assert "<main>" in dom  # not the upload-first layout
    assert "self-signed-certificate" not in dom


# -- the admin password, and a cross-site form post --

ADMIN_PASSWORD = "page admin password"


async def test_the_admin_password_signs_the_page_in_and_its_changes_carry_the_csrf_token(
    nursery, appliance, pki, tmp_path
):
    from mesh.password_hash import hash_password
    from web.conftest import serve

    console = await serve(nursery, appliance, tmp_path / "pw.api-token",
                          admin_password=hash_password(ADMIN_PASSWORD, n=2**10))
    driver = await open_webdriver(nursery, profile=tmp_path / "profile",
                                  cert=appliance.current.cert)
    await driver.get(f"{console.url}/")
    await driver.wait_for_text("#appliance-name", NAME)

    await driver.send_keys("#sign-in-password", "wrong " + ADMIN_PASSWORD)
    await driver.click("#sign-in-submit")
    await driver.wait_for_text("#sign-in-state", Denial.WRONG_PASSWORD.message)
    assert await driver.attribute("#sign-in-state", "data-code") == "forbidden"

    await driver.send_keys("#sign-in-password", ADMIN_PASSWORD)
    await driver.click("#sign-in-submit")
    await driver.wait_for_text("#sign-in-state", "signed in")
    assert await driver.execute("return document.getElementById('sign-in-password').value") == ""
    await driver.click("#validation-switch")
    await driver.wait_for_text("#validation-label", "off")
    assert appliance.validation is False

    # After a reload the page asks for its session's CSRF token again.
    await driver.get(f"{console.url}/")
    await driver.wait_for_text("#sign-in-state", "signed in")
    files = write_files(tmp_path / "upload", pki.leaf, root=pki.root.cert)
    await _submit(driver, files)
    await driver.wait_for_text("#upload-verdict", "Accepted: ")
    assert appliance.current.cert == pki.leaf.cert
    assert [e.reason for e in console.recorded] == ["wrong-password"]
    assert ADMIN_PASSWORD not in repr(console.recorded)


async def _serve_page(nursery, identity, html: str) -> int:
    """Another origin on this host (another port: same-site, so a Strict cookie
    rides along), serving ``html`` over TLS with ``identity``; returns its port."""
    from functools import partial

    import trio

    from mesh.web.tls import build_context

    body = html.encode()
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body

    async def one(stream) -> None:
        try:
            seen = b""
            while b"\r\n\r\n" not in seen:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                seen += chunk
            await stream.send_all(answer)
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    listeners = await nursery.start(partial(
        trio.serve_ssl_over_tcp, one, 0, build_context(identity), host="127.0.0.1"))
    return listeners[0].transport_listener.socket.getsockname()[1]


async def _cross_site_upload(nursery, console, appliance, pki) -> int:
    """The port of a page that posts the upload form to ``console`` as soon as it loads,
    with a certificate, key and chain the appliance would accept."""
    from html import escape

    from web.conftest import key_pem, pem

    fields = {"crt": pem(pki.leaf.cert), "key": key_pem(pki.leaf),
              "chain": b"".join(pem(c) for c in pki.leaf.chain)}
    form = "".join(f'<textarea name="{name}">{escape(value.decode())}</textarea>'
                   for name, value in fields.items())
    return await _serve_page(nursery, appliance.current, (
        f'<form id="f" method="post" action="{console.url}/api/v1/certificate" '
        f'enctype="multipart/form-data">{form}</form>'
        '<script>document.getElementById("f").submit()</script>'))


async def test_a_cross_site_form_post_is_refused_and_changes_nothing(
    nursery, console, appliance, pki, tmp_path
):
    """A page of another origin auto-submits the upload form, with a certificate
    the appliance would accept, at a browser signed in to the console."""
    evil = await _cross_site_upload(nursery, console, appliance, pki)
    driver = await open_webdriver(nursery, profile=tmp_path / "profile",
                                  cert=appliance.current.cert)
    await driver.get(f"{console.url}/")
    await sign_in(driver, console.auth.token)

    await driver.get(f"https://127.0.0.1:{evil}/")
    await driver.wait_for_text("body", "forbidden_origin")
    assert await driver.execute("return location.href") == f"{console.url}/api/v1/certificate"
    assert await driver.execute(
        "return performance.getEntriesByType('navigation')[0].responseStatus") == 403
    assert '"code":"forbidden_origin"' in await driver.execute("return document.body.innerText")
    assert appliance.current is pki.self_signed

    # The same certificate through the console's own page is accepted: the
    # refusal was the cross-site post's, not the certificate's.
    await driver.get(f"{console.url}/")
    await driver.wait_for_text("#sign-in-state", "signed in")
    files = write_files(tmp_path / "upload", pki.leaf, root=pki.root.cert)
    await _submit(driver, files)
    await driver.wait_for_text("#upload-verdict", "Accepted: ")


async def test_behind_the_origin_check_fetch_metadata_and_then_the_csrf_token_refuse_it(
    nursery, console, appliance, pki, tmp_path, monkeypatch
):
    """Each layer alone stops the post: the browser does send the session cookie
    (another port of this host is the same site), so the layers are what stand."""
    import mesh.web.api
    import mesh.web.auth

    async def no_origin_check(request, backend):
        return None

    evil = await _cross_site_upload(nursery, console, appliance, pki)
    driver = await open_webdriver(nursery, profile=tmp_path / "profile",
                                  cert=appliance.current.cert)
    await driver.get(f"{console.url}/")
    await sign_in(driver, console.auth.token)

    monkeypatch.setattr(mesh.web.api, "_foreign_origin", no_origin_check)
    await driver.get(f"https://127.0.0.1:{evil}/")
    await driver.wait_for_text("body", '"code":"forbidden_cross_site"')

    monkeypatch.setattr(mesh.web.auth, "_cross_site", lambda site: False)
    await driver.get(f"https://127.0.0.1:{evil}/")
    await driver.wait_for_text("body", '"code":"forbidden_csrf"')
    assert appliance.current is pki.self_signed
    assert [e.reason for e in console.recorded] == ["cross-site", "no-csrf-token"]
