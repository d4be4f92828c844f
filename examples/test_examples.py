"""A small suite that shows what pytest-qase reports: run ``pytest --qase examples/``.

It fails on purpose (pytest exits 1) so that every Qase status appears: passed, failed,
blocked (a setup error), invalid (a teardown error after a passing test) and skipped
(a skip or an expected failure). See docs/statuses.md. It also uses the runtime API:
steps, attachments, parameters and fields (docs/runtime-api.md).
"""

import json

import pytest

from pytest_qase import qase


@qase.step("Log in as {user}", expected="the dashboard opens")
def log_in(user, password="secret"):
    return {"user": user, "session": "abc123"}


def test_passes():
    assert 1 + 1 == 2


@pytest.mark.qase_id(1)
def test_linked_to_case_1():
    assert "qase".upper() == "QASE"


@qase.id(2, 3)
def test_linked_to_two_cases():
    assert sorted([3, 1, 2]) == [1, 2, 3]


@qase.fields(severity="critical", priority="high", layer="e2e")
def test_fails():
    expected = {"status": "passed"}
    with qase.step("Compare the order status", expected="passed"):
        qase.attach(content=json.dumps({"status": "failed"}), filename="order.json",
                    mime="application/json")
        assert {"status": "failed"} == expected


@pytest.mark.skip(reason="shows a skipped result")
def test_skipped():
    raise AssertionError("never runs")


@pytest.mark.xfail(reason="known bug #42")
def test_expected_failure():
    assert 0.1 + 0.2 == 0.3


@pytest.mark.xfail(reason="fixed, the mark can go")
def test_unexpectedly_passes():
    assert 0.5 + 0.25 == 0.75


@pytest.mark.parametrize("browser, width", [("chromium", 1280), ("firefox", 800)])
def test_parametrized(browser, width):
    qase.param("viewport", {"width": width, "height": width * 9 // 16})
    assert width >= 800


@pytest.mark.qase_id(4)
@qase.suite("Shop.Checkout")
@qase.fields(layer="api", description="The checkout of a cart")
class TestCheckout:
    def test_cart(self, tmp_path):
        session = log_in("alice")
        with qase.step("Add an item", expected="the cart holds 1 item", data={"sku": 42}):
            with qase.step("Open the product page"):
                pass
            with qase.step("Press 'Add to cart'"):
                cart = [42]
        receipt = tmp_path / "cart.txt"
        receipt.write_text(f"{session['user']}: {cart}\n")
        qase.attach(receipt)
        assert cart == [42]

    @pytest.mark.qase_id(5)
    def test_payment(self):
        assert True


@pytest.fixture
def broken_fixture():
    raise RuntimeError("database is down")


def test_blocked_by_setup(broken_fixture):
    pass


@pytest.fixture
def leaky_fixture():
    yield
    raise RuntimeError("temporary files were not removed")


def test_invalid_by_teardown(leaky_fixture):
    assert True
