"""The seeds' whole flow in a browser, from an empty database to a delivered invoice and an
actioned event, against ``billbridge demo --serve --empty`` (the emulators' consent pages
approve at once and redirect back).

Credentials (wizard: name → entity type → destination → authenticate → back; a consent that
covered two Xero organisations → choose one; a QuickBooks one connected then deleted),
integrations (create from the three panels with the picker and the filter editor, a server
error on its field, loaded back, disable/enable), bills (files, explain, preview, submit),
events (map this account and replay), runs (delivered, attempts, filter), mappings (the table
with names, bulk import with an error on its line). Every page is screenshotted and checked
with axe-core.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from console_harness import Console, Shots, assert_accessible

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect

SAMPLES = Path(str(resources.files("billbridge").joinpath("demo_samples")))


def nav(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


def pick(page: Any, label: str, search: str, option: str) -> None:
    """Types into a picker and chooses an option from the destination's list."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(search)
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()


def test_the_seed_flow_from_an_empty_database_to_a_delivered_invoice(
    empty_console: Console, page: Any, shots: Shots
) -> None:
    page.goto(empty_console.login_url)
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    assert "#key=" not in page.url  # the key left the address bar
    expect(page.get_by_text("● live")).to_be_visible()  # the event stream, read with fetch
    expect(page.get_by_text("No integrations yet.")).to_be_visible()
    shots(page, "integrations-empty")
    assert_accessible(page, "integrations (empty)")

    # --- credentials: the wizard, the consent at "Xero", back, choose the organisation ---------
    nav(page, "Credentials")
    expect(page.get_by_text("No credentials yet.")).to_be_visible()
    page.get_by_role("button", name="Add credential").click()
    expect(page.get_by_role("heading", name="Step 1 of 4: Name")).to_be_focused()
    page.get_by_label("Credential name").fill("Xero UK")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Bill").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Xero", exact=True).check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Until you finish, it shows as “Xero UK (Incomplete)”")).to_be_visible()
    shots(page, "credential-wizard")
    assert_accessible(page, "credential wizard")
    page.get_by_role("button", name="Go to Xero").click()
    # The emulator approves both organisations and sends the browser back to choose one.
    expect(page.get_by_role("heading", name="Choose the organisation")).to_be_visible()
    expect(page.get_by_role("cell", name="Xero UK (Incomplete)")).to_be_visible()
    shots(page, "credential-choose-organisation")
    page.get_by_label("Demo UK Ltd").check()
    page.get_by_role("button", name="Use this organisation").click()
    expect(page.get_by_text("Xero UK is connected to Demo UK Ltd.")).to_be_visible()
    expect(page.get_by_role("cell", name="Xero UK", exact=True)).to_be_visible()
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_text(re.compile(r"^Xero UK: "))).to_be_visible()
    shots(page, "credentials")
    assert_accessible(page, "credentials")

    # QuickBooks connects one company at once; then it is deleted.
    page.get_by_role("button", name="Add credential").click()
    page.get_by_label("Credential name").fill("QuickBooks US")
    page.keyboard.press("Enter")
    page.get_by_label("Bill").check()
    page.keyboard.press("Enter")
    page.get_by_label("QuickBooks Online", exact=True).check()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Go to QuickBooks").click()
    expect(page.get_by_text("QuickBooks US is connected to")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete QuickBooks US").click()
    expect(page.get_by_role("cell", name="QuickBooks US")).to_have_count(0)

    # --- integrations: create from the panels ------------------------------------------------
    nav(page, "Integrations")
    page.get_by_role("link", name="New integration").click()
    page.get_by_label("Xero", exact=True).check()
    expect(page.get_by_role("heading", name="General")).to_be_visible()
    page.get_by_label("Connected credential").select_option(label="Xero UK — Demo UK Ltd")
    page.get_by_label("Name").fill("Xero UK")
    # The filter editor checks on the server as you type; saving anyway puts the server's
    # refusal on the field.
    page.get_by_label("Account filter").fill("customFields.country ==")
    expect(page.locator(".filter-check .error")).to_contain_text("line 1")
    page.get_by_label("Invoice status", exact=True).select_option(
        label="Awaiting payment (authorised)"
    )
    pick(page, "Default account code", "Sales", "Sales")
    expect(page.get_by_role("combobox", name="Default account code")).to_have_value("Sales (200)")
    page.get_by_role("button", name="Create integration").click()
    field_error = (
        page.locator("#config_accountFilter")
        .locator("xpath=ancestor::div[contains(@class,'form-group')][1]")
        .locator(".error-detail")
    )
    expect(field_error).to_contain_text("line 1")
    shots(page, "integration-server-error")
    page.get_by_label("Account filter").fill('customFields.country == "UK"')
    expect(page.get_by_text("✓ Valid expression")).to_be_visible()
    shots(page, "integration-new")
    assert_accessible(page, "new integration")
    page.get_by_role("button", name="Create integration").click()

    # Saved, and loaded back from its panels.
    expect(page.get_by_text("Saved.", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", level=1, name="Xero UK")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Xero UK")
    expect(page.get_by_label("Account filter")).to_have_value('customFields.country == "UK"')
    expect(page.get_by_label("Invoice status", exact=True)).to_have_value(re.compile("."))
    assert page.get_by_label("Invoice status", exact=True).evaluate(
        "e => e.options[e.selectedIndex].text"
    ) == ("Awaiting payment (authorised)")
    expect(page.get_by_role("combobox", name="Default account code")).to_have_value("Sales (200)")
    expect(page.get_by_text("Connected to Xero UK")).to_be_visible()
    shots(page, "integration-panel")
    assert_accessible(page, "integration panel")

    nav(page, "Integrations")
    row = page.get_by_role("row", name=re.compile("Xero UK"))
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("Xero UK")  # the connected credential
    row.get_by_role("button", name="Disable Xero UK").click()
    expect(row).to_contain_text("Disabled")
    row.get_by_role("button", name="Enable Xero UK").click()
    expect(row).to_contain_text("Enabled")
    shots(page, "integrations")
    assert_accessible(page, "integrations")

    # --- bills: explain, preview, submit ----------------------------------------------------
    nav(page, "Bills")
    page.get_by_label("Bill file").set_input_files(str(SAMPLES / "bill-acme-uk-2025-09.json"))
    page.get_by_label("Account file").set_input_files(str(SAMPLES / "account-acme-uk.json"))
    expect(page.get_by_label("Bill JSON")).to_have_value(re.compile("lineItems"))
    page.get_by_role("button", name="Explain routing").click()
    expect(
        page.get_by_role("heading", name=re.compile("1 integration\\(s\\) would take it"))
    ).to_be_visible()
    # No contact is mapped yet: the preview says so, in words.
    page.get_by_role("button", name="Preview payload").click()
    expect(page.get_by_role("alert")).to_contain_text("no Contact mapped for Account")
    shots(page, "bills-explain")
    assert_accessible(page, "bills")
    page.get_by_role("button", name="Submit bill").click()
    expect(page.get_by_text("1 run(s) queued, 0 skipped by routing.")).to_be_visible()

    # --- events: the unmapped account, mapped from Xero's contacts, replayed -----------------
    nav(page, "Events")
    event = page.locator(".event").filter(has_text="Account not mapped")
    expect(event).to_be_visible(timeout=30_000)
    shots(page, "events-open")
    assert_accessible(page, "events")
    pick(page, re.compile("Map account"), "Acme", "Acme Ltd")  # type: ignore[arg-type]
    event.get_by_role("button", name="Map and replay").click()
    expect(page.get_by_text("Nothing to act on.")).to_be_visible()
    expect(page.locator(".events.done")).to_contain_text("Account not mapped")

    # --- runs: the replay delivers ---------------------------------------------------------
    nav(page, "Runs")
    complete = page.get_by_role("row").filter(has_text="COMPLETE")
    expect(complete).to_have_count(1, timeout=30_000)
    expect(complete.locator("td").nth(4)).not_to_have_text("—")  # the invoice Xero made
    page.get_by_label("Status").select_option("ERROR")
    expect(page.get_by_role("row").filter(has_text="ERROR")).to_have_count(1)
    page.get_by_label("Status").select_option("")
    complete.get_by_role("button", name="Attempts").click()
    expect(page.locator(".attempts li")).to_have_count(1)
    expect(page.locator(".attempts li")).to_contain_text("Attempt 1")
    shots(page, "runs")
    assert_accessible(page, "runs")

    # --- bills again: now the preview is the exact request Xero would get ------------------
    nav(page, "Bills")
    page.get_by_label("Bill file").set_input_files(str(SAMPLES / "bill-acme-uk-2025-09.json"))
    page.get_by_label("Account file").set_input_files(str(SAMPLES / "account-acme-uk.json"))
    page.get_by_role("button", name="Explain routing").click()
    page.get_by_role("button", name="Preview payload").click()
    expect(page.get_by_label("Preview payload")).to_contain_text("ACCREC")
    shots(page, "bills-preview")

    # --- mappings: the table with the destination's names, bulk import ----------------------
    nav(page, "Mappings")
    page.get_by_label("Integration").select_option(label="Xero UK")
    expect(page.get_by_role("cell", name=re.compile("Acme Ltd"))).to_be_visible()
    # Another account, picked from Xero's contacts.
    page.get_by_label("m3ter account id", exact=True).fill("acc-globex")
    pick(page, "Contact", "Globex", "Globex Corporation")
    page.get_by_role("button", name="Add mapping").click()
    expect(page.get_by_role("row").filter(has_text="acc-globex")).to_contain_text(
        "Globex Corporation"
    )
    page.get_by_text("Bulk import").click()
    page.get_by_label(re.compile("One mapping a line")).fill("acc-globex,")
    page.get_by_role("button", name=re.compile("Import 1 mappings")).click()
    expect(page.locator(".bulk .notice.error")).to_contain_text("Line 1")
    shots(page, "mappings")
    assert_accessible(page, "mappings")
