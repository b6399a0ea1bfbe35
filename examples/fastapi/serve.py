"""Start uvicorn with the log config, and make SIGTERM end every process normally.

After its graceful shutdown, uvicorn raises the SIGTERM it caught once more, to die
by it. SIGTERM's default action ends the process on the spot, without exit handlers;
pglog's SIGTERM hook (handle_sigterm, on by default) writes what pglog still holds
first. The handler below makes that last SIGTERM a normal exit instead, so every exit
handler runs, pglog's included, and handle_sigterm isn't needed. This module is
imported in each worker uvicorn spawns too, so the handler below is in place in every
process before uvicorn saves, restores and raises it again.
"""

import os
import signal
import sys
from types import FrameType

import uvicorn


def exit_normally(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)  # a normal exit: logging.shutdown() writes what is queued


signal.signal(signal.SIGTERM, exit_normally)

if __name__ == "__main__":
    uvicorn.run(
        "app:app",
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        workers=2,
        log_config="log_config.yaml",
    )
