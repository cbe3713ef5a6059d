"""The web page in a real browser (headless Chromium driven by selenium): chat, reset, translate, predict."""

import shutil

import pytest

import textrnn

from helpers import PAIRS, live

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver")

from textrnn.serve.app import Settings  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no chromium + chromedriver on this machine (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, predicate, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: predicate(d))


def test_chat_reset_translate_and_predict_in_the_page(browser, runs):
    from selenium.webdriver.common.by import By

    models = {t: textrnn.load(runs[t].path, device="cpu") for t in ("chat", "translate", "classify")}
    with live(models) as (url, _):
        browser.get(url + "/")
        chat = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, 'section[data-model="chat"]'))
        assert not browser.find_element(By.ID, "keyrow").is_displayed()  # no key needed, none asked for

        box = chat.find_element(By.CSS_SELECTOR, ".input")
        box.send_keys("hello")
        chat.find_element(By.CSS_SELECTOR, ".send").click()
        bot = wait(browser, lambda d: chat.find_elements(By.CSS_SELECTOR, ".msg.bot"))
        assert bot[0].text == models["chat"].reply("hello")
        assert [m.text for m in chat.find_elements(By.CSS_SELECTOR, ".msg.user")] == ["hello"]

        box.send_keys("how are you")
        chat.find_element(By.CSS_SELECTOR, ".send").click()
        wait(browser, lambda d: len(chat.find_elements(By.CSS_SELECTOR, ".msg.bot")) == 2)
        second = chat.find_elements(By.CSS_SELECTOR, ".msg.bot")[1].text
        assert second == models["chat"].reply(["hello", bot[0].text, "how are you"])  # the history was used

        chat.find_element(By.CSS_SELECTOR, ".reset").click()
        wait(browser, lambda d: not chat.find_elements(By.CSS_SELECTOR, ".msg"))
        assert chat.find_element(By.CSS_SELECTOR, ".error").text == ""

        tr = browser.find_element(By.CSS_SELECTOR, 'section[data-model="translate"]')
        src = [PAIRS[0][0], PAIRS[3][0]]
        tr.find_element(By.CSS_SELECTOR, ".input").send_keys("\n".join(src))
        tr.find_element(By.CSS_SELECTOR, ".go").click()
        out = wait(browser, lambda d: (t := tr.find_element(By.CSS_SELECTOR, ".output").text) not in ("", "…") and t)
        assert out.split("\n") == models["translate"].translate(src)

        cl = browser.find_element(By.CSS_SELECTOR, 'section[data-model="classify"]')
        cl.find_element(By.CSS_SELECTOR, ".input").send_keys("a wonderful film")
        cl.find_element(By.CSS_SELECTOR, ".go").click()
        cells = wait(browser, lambda d: cl.find_elements(By.CSS_SELECTOR, "td"))
        assert cells[1].text == models["classify"].predict("a wonderful film").label

        tr.find_element(By.CSS_SELECTOR, 'input[name="beam"]').send_keys("99")  # over the server's limit
        tr.find_element(By.CSS_SELECTOR, ".go").click()
        err = wait(browser, lambda d: tr.find_element(By.CSS_SELECTOR, ".error").text)
        assert "beam" in err


def test_the_page_asks_for_the_api_key(browser, runs):
    from selenium.webdriver.common.by import By

    with live({"classify": textrnn.load(runs["classify"].path, device="cpu")}, Settings(api_key="k3y")) as (url, _):
        browser.get(url + "/")
        wait(browser, lambda d: d.find_element(By.ID, "keyrow").is_displayed())
        assert "Bearer" in browser.find_element(By.ID, "status").text
        browser.find_element(By.ID, "apikey").send_keys("k3y")
        browser.find_element(By.ID, "keysave").click()
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, 'section[data-model="classify"]'))
        assert browser.find_element(By.ID, "status").text == ""
