"""``python -m pytest_qase``: create and complete runs for CI shards, deliver spooled results.

Settings come from the same flags and environment variables as the plugin (no ini file):
the token from ``QASE_API_TOKEN``, the project from ``--qase-project`` or ``QASE_PROJECT``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from . import clock
from .client import ApiError, QaseClient
from .links import run_link
from .ratelimit import RateGuard
from .runs import run_body, run_title
from .settings import OPTIONS, Option, Settings, Sources, dest, parse_bool, resolve_from
from .spool import spool_files
from .upload import deliver_spools

# Flags every command takes; ``run create`` also takes every setting of the run it creates.
SHARED = ("token", "project", "url", "ca_bundle")
RUN_SETTINGS = ("run_title", "run_description", "plan_id", "environment", "configurations",
                "create_configurations", "run_tags", "milestone_id")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_qase",
                                     description="Qase runs and spooled results from the shell.")
    commands = parser.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="deliver results a session left undelivered")
    upload.add_argument("path", help="a spool file or a folder of them")
    upload.add_argument("--complete-run", action="store_true",
                        help="complete the run when everything was delivered")
    run = commands.add_parser("run", help="create or complete a run (CI shards)")
    run_commands = run.add_subparsers(dest="run_command", required=True)
    run_commands.add_parser("create", help="create a run and print its id")
    complete = run_commands.add_parser("complete", help="complete a run")
    complete.add_argument("run_id", type=int)
    for sub, names in ((upload, SHARED), (run_commands.choices["create"], SHARED + RUN_SETTINGS),
                       (complete, SHARED)):
        for option in OPTIONS:
            if option.name in names and option.cli:
                _add_flag(sub, option)
    return parser


def _add_flag(parser: argparse.ArgumentParser, option: Option) -> None:
    if option.parse is parse_bool:
        parser.add_argument(option.cli, dest=dest(option.name), action="store_const",
                            const="true", help=option.help)
    else:
        parser.add_argument(option.cli, dest=dest(option.name), metavar=option.metavar,
                            help=option.help)


def _settings(args: argparse.Namespace) -> Optional[Settings]:
    settings = resolve_from(Sources.from_flags(vars(args)))
    settings.enabled = True
    for problem in settings.errors:
        print(f"qase: error: {problem}", file=sys.stderr)
    if settings.upload_refused:  # token, project, address or CA: nothing can be sent
        return None
    if settings.token is None:
        why = ("QASE_MODE=report means the local report only: unset QASE_MODE to upload"
               if settings.report_only else
               "no API token: set QASE_API_TOKEN in the environment")
        print(f"qase: error: {why}", file=sys.stderr)
        return None
    return settings


def _client(settings: Settings) -> QaseClient:
    assert settings.token is not None
    guard = RateGuard(settings.url, settings.token.reveal(), settings.rate_limit)
    return QaseClient(settings.url, settings.token, verify=settings.verify(),
                      timeout=settings.timeout, guard=guard)


def _need_project(settings: Settings) -> Optional[str]:
    if settings.project is None:
        print("qase: error: no project: pass --qase-project CODE or set QASE_PROJECT",
              file=sys.stderr)
    return settings.project


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    if settings is None:
        return 2
    client = _client(settings)
    deadline = clock.Deadline(settings.max_wait)
    try:
        if args.command == "upload":
            return _upload(args, settings, client, deadline)
        project = _need_project(settings)
        if project is None:
            return 2
        if args.run_command == "create":
            return _create_run(settings, project, client, deadline)
        client.complete_run(project, args.run_id, deadline)
        print(f"qase: run {args.run_id} ({project}) completed", file=sys.stderr)
        return 0
    except ApiError as error:
        print(f"qase: error: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _create_run(settings: Settings, project: str, client: QaseClient,
                deadline: clock.Deadline) -> int:
    """Create the run CI shards report into; only its id goes to stdout (for QASE_RUN_ID)."""
    client.get_project(project, deadline)
    title = run_title(settings, Path.cwd().name, clock.now())
    built = run_body(settings, title, client, deadline)
    for problem in built.problems:
        print(f"qase: error: {problem}", file=sys.stderr)
    run_id = client.create_run(project, built.body, deadline)
    print(run_id, flush=True)
    print(f"qase: created run {run_id} ({project}): {run_link(settings.url, project, run_id)}; "
          f"complete it with: python -m pytest_qase run complete {run_id} --qase-project={project}",
          file=sys.stderr)
    return 0


def _upload(args: argparse.Namespace, settings: Settings, client: QaseClient,
            deadline: clock.Deadline) -> int:
    if not os.path.exists(args.path):
        print(f"qase: error: {args.path} does not exist (a spool is removed once every result "
              "in it was delivered)", file=sys.stderr)
        return 1
    if not spool_files(args.path):
        print(f"qase: error: {args.path} is not a spool file of pytest-qase, nor a folder that "
              "holds one: name the path the summary printed after 'deliver them later with'",
              file=sys.stderr)
        return 1
    outcome = deliver_spools(args.path, client, batch_size=settings.batch_size,
                             max_bytes=settings.max_request_bytes, deadline=deadline,
                             expect_url=settings.url)
    print(f"qase: {outcome.delivered} results delivered in {outcome.requests} requests",
          file=sys.stderr)
    for warning in outcome.warnings:
        print(f"qase: warning: {warning}", file=sys.stderr)
    if outcome.undelivered:
        reason = sorted(set(outcome.undelivered.values()))[0]
        print(f"qase: {len(outcome.undelivered)} results still not delivered: {reason}",
              file=sys.stderr)
        return 1
    if args.complete_run:
        for project, run_id in sorted(outcome.runs):
            client.complete_run(project, run_id, deadline)
            print(f"qase: run {run_id} ({project}) completed", file=sys.stderr)
    return 0
