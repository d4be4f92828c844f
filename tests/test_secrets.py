"""The API token never shows: not in output or logs, not in the local report, the spool or
the shared rate-guard state, not in the repr of any of the plugin's objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import clean_environment, point_at, qase_lines, run

LEAKY_SUITE = """
import logging
import pytest
from pytest_qase import qase

def _everything_the_plugin_holds(config):
    plugin = config.pluginmanager.get_plugin("qase-session")
    seen = [plugin, plugin.settings, plugin.client, plugin.sender, plugin.uploader]
    texts = [repr(x) for x in seen] + [str(x) for x in seen]
    texts += [repr(vars(x)) for x in seen if hasattr(x, "__dict__")]
    return "\\n".join(texts)

def test_dump_the_plugin(request):
    dump = _everything_the_plugin_holds(request.config)
    print(dump)
    logging.getLogger("test").warning("dump: %s", dump)
    qase.comment(dump)
    qase.attach(content=dump, filename="dump.txt")
    assert False, dump  # into the stack trace, so into the report and the spool

@pytest.mark.parametrize("n", range(5))
def test_more(n):
    pass
"""


def _files_holding(root: Path, secret: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_token_appears_nowhere(pytester, qase_server, monkeypatch, tmp_path):
    """Results refused with 500 until the end, so everything ends up on disk: the spool, the
    local report, the attachment copies, the rate-guard state; logs at DEBUG on the terminal
    (urllib3 included). The token is in none of them."""
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_leaky=LEAKY_SUITE)
    qase_server.inject(path=r"/results$", status=500, times=None)
    point_at(monkeypatch, qase_server, QASE_MAX_WAIT="3")
    result = run(pytester, qase_server, "--qase-report=report", "-o", "log_cli=true",
                 "--log-cli-level=DEBUG", "-s", subprocess=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str() + result.stderr.str()
    assert "DEBUG" in output and "dump:" in output  # the logs and the dump did show
    lines = qase_lines(result)
    assert any("python -m pytest_qase upload" in line for line in lines), lines
    secret = qase_server.token.encode()
    assert qase_server.token not in output
    spools = [Path(line.split(" upload ", 1)[1]) for line in lines if " upload " in line]
    assert spools and all(p.exists() for p in spools)
    assert _files_holding(pytester.path, secret) == []  # the local report, its attachments
    state = tmp_path / "tmp"  # the per-user temp dir: spool, state file, attachment copies
    assert list(state.rglob("*.jsonl")) and list(state.rglob("*.json"))
    assert _files_holding(state, secret) == []
    # what the server received carries it only in the Token header
    assert all(qase_server.token not in str(r.body) for r in qase_server.requests)
