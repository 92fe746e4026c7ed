"""The exit codes of every ``boards`` command: one table, printed by ``boards --help`` and
checked against docs/operations.md by the docs tests. Standard library only."""

OK = 0
FAILURE = 1
USAGE = 2
NOT_EXECUTABLE = 126
NOT_FOUND = 127

MEANINGS: dict[int, str] = {
    OK: "success; a clean stop; `migrate` done; `healthcheck`: healthy",
    FAILURE: "runtime failure: a migration failed (`migration failed: …` in the log); "
    "`healthcheck`: unhealthy",
    USAGE: "bad setting or usage: one line on stderr naming the variable and what is allowed",
    NOT_EXECUTABLE: "the command given is not executable",
    NOT_FOUND: "the command given is not found",
}
