"""The concurrency toolkit: the process supervisor and drain tracking for graceful shutdown."""

from voidllm.nursery.drain import DrainTracker as DrainTracker
from voidllm.nursery.supervisor import Backoff as Backoff
from voidllm.nursery.supervisor import Supervisor as Supervisor
from voidllm.nursery.supervisor import open_supervisor as open_supervisor

__all__ = ["Backoff", "DrainTracker", "Supervisor", "open_supervisor"]
