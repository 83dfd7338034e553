"""The two kinds of failure every stage tells apart.

`BadInput` is deterministic: the same input fails the same way on every try (bad data, too few subjects, a
contract violation, a corrupt file, an unknown recording id, a missing or inconsistent manifest). Tasks fail
at once on it, with its one-line message, and never retry. Anything else (a service unreachable, a timeout)
is treated as transient and uses the task's retries.
"""


class BadInput(Exception):
    """A deterministic error: retrying cannot help; the message says what is wrong and what to do."""


class MissingInput(BadInput, FileNotFoundError):
    """An input a stage needs (a batch's manifest, a training report) does not exist: run the stage that writes it."""


class IntegrityError(BadInput, ValueError):
    """Stored bytes do not match the checksum recorded for them."""


# Exit code of the Spark jobs on bad input (argparse's own usage-error code): their task fails without retrying.
SPARK_BAD_INPUT_EXIT = 2
# Exit code of the Spark jobs when Cassandra has too few replicas alive for the pipeline's consistency level: a
# transient error, retried, told in one line (the level and the nodes down).
SPARK_UNAVAILABLE_EXIT = 3


class NothingToDo(Exception):
    """A stage has nothing to do for this run, which is not a failure: its task is skipped with this reason."""
