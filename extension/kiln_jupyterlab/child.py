"""The `kiln` CLI as a child process: started in a session of its own, so that stopping it
stops everything it started (cargo, rustc, the linker) with it."""

import asyncio
import os
import signal

# How long a stopped child has to exit on SIGTERM before its whole group is killed.
GRACE_SECONDS = 5


class MissingCli(Exception):
    """The configured `kiln` binary cannot be started."""


async def start(argv, env=None, stdin=False):
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            limit=16 * 1024 * 1024,  # one event line may carry a whole analysis
        )
    except (FileNotFoundError, PermissionError) as error:
        raise MissingCli(f"cannot run the kiln CLI at {argv[0]!r} ({error.strerror}): set KILN_BIN or c.Kiln.kiln_bin") from error


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


async def stop(process):
    """SIGTERM to the child's process group, SIGKILL to it after the grace period."""
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), GRACE_SECONDS)
        except asyncio.TimeoutError:
            pass
    # The child may be gone while cargo or rustc, in its group, still run.
    _signal_group(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


def last_lines(text, count=20):
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-count:])
