"""An Input that keeps the order of fast typing.

Textual applies printable keys the moment the Input reads them, but runs the
Input's own key bindings (backspace, delete, home, end, arrows) only after the
key has bubbled up to the app: in a burst such as ``End BSpace BSpace 0.02``
(a quick typist, or a paste over SSH) the backspaces landed after the text and
deleted it. Here the Input's own bindings act at once, in the order typed.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class FieldInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        bindings = self._bindings.key_to_bindings.get(event.key)
        if bindings and not event.is_printable:
            event.stop()
            event.prevent_default()
            await self.run_action(bindings[0].action)
            return
        await super()._on_key(event)
