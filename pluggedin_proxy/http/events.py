"""Resumable SSE streams: the last events of recent streams, kept in memory.

With an event store, the SDK sends each SSE stream a priming event and an id on every event, so a
client whose connection dropped can reconnect with `Last-Event-ID` and receive what it missed.
`MemoryEventStore` keeps a bounded number of events per stream and a bounded number of streams
(the least recently written are forgotten first); a client asking to resume a forgotten stream
simply gets nothing replayed.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage

__all__ = ["MemoryEventStore"]

# Enough to cover a reconnect after a brief network drop, small enough to bound memory.
EVENTS_PER_STREAM = 64
MAX_STREAMS = 1024


class MemoryEventStore(EventStore):
    """The last `per_stream` events of the `max_streams` most recently written streams."""

    def __init__(self, *, per_stream: int = EVENTS_PER_STREAM, max_streams: int = MAX_STREAMS) -> None:
        self._per_stream = per_stream
        self._max_streams = max_streams
        self._streams: OrderedDict[StreamId, deque[tuple[int, JSONRPCMessage | None]]] = OrderedDict()
        self._sequence = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        events = self._streams.get(stream_id)
        if events is None:
            events = self._streams[stream_id] = deque(maxlen=self._per_stream)
            while len(self._streams) > self._max_streams:
                self._streams.popitem(last=False)
        else:
            self._streams.move_to_end(stream_id)
        sequence = next(self._sequence)
        events.append((sequence, message))
        return f"{sequence}/{stream_id}"

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        sequence_text, _, stream_id = last_event_id.partition("/")
        events = self._streams.get(stream_id)
        if not sequence_text.isdigit() or events is None:
            return None
        after = int(sequence_text)
        for sequence, message in list(events):
            if sequence > after and message is not None:  # priming events carry no message
                await send_callback(EventMessage(message, f"{sequence}/{stream_id}"))
        return stream_id
