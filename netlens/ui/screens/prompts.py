"""Small modal dialogs: ask for a value, open a lasting connection, pick a port when ours is taken, too small."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Select, Static

Validator = Callable[[str], str | None]  # returns an error sentence, or None when fine


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text; dismisses with it, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, hint: str, value: str = "", placeholder: str = "",
                 validate: Validator | None = None) -> None:
        super().__init__()
        self._title = title
        self._hint = hint
        self._value = value
        self._placeholder = placeholder
        self._validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self._title, style="bold"))
            yield Static(Text(self._hint, style="dim"), classes="hint")
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
            yield Static("", id="prompt-error", classes="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Validate and close with the value."""
        error = self._validate(event.value) if self._validate else None
        if error:
            self.query_one("#prompt-error", Static).update(Text(error, style="bold red"))
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Close without a value."""
        self.dismiss(None)


class SendScreen(ModalScreen[tuple[str, str, bool] | None]):
    """Compose a request: kind (search / binary / echo), text, and byte-by-byte or not."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._mode = mode

    def compose(self) -> ComposeResult:
        kinds = [("echo", "echo")] if self._mode == "echo" else [("search", "search"), ("binary", "binary")]
        with Vertical(classes="dialog"):
            yield Label(Text("Send a request", style="bold"))
            yield Static(Text("search: a JSON lookup (try morpheus, ring, 🐶); binary: raw bytes; "
                              "echo: any text. Enter sends.", style="dim"), classes="hint")
            yield Select(kinds, value=kinds[0][1], allow_blank=False, id="send-kind")
            yield Input(value="morpheus" if self._mode == "search" else "hello", id="send-text")
            with Horizontal(classes="buttons"):
                yield Button("Send", variant="primary", id="send")
                yield Button("Send byte by byte", id="send-slow")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#send-text", Input).focus()

    def _result(self, slow: bool) -> tuple[str, str, bool]:
        kind = str(self.query_one("#send-kind", Select).value)
        return kind, self.query_one("#send-text", Input).value, slow

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter sends."""
        self.dismiss(self._result(False))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Send, send slowly, or cancel."""
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.dismiss(self._result(event.button.id == "send-slow"))

    def action_cancel(self) -> None:
        """Close without sending."""
        self.dismiss(None)


@dataclass(frozen=True)
class OpenChoice:
    """A connection to open from the UI and keep: what it sends, whether it reads, for how long."""

    #: "hold" (stay connected) or "stream" (send continuously).
    kind: str
    #: For hold: "idle" (send nothing), "half" (half a search request), "text" (the text, raw).
    what: str = "idle"
    text: str = ""
    read: bool = True
    #: Bytes per second for a stream (None: no limit).
    rate: int | None = None
    #: How long to keep it (None: until the server ends it or the app quits).
    seconds: float | None = None

    def payload(self) -> bytes:
        """The bytes a held connection sends right after connecting."""
        if self.what == "half":
            from netlens.proto import encode_request

            request = encode_request("search", self.text or "morpheus")
            return request[: len(request) // 2]
        return self.text.encode("utf-8") if self.what == "text" else b""

    def describe(self) -> str:
        """A few words for the confirmation."""
        if self.kind == "stream":
            return "streaming" + ("" if self.read else " without reading (slow reader)")
        return {"idle": "held idle", "half": "holding half a request", "text": "holding after sending text"}[self.what]


#: The choices of the open-connection dialog: label, choice (without text/rate/seconds), modes it suits.
OPEN_PRESETS: tuple[tuple[str, OpenChoice, tuple[str, ...]], ...] = (
    ("hold: connect and wait", OpenChoice("hold", "idle"), ("search", "echo")),
    ("hold: send half a search request, wait", OpenChoice("hold", "half"), ("search",)),
    ("hold: send the text, keep the connection", OpenChoice("hold", "text"), ("search", "echo")),
    ("stream: send at the rate, read the echo", OpenChoice("stream", read=True), ("echo",)),
    ("stream without reading (slow reader)", OpenChoice("stream", read=False), ("echo",)),
)


class OpenClientScreen(ModalScreen[OpenChoice | None]):
    """Open a connection that stays (hold or stream), to act on with r w x X d b."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._presets = [(label, choice) for label, choice, modes in OPEN_PRESETS if mode in modes]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("Open a connection that stays", style="bold"))
            yield Static(Text("A client in netlens itself keeps it open, so you can pause reading (r), shut it "
                              "down (w), close (x) or reset it (X). Seconds 0: until the server ends it or "
                              "netlens quits (the server's idle timeout still applies).", style="dim"),
                         classes="hint")
            yield Select([(label, n) for n, (label, _) in enumerate(self._presets)], value=0,
                         allow_blank=False, id="open-kind")
            yield Input(value="morpheus", placeholder="text to send (hold) / value to search (half)",
                        id="open-text")
            yield Static(Text("rate for a stream, bytes/s (0: no limit)     seconds (0: until it ends)",
                              style="dim"))
            with Horizontal(classes="fields"):
                yield Input(value="1M", placeholder="rate", id="open-rate")
                yield Input(value="0", placeholder="seconds", id="open-seconds")
            yield Static("", id="open-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Open", variant="primary", id="open")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#open-kind", Select).focus()

    def choice(self) -> OpenChoice:
        """The dialog's choice; ValueError (with a sentence) for a bad rate or number of seconds."""
        from netlens.server.holding import parse_rate

        index = self.query_one("#open-kind", Select).value
        base = self._presets[int(index) if isinstance(index, int) else 0][1]
        rate = parse_rate(self.query_one("#open-rate", Input).value)
        seconds_text = self.query_one("#open-seconds", Input).value.strip() or "0"
        try:
            seconds = float(seconds_text)
        except ValueError:
            raise ValueError(f"{seconds_text!r} is not a number of seconds") from None
        if seconds < 0:
            raise ValueError("seconds cannot be negative")
        return OpenChoice(base.kind, base.what, self.query_one("#open-text", Input).value, base.read, rate,
                          seconds or None)

    def _submit(self) -> None:
        try:
            choice = self.choice()
        except ValueError as exc:
            self.query_one("#open-error", Static).update(Text(str(exc), style="bold red"))
            return
        self.dismiss(choice)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in any field opens."""
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Open or cancel."""
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self._submit()

    def action_cancel(self) -> None:
        """Close without opening anything."""
        self.dismiss(None)


class PortInUseScreen(ModalScreen[int | None]):
    """Our port is taken: offer the next free one, any free one, or quitting."""

    BINDINGS = [Binding("escape", "quit", "Quit")]

    def __init__(self, sentence: str, suggestion: int) -> None:
        super().__init__()
        self._sentence = sentence
        self._suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("The server could not start", style="bold red"))
            yield Static(Text(self._sentence), id="sentence")
            with Horizontal(classes="buttons"):
                yield Button(f"Use port {self._suggestion}", variant="primary", id="suggested")
                yield Button("Any free port", id="any")
                yield Button("Quit", id="quit")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Pick a port, or quit (None)."""
        choice = {"suggested": self._suggestion, "any": 0}.get(event.button.id or "")
        self.dismiss(choice)

    def action_quit(self) -> None:
        """Leave without a server."""
        self.dismiss(None)


class TooSmallScreen(Screen[None]):
    """Shown while the terminal is smaller than the layout needs.

    A full screen, not a modal one, so the panels behind it are not laid out
    (and squeezed to nothing) at a size they cannot work in.
    """

    BINDINGS = [Binding("q", "app.quit", "Quit")]

    def __init__(self, need: tuple[int, int]) -> None:
        super().__init__()
        self._need = need

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def show_size(self, width: int, height: int) -> None:
        """Say how big the terminal is and how big it must be."""
        need_w, need_h = self._need
        self.query_one("#too-small", Static).update(Text(
            f"The terminal is {width}x{height}; netlens needs at least {need_w}x{need_h}.\n"
            f"Enlarge the window or reduce the font size. (q quits)", justify="center"))

    def on_mount(self) -> None:
        self.show_size(self.app.size.width, self.app.size.height)
