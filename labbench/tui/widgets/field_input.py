"""An Input that keeps the order of fast typing.

Textual applies printable keys the moment the Input reads them, but runs the
Input's own key bindings (backspace, delete, home, end, arrows) and the
screen's Tab only after the key has bubbled up to the app: in a burst such as
``End BSpace BSpace 0.02`` or ``0.001 Tab 300`` (a quick typist, or a paste
over SSH) the backspaces landed after the text and deleted it, and what was
typed after the Tab went into the field before it. Here the Input's own
bindings and Tab act at once, in the order typed, and keys that reach this
field after a Tab moved the focus on go to the field that has it now.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class FieldInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        focused = self.screen.focused
        if focused is not None and focused is not self:
            # typed after a Tab that this field has already acted on: it belongs to the next field
            event.stop()
            event.prevent_default()
            focused.post_message(events.Key(event.key, event.character))
            return
        if event.key in ("tab", "shift+tab"):
            event.stop()
            event.prevent_default()
            if event.key == "tab":
                self.screen.focus_next()
            else:
                self.screen.focus_previous()
            return
        bindings = self._bindings.key_to_bindings.get(event.key)
        if bindings and not event.is_printable:
            event.stop()
            event.prevent_default()
            await self.run_action(bindings[0].action)
            return
        await super()._on_key(event)
