"""`credit-etl`'s main() sets SIGPIPE to the default action (so `credit-etl contracts | head` ends
quietly). These tests call main() in-process; restore Python's handler afterwards, or a later
test whose HTTP client hangs up would kill the whole pytest process."""

import signal

import pytest


@pytest.fixture(autouse=True)
def _keep_sigpipe_ignored():
    if not hasattr(signal, "SIGPIPE"):
        yield
        return
    before = signal.getsignal(signal.SIGPIPE)
    yield
    signal.signal(signal.SIGPIPE, before)
