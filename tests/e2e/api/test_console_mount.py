"""The web console is served at ``/`` beside the API, from the bundle inside the package: the
API's own answers do not change (an unknown /api route is still a JSON 404, a wrong method
405), console paths get index.html, hashed assets are cached for good, and the OAuth callback
page leads the browser back to the console."""

from __future__ import annotations

import re
from importlib import resources

from api_harness import Served
from test_errors import raw

from billbridge.api.webconsole import bundle


def test_the_bundle_is_inside_the_package() -> None:
    root = bundle()
    assert root is not None
    page = root.joinpath("index.html").read_text(encoding="utf-8")
    scripts = re.findall(r'src="/assets/([^"]+\.js)"', page)
    styles = re.findall(r'href="/assets/([^"]+\.css)"', page)
    assert len(scripts) == 1 and len(styles) == 1
    for name in scripts + styles:
        assert resources.files("billbridge.api").joinpath("console", "assets", name).is_file()


def test_console_paths_get_the_page_and_assets_are_immutable(sqlite_served: Served) -> None:
    api = sqlite_served.api
    for path in ("/", "/integrations", "/integrations/abc", "/credentials?connected=x"):
        response = api.http.get(api.url + path)  # no key: the page itself holds nothing
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert '<div id="root"></div>' in response.text
    script = re.search(r'src="(/assets/[^"]+\.js)"', api.http.get(api.url + "/").text)
    assert script is not None
    asset = api.http.get(api.url + script.group(1))
    assert asset.status_code == 200
    assert "javascript" in asset.headers["content-type"]
    assert "immutable" in asset.headers["cache-control"]
    assert api.http.head(api.url + "/runs").status_code == 200


def test_the_api_answers_as_before_around_the_console(sqlite_served: Served) -> None:
    api = sqlite_served.api
    for path in ("/api/nothing-here", "/api", "/assets/nothing.js", "/favicon.ico", "/a/../x.js"):
        response = raw(api, "GET", path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    response = raw(api, "POST", "/integrations")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = raw(api, "PATCH", "/api/integrations")
    assert response.status_code == 405
    # Keys are still needed for the API itself.
    assert api.http.get(api.url + "/api/integrations").status_code == 401


def test_the_oauth_callback_page_leads_back_to_the_console(sqlite_served: Served) -> None:
    api = sqlite_served.api
    page = api.http.get(
        api.url + "/api/oauth/callback?state=forged&code=abc", headers={"Accept": "text/html"}
    )
    assert page.status_code == 400
    assert "<a href='/credentials'>Back to billbridge</a>" in page.text
    assert "http-equiv='refresh'" not in page.text  # an error stays on screen to be read
