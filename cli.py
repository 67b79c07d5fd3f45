"""The starfund command line's root: the group, its shared options, and the registry of commands.

Each area's commands live beside their act (the registry below says where) and
use the shared plumbing of `lifecycle.console`: --db, --as and --now on
every command, --json on every command that prints data. An option given on
the command line (after the command name, else before it) beats its
environment variable, which beats the default.

A user's mistake (any `lifecycle.core.errors.UserError`) is one message on stderr
and exit 1; a bad option value is click's usage error, exit 2. Anything else is
a bug and keeps its traceback. Text options are checked for control characters
and length at the door (`lifecycle.core.names`), and everything printed escapes what
a terminal cannot show safely.

Start-up: a command's module is imported only when that command runs (or shows
its help), so `starfund --help` imports click and nothing heavy; it lists each
command with the one-line help kept here (tests/test_cli_startup.py checks that
each equals the command's own).
"""
from __future__ import annotations

import importlib
from datetime import datetime

import click

from lifecycle.console import shared_options

# name -> ("module:attribute" of the click command, its one-line help as `--help` lists it)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("lifecycle.acts.setup:init",
             "Create the database (or upgrade it), its audit keys and its first account."),
    "user": ("lifecycle.acts.users:user_group", "Accounts: who may act, with which roles."),
    "login": ("lifecycle.acts.users:login",
              "Log in to this database as NAME: later commands act as NAME (until `logout`)."),
    "logout": ("lifecycle.acts.users:logout",
               "End your login to this database (commands then act as your OS user's "
               "account)."),
    "whoami": ("lifecycle.acts.users:whoami",
               "Who you act as on this database, with which roles, and how starfund knows."),
    "serve": ("web.serve:serve",
              "Serve the portal (societies, experts, staff, the public 公示) on uvicorn."),
    "demo": ("lifecycle.demo.run:demo",
             "Simulate a whole programme year (or several) on a new database, printing each "
             "step."),
    "config": ("lifecycle.acts.configuring:config_group",
               "The settings (STARFUND_* environment variables and their options)."),
    "call": ("lifecycle.acts.calls:call_group", "Create and list calls (funding rounds)."),
    "society": ("lifecycle.acts.registry:society_group", "Societies (学会): import, list and show them."),
    "expert": ("lifecycle.acts.registry:expert_group", "Experts (专家): import them, list who still owes scores."),
    "application": ("lifecycle.acts.declarations:application_group",
                    "Applications (申报项目): import and list declarations."),
    "advance": ("lifecycle.acts.advancing:advance",
                "Fire TRIGGER on every application of CALL that can take it, as one "
                "transaction."),
    "status": ("lifecycle.acts.advancing:status",
               "Applications of CALL per state, money, and its deadlines."),
    "show": ("lifecycle.acts.advancing:show",
             "One application: fields, scores, money, messages, its decisions with their "
             "reasons (whole) and its full history."),
    "workflow": ("lifecycle.acts.advancing:workflow_group", "Inspect workflows."),
    "assessment": ("lifecycle.acts.assessing:assessment_group",
                   "Performance assessment (绩效考核): reports, grades, proposed outcomes."),
    "outcome": ("lifecycle.acts.assessing:outcome_group",
                "Dynamic management (动态管理): override one application's outcome."),
    "payments": ("lifecycle.acts.payments:payments_group",
                 "Grant and reward instalments: list, pay, recover, export, statements."),
    "stars": ("lifecycle.acts.stars:stars_table",
              "The star table of a star CALL (with each star's status now), or every star "
              "valid now."),
    "star": ("lifecycle.acts.stars:star_group",
             "Star rating acts: the indicator sheet, score imports, revocation."),
    "model": ("lifecycle.acts.model_societies:model_group",
              "Model societies (示范学会): the titles star calls named, revocation."),
    "audit": ("lifecycle.acts.auditing:audit_group",
              "The audit trail: who moved what, when and why."),
    "notify": ("lifecycle.acts.notify:notify_group",
               "Notifications: deliver the outbox, list and re-queue messages."),
    "templates": ("lifecycle.acts.notify:templates_group",
                  "Message templates: check them, preview one against real data."),
    "deadlines": ("lifecycle.scheduling.commands:deadlines_group",
                  "Deadlines: dated events of calls, fired by `deadlines run-due` or "
                  "`scheduler run`."),
    "scheduler": ("lifecycle.scheduling.commands:scheduler_group",
                  "The long-running scheduler: fires deadlines on time and delivers the outbox."),
    "review": ("lifecycle.acts.reviewing:review_group",
               "Expert review: assignment, recusal and reassignment, score sheets, panel "
               "decisions."),
    "rank": ("lifecycle.acts.ranking:rank_table",
             "The ranking table of CALL per category, with each application's reason."),
    "notice": ("lifecycle.acts.notice:notice_group",
               "The public notice (公示) of the proposed list."),
    "awards": ("lifecycle.acts.notice:awards_group",
               "The final award list (立项名单) of a call, after its public notice."),
    "report": ("lifecycle.acts.reports:report",
               "A call's or a year's report with charts, as one self-contained HTML file."),
    "objection": ("lifecycle.acts.objections:objection_group",
                  "Objections (异议) filed during the public notice."),
    "retention": ("lifecycle.scheduling.retention:retention_group",
                  "Retention of personal data: the periods, and the daily purge."),
    "history": ("lifecycle.acts.history:history_group",
                "Earlier years' results (before starfund), for the rules that read history."),
    "backup": ("lifecycle.acts.backups:backup",
               "Write a consistent snapshot of the database, with its manifest, while others "
               "write."),
    "restore": ("lifecycle.acts.backups:restore",
                "Restore a backup into an empty database: verify it, record the restore, "
                "re-anchor."),
    "person": ("lifecycle.acts.persons:person_group",
               "A person's data under PIPL (个人信息): export it, or erase it everywhere."),
}


DELIVERING = ("notify", "scheduler", "demo")
"""Commands that deliver mail: before one runs, the modules that register what messages carry
attached (notifications.delivery.ATTACHERS) are imported (ATTACHING)."""
ATTACHING = ("lifecycle.acts.scoresheets", "lifecycle.acts.invitations")


class LazyGroup(click.Group):
    """click's lazy-loading group: a command is imported from "module:attribute" only when it
    is invoked (or its own help is asked for); the group's help lists the registry's one-liners."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return None
        module, attribute = self.lazy[cmd_name][0].split(":")
        if cmd_name in DELIVERING:
            for extra in ATTACHING:
                importlib.import_module(extra)
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their one-liners, as click lays them out, without importing any."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = [(n, click.Command(n, help=self.lazy[n][1]).get_short_help_str(limit))
                for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@shared_options(root=True)
@click.version_option("0.1.0", prog_name="starfund")
@click.pass_context
def main(ctx: click.Context, db_arg: str | None, as_actor: str | None,
         at_now: datetime | None, quiet: bool | None) -> None:
    """starfund: run a public funding programme from call to outcome.

    \b
    Start with:  starfund demo          (a whole simulated programme year)
    Then:        starfund status 2025-project
                 starfund audit query --call 2025-project
    """
    ctx.obj = {"db_arg": db_arg, "as_actor": as_actor, "at_now": at_now, "quiet": quiet}


if __name__ == "__main__":
    main()
