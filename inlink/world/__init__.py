"""The synthetic web: a deterministic generator, its ground truth, a loopback server, exports.

Used by tests, `inlink demo` and benchmarks; see docs/world.md.
"""

from inlink.world.model import World
from inlink.world.render import PageTruth, Response
from inlink.world.server import (
    RunningWorld,
    WorldServer,
    read_resolve_file,
    run_world_server,
    serve_in_thread,
    write_resolve_file,
)
from inlink.world.truth import Event, TruthLink

__all__ = [
    "Event", "PageTruth", "Response", "RunningWorld", "TruthLink", "World", "WorldServer",
    "read_resolve_file", "run_world_server", "serve_in_thread", "write_resolve_file",
]
