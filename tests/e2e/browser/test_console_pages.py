"""The console on the demo's data (``billbridge demo --serve``), a third party's plugin panel,
keyboard use of the wizard, and the sign-in page.

* the demo leaves the console running on its three integrations, mappings, runs and events:
  every page shows them (the README's screenshots come from here);
* a new plugin's panel appears without any console change: the webhook example, installed
  beside billbridge, gets its form with its secret as a password field;
* the credential wizard works from the keyboard alone, and focus follows its steps;
* axe-core finds no serious violation on any page.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_harness import Console, Shots, assert_accessible, start_console

from support import ROOT

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect


def test_the_demo_leaves_the_console_on_its_data(tmp_path: Path, page: Any, shots: Shots) -> None:
    console = start_console(tmp_path / "home")
    try:
        page.goto(console.login_url)
        rows = page.get_by_role("row")
        expect(rows.filter(has_text="QuickBooks (all accounts)")).to_contain_text("QuickBooks US")
        expect(rows.filter(has_text="Xero UK")).to_contain_text('customFields.country == "UK"')
        expect(rows.filter(has_text="Xero US")).to_contain_text("Enabled")
        shots(page, "integrations", full=False)
        assert_accessible(page, "integrations")

        # A saved integration loads back into its panels, pickers named from QuickBooks' list.
        page.get_by_role("link", name="QuickBooks (all accounts)", exact=True).click()
        expect(page.get_by_label("Name")).to_have_value("QuickBooks (all accounts)")
        expect(page.get_by_role("combobox", name="Credit memo item")).to_have_value(
            re.compile(r"^Credits and Adjustments \(\d+\)$")
        )
        expect(page.get_by_role("checkbox", name="Commitment consumed")).to_be_checked()
        shots(page, "integration-panel")
        page.get_by_role("combobox", name="Debit memo item").click()
        page.get_by_role("combobox", name="Debit memo item").fill("S")
        expect(page.get_by_role("listbox").get_by_role("option").first).to_be_visible()
        shots(page, "integration-picker", full=False)
        assert_accessible(page, "integration panel with the picker open")
        page.keyboard.press("Escape")

        page.get_by_role("link", name="Credentials").click()
        expect(page.get_by_role("cell", name="Xero US", exact=True)).to_be_visible()
        shots(page, "credentials", full=False)

        page.get_by_role("link", name="Events").click()
        expect(page.locator(".event")).to_have_count(2)  # Initech has no mapping anywhere
        shots(page, "events", full=False)
        assert_accessible(page, "events")

        page.get_by_role("link", name="Runs").click()
        expect(page.get_by_role("row").filter(has_text="COMPLETE").first).to_be_visible()
        shots(page, "runs", full=False)

        page.get_by_role("link", name="Mappings").click()
        page.get_by_label("Integration").select_option(label="QuickBooks (all accounts)")
        page.get_by_role("tab", name="Products").click()
        expect(page.get_by_role("cell", name=re.compile("^API Calls"))).to_be_visible()
        shots(page, "mappings", full=False)
        assert_accessible(page, "mappings")
    finally:
        console.stop()


def test_a_new_plugins_panel_appears_without_console_changes(
    tmp_path: Path, page: Any, shots: Shots
) -> None:
    # The webhook example, installed beside billbridge (its entry point is all it takes).
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT / "examples" / "billbridge-webhook")],
        check=True, capture_output=True,
    )  # fmt: skip
    script = Path(sys.executable).with_name("billbridge")
    home = tmp_path / "home"
    console = start_console(
        home,
        command=[str(script), "serve", "--console-key"],
        env={"PYTHONPATH": str(target)},
    )
    try:
        page.goto(console.login_url)
        page.get_by_role("link", name="New integration").click()
        page.get_by_label("Signed webhook", exact=True).check()
        expect(page.get_by_role("heading", name="Signed webhook")).to_be_visible()
        expect(page.get_by_label("Receiver URL")).to_be_visible()
        secret = page.get_by_label("Signing secret")
        expect(secret).to_have_attribute("type", "password")
        shots(page, "webhook-panel")
        assert_accessible(page, "the webhook plugin's panel")
        # Saved with a secret, it reads back as the sentinel and is never shown.
        page.get_by_label("Name").fill("Webhook")
        page.get_by_label("Receiver URL").fill("https://example.com/hook")
        secret.fill("a-signing-secret-of-some-length")
        page.get_by_role("button", name="Create integration").click()
        expect(page.get_by_text("Saved.", exact=True)).to_be_visible()
        expect(page.get_by_label("Signing secret")).to_have_value("********")
        assert "a-signing-secret-of-some-length" not in page.content()
    finally:
        console.stop()


def test_the_wizard_works_from_the_keyboard(
    empty_console: Console, page: Any, shots: Shots
) -> None:
    page.goto(empty_console.url + "/")
    # Signing in: the key field is labelled; the page passes axe.
    expect(page.get_by_label("API key")).to_be_visible()
    assert_accessible(page, "sign-in")
    key = empty_console.login_url.split("#key=", 1)[1]
    page.get_by_label("API key").fill(key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()

    page.get_by_role("link", name="Credentials").click()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    page.get_by_role("button", name="Add credential").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Step 1 of 4: Name")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Credential name")).to_be_focused()
    page.keyboard.type("Keyboard Xero")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Step 2 of 4: Entity type")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Bill", exact=True)).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_label("Bill", exact=True)).to_be_checked()
    tab_to(page, "Next")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Step 3 of 4: Destination")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(page.get_by_label("QuickBooks Online", exact=True)).to_be_checked()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Xero", exact=True)).to_be_checked()
    tab_to(page, "Next")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Step 4 of 4: Authenticate")).to_be_focused()
    expect(page.get_by_text("Keyboard Xero")).to_be_visible()
    tab_to(page, "Back")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Xero", exact=True)).to_be_checked()  # nothing lost going back
    tab_to(page, "Next")
    page.keyboard.press("Enter")
    tab_to(page, "Go to Xero")
    shots(page, "wizard-keyboard")
    assert_accessible(page, "wizard, last step")
    page.keyboard.press("Enter")
    # The consent covered both organisations: choose one, from the keyboard too.
    expect(page.get_by_role("heading", name="Choose the organisation")).to_be_visible()
    page.get_by_label("Demo US Inc").focus()
    page.keyboard.press("Space")
    tab_to(page, "Use this organisation")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Keyboard Xero is connected to Demo US Inc.")).to_be_visible()


def tab_to(page: Any, name: str, most: int = 12) -> None:
    """Presses Tab until the button called ``name`` has the focus."""
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.textContent")
        if focused and focused.strip() == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_reconnect_needed_moves_the_integrations_to_a_new_consent(
    empty_console: Console, page: Any, shots: Shots
) -> None:
    key = empty_console.login_url.split("#key=", 1)[1]
    with httpx.Client(
        base_url=empty_console.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        created = api.post(
            "/api/credentials", json={"name": "QuickBooks US", "destination": "quickbooks"}
        )
        consent = httpx.get(created.json()["authorizationUrl"], follow_redirects=True, timeout=30)
        assert consent.status_code == 200, consent.text
        old = created.json()["credential"]["id"]
        integration = api.post(
            "/api/integrations", json={"name": "QuickBooks", "destination": "quickbooks"}
        ).json()
        api.put(f"/api/integrations/{integration['id']}/credential", json={"credentialId": old})
        # QuickBooks refused a refresh (as the engine records it when that happens).
        with closing(sqlite3.connect(empty_console.log.parent / "billbridge.db")) as db, db:
            db.execute("UPDATE credentials SET status = 'NEEDS_RECONNECT' WHERE id = ?", (old,))

        page.goto(empty_console.login_url)
        page.get_by_role("link", name="Credentials").click()
        row = page.get_by_role("row").filter(has_text="QuickBooks US")
        expect(row).to_contain_text("Reconnect needed")
        shots(page, "reconnect-needed", full=False)
        row.get_by_role("button", name="Reconnect").click()
        expect(
            page.get_by_text("Reconnected: 1 integration(s) now deliver through the new consent.")
        ).to_be_visible()
        expect(page.get_by_role("row").filter(has_text="QuickBooks US")).to_have_count(1)
        expect(page.get_by_role("row").filter(has_text="QuickBooks US")).to_contain_text(
            "Connected"
        )
        moved = api.get(f"/api/integrations/{integration['id']}").json()
        assert moved["credentialId"] not in (None, old)
        assert api.get(f"/api/credentials/{old}").status_code == 404
