"""The reference portal (portal/) in real Chromium, driven as staff use it, on the whole local stack:
open account A-1001 (the seed's contacts), authorize accounting with the code read off the fake phone,
verify, send a template and see it confirmed and at the phone, schedule one, see a marketing send
refused and explained, watch the person's "Agree" show without a reload, unsubscribe, answer in the
conversation, claim and resolve a queued reply. axe-core runs on every screen: no serious or critical
violation. A failing step saves a screenshot under target/portal-screenshots/.

Needs Debian's chromium and chromium-driver (`make browser`, which `make test` runs first) and the
function binaries (skipped without them, like the IAM journey).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO_ROOT
from stack import BUILT, Stack, daytime_zone, zone_where_it_is

from infra.local import template as tpl

pytestmark = BUILT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
SHOTS = REPO_ROOT / "target" / "portal-screenshots"
SEED = json.loads((REPO_ROOT / "infra" / "local" / "seed.json").read_text())
# The dealer's texting number: on Twilio (the pool's), or on End User Messaging (EUM_NUMBERS,
# provisioned for the dealer as the operator does).
NUMBERS = {"twilio": "+12025550101", "end-user-messaging": "+16465550101"}
ALEX = "+13125550142"  # C-3001 in the seed, (312) 555-0142
SAM = "+14155550144"  # C-3003 in the seed (deal D-2001 only), where it is 1 AM in this test


def browser(tmp_path: Path) -> Any:
    """Headless Debian Chromium through its chromedriver; no driver download, no network beyond 127.0.0.1."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are missing: run `make browser` (make test does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1400", "--lang=en-US",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    return driver


class Portal:
    """The page, with waits bounded in time, axe checks, and a screenshot when a step fails."""

    def __init__(self, driver: Any, stack: Stack, number: str) -> None:
        self.number = number
        self.driver, self.stack = driver, stack

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(SHOTS / f"failed-{name}.png"))
            print(f"portal: step {name!r} failed; screenshot {SHOTS / f'failed-{name}.png'}\n{self.stack.tail()}")
            raise

    def sign_out_and_in(self, user: str, password: str) -> None:
        """Sign out, then type `user` and `password` on the sign-in screen and press Sign in."""
        self.css("#sign-out").click()
        self.wait_text("#screen-title", "^Sign in$")
        self.css("#signin-user").send_keys(user)
        self.css("#signin-password").send_keys(password)
        self.button("Sign in", "#signin-form").click()

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def button(self, name: str, within: str = "body") -> Any:
        """The visible button whose accessible label or text is `name`."""
        def find() -> Any:
            for b in self.all(f"{within} button"):
                if b.is_displayed() and name in ((b.get_attribute("aria-label") or "") + " " + b.text):
                    return b
            return None
        return self.until(find, f"a button {name!r}")

    def until(self, check: Callable[[], Any], what: str, within: float = 20.0) -> Any:
        deadline = time.monotonic() + within
        while True:
            try:
                found = check()
            except Exception:  # noqa: BLE001 - a stale element while the page redraws
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {within:.0f} s for {what}")
            time.sleep(0.2)

    def text_of(self, selector: str) -> str:
        return str(self.css(selector).text)

    def wait_text(self, selector: str, pattern: str, within: float = 20.0) -> str:
        return self.until(lambda: (t := self.text_of(selector)) and re.search(pattern, t) and t,
                          f"{selector} to say {pattern!r}", within)

    def set_value(self, selector: str, value: str) -> None:
        """As if typed: the value, then input and change events (date and time inputs included)."""
        self.driver.execute_script(
            "const el = document.querySelector(arguments[0]); el.value = arguments[1];"
            "el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true}));",
            selector, value)

    def badge(self, contact: str, category: str) -> str:
        return self.text_of(f'tr[data-contact="{contact}"] td[data-category="{category}"] .badge')

    def axe(self, screen: str) -> None:
        """axe-core on the page as it is: no serious or critical violation."""
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations)).catch(e => done(String(e)));")
        assert isinstance(result, list), f"axe did not run on {screen}: {result}"
        bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
               for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on {screen}:\n" + "\n".join(bad)

    def announced(self, pattern: str) -> str:
        return self.wait_text("#announcer", pattern)

    def code_texted(self, seen: int) -> str:
        (*_, latest) = self.stack.texts(seen, within=30, phone=ALEX, sender=self.number)
        return re.search(r"\b(\d{6})\b", latest["body"]).group(1)  # type: ignore[union-attr]


def seed(stack: Stack, number: str) -> None:
    """The seed's dealer and contacts: the account's in a zone where it is afternoon (no quiet
    hours), Sam Patel (deal D-2001 only) where it is 1 AM (quiet hours hold his texts)."""
    settings = dict(SEED["dealer"]["settings"], textingNumber=number)
    stack.ok("PUT", "/v1/dealer", settings, 200)
    for contact in SEED["contacts"]:
        body = {k: v for k, v in contact.items() if k != "id"}
        zone = zone_where_it_is(1) if contact["id"] == "C-3003" else daytime_zone()
        stack.ok("PUT", f"/v1/contacts/{contact['id']}", dict(body, timeZone=zone), 201)


def provision_on_end_user_messaging(stack: Stack, number: str) -> None:
    """`make provision-numbers CARRIER=end-user-messaging` for the seed's dealer, on the stack's emulator."""
    resources = stack.resources
    env = {**os.environ, "AWS_ENDPOINT_URL": stack.emulator, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-m", "infra.provision", "--table", resources["TABLE_NAME"],
                           "--carrier", "end-user-messaging", "--account", "123456789012",
                           "--dealer", SEED["dealer"]["id"], "--two-way-topic-arn",
                           resources["EUM_REPLIES_TOPIC_ARN"], number],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture(params=sorted(NUMBERS))
def portal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Portal]:
    stack = Stack(tmp_path, tpl.TEMPLATE_PATH, dealer=SEED["dealer"]["id"])
    number = NUMBERS[request.param]
    driver = None
    try:
        if request.param == "end-user-messaging":
            provision_on_end_user_messaging(stack, number)
        seed(stack, number)
        driver = browser(tmp_path)
        yield Portal(driver, stack, number)
    finally:
        if driver is not None:
            driver.quit()
        stack.stop()


def test_staff_authorize_text_schedule_and_work_the_queue_in_the_browser(portal: Portal) -> None:
    p, stack = portal, portal.stack
    zone = ZoneInfo(daytime_zone())
    texts_seen = 0

    with p.step("open-account"):
        p.driver.get(f"{stack.portal}/#account=A-1001&token={stack.token}")
        p.wait_text("#screen-title", "Account A-1001")
        p.until(lambda: p.all('tr[data-contact="C-3002"]'), "the account's contacts")
        assert "token=" not in p.driver.current_url, "the token leaves the address bar"
        assert p.driver.execute_script("return sessionStorage.getItem('texting.portalToken')") == stack.token
        assert [r.get_attribute("data-contact") for r in p.all("tbody tr")] == ["C-3001", "C-3002"]
        assert p.badge("C-3001", "accounting") == "Not authorized"
        p.axe("the account's contacts")

    with p.step("authorize-and-verify"):
        opener = p.button("Add/Change Texting Authorization for Alex Rivera")
        opener.click()
        p.until(lambda: p.css("#auth-dialog").get_attribute("open") is not None, "the dialog")
        p.button("Authorize Accounting", "#auth-dialog").click()
        p.wait_text("#auth-accounting-status", "Waiting for approval")
        assert re.search(r"expires at \d{1,2}:\d{2}", p.text_of("#auth-dialog .category"))
        code = p.code_texted(texts_seen)
        texts_seen += 1
        p.axe("the authorization dialog")
        # Focus stays in the dialog: Tab past the last control comes back to the first.
        from selenium.webdriver.common.keys import Keys
        for _ in range(12):
            p.driver.switch_to.active_element.send_keys(Keys.TAB)
            assert p.driver.execute_script(
                "return document.getElementById('auth-dialog').contains(document.activeElement)"), "focus left the dialog"
        wrong = f"{(int(code) + 1) % 1000000:06d}"
        p.css("#auth-accounting-code").send_keys(wrong)
        p.button("Verify", "#auth-dialog").click()
        p.wait_text("#auth-accounting-message", r"4 tries left")
        p.announced("tries left")
        field = p.css("#auth-accounting-code")
        field.clear()
        field.send_keys(code)
        p.button("Verify", "#auth-dialog").click()
        p.wait_text("#auth-accounting-status", "^Authorized$")
        p.announced("Accounting authorized")
        p.css("#auth-dialog").send_keys(Keys.ESCAPE)
        p.until(lambda: p.css("#auth-dialog").get_attribute("open") is None, "the dialog to close")
        assert p.driver.switch_to.active_element.get_attribute("aria-label") == \
            "Add/Change Texting Authorization for Alex Rivera", "focus returns to the button that opened it"
        p.until(lambda: p.badge("C-3001", "accounting") == "Authorized", "the table to show accounting authorized")

    with p.step("send-a-template"):
        p.button("(312) 555-0142: send a text to Alex Rivera").click()
        p.until(lambda: len(p.all("#template optgroup option")) >= 6, "the templates")
        p.set_value("#template", "auto-pay-failure")
        assert p.css("#var-firstName").get_attribute("value") == "Alex"
        p.set_value("#var-amount", "412.50")
        p.set_value("#var-dueDate", "2026-12-15")
        p.set_value("#var-paymentUrl", "https://pay.example.com/a1")
        p.wait_text("#preview-body", r"\$412\.50")
        p.wait_text("#preview-meta", r"^\d+ segments? · \d+ characters · GSM-7 · Accounting$")
        p.css("#notes").send_keys("Called first; no answer.")
        p.axe("Send a Text")
        SHOTS.mkdir(parents=True, exist_ok=True)
        p.driver.save_screenshot(str(SHOTS / "send-a-text.png"))
        p.button("Complete").click()
        p.wait_text("#send-result", r"^(Sent|Delivered) to Alex Rivera, \(312\) 555-0142 at ", within=40)
        inbox = stack.texts(texts_seen, within=30, phone=ALEX, sender=p.number)
        texts_seen = len(inbox)
        assert "$412.50" in inbox[-1]["body"] and "Dec 15, 2026" in inbox[-1]["body"], inbox[-1]
        p.driver.save_screenshot(str(SHOTS / "sent.png"))

    with p.step("schedule"):
        later = datetime.now(zone) + timedelta(hours=2)
        p.css("#schedule").click()
        p.set_value("#schedule-date", later.strftime("%Y-%m-%d"))
        p.set_value("#schedule-time", later.strftime("%H:%M"))
        p.set_value("#var-paymentUrl", "https://pay.example.com/a2")
        p.button("Complete").click()
        p.wait_text("#send-result", r"^Scheduled for .+\(Alex Rivera's time\)")
        assert later.strftime("%-I:%M") in p.text_of("#send-result"), p.text_of("#send-result")
        p.css("#schedule").click()

    with p.step("marketing-refused"):
        p.set_value("#template", "marketing-offer")
        fill = {"url": "https://example.com/offer", "date": "2026-12-31", "time": "17:00"}
        for field in p.all("#template-fields input"):
            if not field.get_attribute("value"):
                p.set_value(f"#{field.get_attribute('id')}", fill.get(field.get_attribute("type"), "20% off"))
        p.wait_text("#preview-meta", "segment")
        p.button("Complete").click()
        refusal = p.wait_text("#send-result", "has not authorized marketing texts")
        assert "Add/Change Texting Authorization" in refusal and "Agree" in refusal, refusal
        assert "refused" in p.css("#send-result").get_attribute("class")
        assert len(stack.texts(texts_seen, within=2, phone=ALEX, sender=p.number)) == texts_seen

    with p.step("agree-updates-the-dialog"):
        p.driver.execute_script("window.stillTheSamePage = true")
        p.button("Add/Change Texting Authorization for Alex Rivera").click()
        p.button("Authorize Service", "#auth-dialog").click()
        p.wait_text("#auth-service-status", "Waiting for approval")
        p.code_texted(texts_seen)
        texts_seen += 1
        status, answer = stack.call("POST", "/reply", {"from": ALEX, "to": p.number, "body": "Agree"},
                                    base=stack.carrier)
        assert status == 200, answer
        p.wait_text("#auth-service-status", "^Authorized$", within=30)
        p.announced("replied Agree")
        assert p.driver.execute_script("return window.stillTheSamePage === true"), "no reload"

    with p.step("unsubscribe"):
        p.button("Unsubscribe from Accounting", "#auth-dialog").click()
        p.wait_text("#auth-accounting-status", "^Unsubscribed$")
        p.announced("Unsubscribed from accounting")
        p.button("Close", "#auth-dialog").click()
        p.until(lambda: p.badge("C-3001", "accounting") == "Unsubscribed", "the table to show the unsubscribe")
        assert p.badge("C-3001", "service") == "Authorized"

    with p.step("conversation"):
        status, answer = stack.call("POST", "/reply", {"from": ALEX, "to": p.number,
                                                       "body": "Can I move my due date to the 20th?"},
                                    base=stack.carrier)
        assert status == 200, answer
        p.button("Conversation with Alex Rivera").click()
        p.wait_text("ol.conversation", "Can I move my due date to the 20th", within=30)
        listed = p.text_of("ol.conversation")
        assert "$412.50" in listed and "needs an answer" in listed, listed
        assert not re.search(r"\b\d{6}\b", listed), "approval codes are masked"
        p.set_value("#answer-category", "service")
        p.css("#answer").send_keys("Yes, we will move it. The service desk will call you today.")
        p.axe("the conversation")
        p.button("Send answer").click()
        p.wait_text("#answer-result", "^Answer sent")
        p.wait_text("ol.conversation", "we will move it")

    with p.step("queues"):
        p.driver.get(f"{stack.portal}/#queues=replies")
        p.wait_text("#screen-title", "Texting queues")
        p.until(lambda: any("Can I move my due date" in r.text for r in p.all("#queue-items tbody tr")),
                "the reply in the Replies queue", within=30)
        assert re.search(r"Replies [1-9]\d* open", p.text_of(".queues"))
        p.axe("the texting queues")
        row = next(r for r in p.all("#queue-items tbody tr") if "Can I move my due date" in r.text)
        item = row.get_attribute("data-item")
        p.button("Claim", f'tr[data-item="{item}"]').click()
        p.wait_text(f'tr[data-item="{item}"] .state', "Claimed by staff-1")
        p.announced("Claimed")
        p.css(f"#note-{item}").send_keys("Moved the due date; answered by text.")
        p.button("Resolve", f'tr[data-item="{item}"]').click()
        p.wait_text(f'tr[data-item="{item}"] .state', "Resolved by staff-1")
        status, resolved = stack.call("GET", f"/v1/queues/replies/items/{item}")
        assert status == 200 and resolved["note"] == "Moved the due date; answered by text.", resolved

    with p.step("deal-held-by-quiet-hours"):
        p.set_value("#open-kind", "deal")
        p.css("#open-id").send_keys("D-2001")
        p.button("Open", "#open-form").click()
        p.wait_text("#screen-title", "Deal D-2001")
        p.until(lambda: [r.get_attribute("data-contact") for r in p.all("tbody tr")] == ["C-3001", "C-3003"],
                "the deal's contacts")
        p.axe("the deal's contacts")
        # Approval codes go at any hour: Sam authorizes accounting at 1 AM his time.
        p.button("Add/Change Texting Authorization for Sam Patel").click()
        p.button("Authorize Accounting", "#auth-dialog").click()
        p.wait_text("#auth-accounting-status", "Waiting for approval")
        (code_text,) = stack.texts(0, within=30, phone=SAM, sender=p.number)
        code = re.search(r"\b(\d{6})\b", code_text["body"]).group(1)  # type: ignore[union-attr]
        p.css("#auth-accounting-code").send_keys(code)
        p.button("Verify", "#auth-dialog").click()
        p.wait_text("#auth-accounting-status", "^Authorized$")
        p.button("Close", "#auth-dialog").click()
        # A text now is held by his quiet hours, and the confirmation says until when.
        p.button("(415) 555-0144: send a text to Sam Patel").click()
        p.until(lambda: len(p.all("#template optgroup option")) >= 6, "the templates")
        p.set_value("#template", "past-due-alert")
        for field in p.all("#template-fields input"):
            if not field.get_attribute("value"):
                kind = field.get_attribute("type")
                p.set_value(f"#{field.get_attribute('id')}", {"date": "2026-12-20", "url": "https://pay.example.com/s"}
                            .get(kind, "150.00" if "amount" in field.get_attribute("id").lower() else "Sam"))
        p.wait_text("#preview-meta", "segment")
        p.button("Complete").click()
        held = p.wait_text("#send-result", r"^Held until .+ 8:00 AM .+ because of the contact's quiet hours")
        assert "Sam Patel" in held, held
        assert len(stack.texts(1, within=2, phone=SAM, sender=p.number)) == 1, "only the code text went"

    with p.step("sign-out-and-sign-in"):
        # Staff who come to the portal itself sign in with the user pool (moto's Cognito): a wrong
        # password is refused on the form; the right one lands them, as themselves, on the portal.
        stack.sign_in(SEED["dealer"]["id"], "staff-2")  # the administrator created staff-2
        p.driver.get(f"{stack.portal}/#queues")
        p.until(lambda: p.all("#sign-out"), "the sign-out button")
        p.sign_out_and_in("staff-2", "not-the-password-1A")
        p.wait_text("#signin-status", "user name or the password is not right")
        p.css("#signin-password").clear()
        p.css("#signin-password").send_keys(stack.settings["LOCAL_STAFF_PASSWORD"])
        p.button("Sign in", "#signin-form").click()
        p.wait_text("#who", "staff-2")
        claims = json.loads(p.driver.execute_script(
            "const t = sessionStorage.getItem('texting.portalToken').split('.')[1];"
            "return atob(t.replace(/-/g, '+').replace(/_/g, '/'));"))
        assert (claims["cognito:username"], claims["custom:dealer_id"]) == ("staff-2", SEED["dealer"]["id"])
        p.axe("the signed-in portal")

    with p.step("first-sign-in-with-a-temporary-password"):
        # A user the administrator created with a temporary password chooses their own first.
        cognito = stack.cognito()
        cognito.admin_create_user(UserPoolId=stack.resources["USER_POOL_ID"], Username="staff-3",
                                  TemporaryPassword="Temporary-pass-1A", MessageAction="SUPPRESS",
                                  UserAttributes=[{"Name": "custom:dealer_id", "Value": SEED["dealer"]["id"]}])
        p.sign_out_and_in("staff-3", "Temporary-pass-1A")
        p.wait_text("#signin-status", "choose your own")
        p.css("#signin-new-password").send_keys("Chosen-by-staff-3A")
        p.button("Sign in", "#signin-form").click()
        p.wait_text("#who", "staff-3")
