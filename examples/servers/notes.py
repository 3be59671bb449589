"""A small notes MCP server built on `MCPServer`, for trying the proxy with a realistic upstream.

Notes live in a JSON file when `NOTES_FILE` is set (created on first write) and in memory otherwise; either
way the server starts with two sample notes if there is nothing to load. It serves:

- tools `add_note`, `list_notes`, `search_notes` and `delete_note` (an unknown id is an `isError` result);
- the prompt `summarize_notes(style="short")`;
- the resource `notes://index` and the template `notes://note/{id}`.

Run over stdio:

    python examples/servers/notes.py
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from mcp.server import MCPServer
from mcp.server.mcpserver import UserMessage
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel

SAMPLE_NOTES = (
    ("Shopping", "Milk, eggs, and coffee beans."),
    ("Ideas", "An MCP proxy that puts many servers behind one connection."),
)


class NoteSummary(BaseModel):
    """What `list_notes` and `search_notes` return for each note."""

    id: str
    title: str


class NewNote(BaseModel):
    """What `add_note` returns."""

    id: str
    text: str


@dataclass(slots=True)
class Note:
    id: str
    title: str
    text: str


class NotesStore:
    """Notes kept in order of creation, optionally saved to a JSON file after every change.

    `MCPServer` runs sync tools in worker threads, so every access holds a lock.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._notes: dict[str, Note] = {}
        if path is not None and path.exists():
            for raw in json.loads(path.read_text(encoding="utf-8")):
                note = Note(id=str(raw["id"]), title=str(raw["title"]), text=str(raw["text"]))
                self._notes[note.id] = note
        if not self._notes:
            for title, text in SAMPLE_NOTES:
                self._insert(title, text)

    @classmethod
    def from_env(cls) -> NotesStore:
        path = os.environ.get("NOTES_FILE")
        return cls(Path(path) if path else None)

    def _insert(self, title: str, text: str) -> Note:
        next_id = max((int(i) for i in self._notes if i.isdigit()), default=0) + 1
        note = Note(id=str(next_id), title=title, text=text)
        self._notes[note.id] = note
        return note

    def _save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps([asdict(n) for n in self._notes.values()], indent=2), encoding="utf-8")
        tmp.replace(self._path)  # atomic, so a crash never leaves half a file

    def add(self, title: str, text: str) -> Note:
        with self._lock:
            note = self._insert(title, text)
            self._save()
            return note

    def delete(self, note_id: str) -> bool:
        with self._lock:
            if self._notes.pop(note_id, None) is None:
                return False
            self._save()
            return True

    def get(self, note_id: str) -> Note | None:
        with self._lock:
            return self._notes.get(note_id)

    def all(self) -> list[Note]:
        with self._lock:
            return list(self._notes.values())


def build_server(store: NotesStore) -> MCPServer:
    """Build the notes server over `store`."""
    server = MCPServer("notes", version="1.0.0", instructions="Keep short notes: add, list, search, delete.")

    def summary(note: Note) -> NoteSummary:
        return NoteSummary(id=note.id, title=note.title)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
    def add_note(title: str, text: str) -> NewNote:
        """Add a note and return its id and text."""
        note = store.add(title, text)
        return NewNote(id=note.id, text=note.text)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def list_notes() -> list[NoteSummary]:
        """List every note's id and title."""
        return [summary(n) for n in store.all()]

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def search_notes(query: str) -> list[NoteSummary]:
        """Find notes whose title or text contains the query (case-insensitive)."""
        needle = query.casefold()
        return [summary(n) for n in store.all() if needle in n.title.casefold() or needle in n.text.casefold()]

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
    def delete_note(id: str) -> str:
        """Delete the note with this id."""
        if not store.delete(id):
            raise ToolError(f"No note with id {id!r}")
        return f"Deleted note {id}"

    @server.prompt()
    def summarize_notes(style: str = "short") -> list[UserMessage]:
        """Ask the model to summarize all notes in the given style."""
        body = "\n\n".join(f"# {n.title}\n{n.text}" for n in store.all()) or "(no notes)"
        return [UserMessage(f"Summarize these notes. Style: {style}.\n\n{body}")]

    @server.resource("notes://index", name="index", mime_type="text/plain")
    def index() -> str:
        """One line per note: id and title."""
        return "\n".join(f"{n.id}: {n.title}" for n in store.all())

    @server.resource("notes://note/{id}", name="note", mime_type="text/plain")
    def note_text(id: str) -> str:
        """The text of one note."""
        note = store.get(id)
        if note is None:
            raise ResourceNotFoundError(f"No note with id {id!r}")
        return note.text

    return server


if __name__ == "__main__":
    server = build_server(NotesStore.from_env())
    server.run()
