"""One packet in depth: dissection tree and hex, follow stream, ladder diagram, analysis."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane, Tree

from netlens.capture.analysis import RULES, Mark, Severity
from netlens.capture.dissect import Layer
from netlens.capture.feed import PacketFeed
from netlens.capture.follow import Follow
from netlens.capture.frames import FIN, RST, SYN
from netlens.capture.ladder import Ladder
from netlens.ui.widgets.packets import packet_row

#: Arrows drawn at most in a ladder (a bulk transfer can have thousands).
MAX_ARROWS = 2000
#: Bytes of a followed stream shown per chunk.
FOLLOW_LIMIT = 8192


#: Colour of the two directions in a followed stream (the heading bold, the bytes plain).
DIRECTION_STYLE = ("red", "blue")
#: Ladder arrows and analysis lines by the worst severity of the packet's marks.
SEVERITY_STYLE = {Severity.NOTE: "bold yellow", Severity.WARNING: "bold yellow", Severity.ERROR: "bold red"}


def arrow_style(flags: int, length: int, severity: int) -> str:
    """Colour of a ladder arrow, matching the packet list: its worst mark first, then its TCP flags."""
    style = SEVERITY_STYLE.get(Severity(severity))
    if style is not None:
        return style
    if flags & RST:
        return "bold red"
    if flags & SYN:
        return "cyan"
    if flags & FIN:
        return "magenta"
    if length:
        return "green"
    return ""


def ladder_text(model: Ladder, width: int, current: int | None) -> Text:
    """The ladder as styled text; the arrow of packet ``current`` stands out."""
    arrows = model.arrows[:MAX_ARROWS]
    trimmed = Ladder(model.stream, model.client, model.server, arrows)
    lines = trimmed.render(width)
    out = Text(no_wrap=True)
    out.append(lines[0] + "\n", style="bold")
    for arrow, line in zip(arrows, lines[1:], strict=False):
        style = arrow_style(arrow.flags, arrow.length, arrow.severity)
        if arrow.no == current:
            style = f"{style} reverse".strip()
        out.append(line + "\n", style=style)
    if len(model.arrows) > MAX_ARROWS:
        out.append(f"… {len(model.arrows) - MAX_ARROWS} more packets not drawn\n", style="dim")
    out.rstrip()
    return out


def follow_text(follow: Follow, limit: int = FOLLOW_LIMIT) -> Text:
    """A followed stream as styled text: each direction in its colour, from the chunks themselves."""
    out = Text(no_wrap=False)
    out.append(follow.title() + "\n", style="bold")
    for chunk in follow.chunks:
        colour = DIRECTION_STYLE[chunk.direction]
        out.append(follow.heading(chunk) + "\n", style=f"bold {colour}")
        for line in chunk.lines(limit):
            out.append(line + "\n", style=colour)
    out.append(follow.footer(), style="dim")
    return out


class PacketScreen(Screen[int | None]):
    """Details of packet ``no``; dismisses with a packet number to select, or None."""

    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("left_square_bracket", "step(-1)", "Previous packet"),
        Binding("right_square_bracket", "step(1)", "Next packet"),
        Binding("g", "goto_connection", "Go to connection"),
        Binding("1", "show_tab('detail')", "Detail", show=False),
        Binding("2", "show_tab('follow')", "Follow", show=False),
        Binding("3", "show_tab('ladder')", "Ladder", show=False),
        Binding("4", "show_tab('analysis')", "Analysis", show=False),
    ]

    def __init__(self, feed: PacketFeed, no: int) -> None:
        super().__init__()
        self.feed = feed
        self.no = no

    def compose(self) -> ComposeResult:
        yield Static(id="packet-title")
        with TabbedContent(initial="detail"):
            with TabPane("1 Detail", id="detail"):
                yield Tree("packet", id="detail-tree")
                with VerticalScroll(id="detail-hex"):
                    yield Static(id="hex", classes="pane-body")
            with TabPane("2 Follow stream", id="follow"):
                with VerticalScroll():
                    yield Static(id="follow-body", classes="pane-body")
            with TabPane("3 Ladder", id="ladder"):
                with VerticalScroll():
                    yield Static(id="ladder-body", classes="pane-body")
            with TabPane("4 Analysis", id="analysis"):
                with VerticalScroll():
                    yield Static(id="analysis-body", classes="pane-body")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.no)
        self.query_one(Tree).focus()

    def show(self, no: int) -> None:
        """Fill every tab for packet ``no``."""
        self.no = no
        feed = self.feed
        detail = feed.detail(no)
        self.query_one("#packet-title", Static).update(packet_row(detail.summary))
        self._fill_tree(no, detail.layers, detail.length)
        self.query_one("#hex", Static).update(Text("\n".join(detail.hexdump), no_wrap=True))
        stream_id = detail.summary.stream
        if stream_id is None:
            for pane in ("#follow-body", "#ladder-body"):
                self.query_one(pane, Static).update(Text("Not a TCP packet: no stream.", style="dim"))
        else:
            self.query_one("#follow-body", Static).update(follow_text(feed.follow(stream_id)))
            width = max(60, self.size.width - 4)
            self.query_one("#ladder-body", Static).update(ladder_text(feed.ladder(stream_id), width, no))
        self.query_one("#analysis-body", Static).update(
            self._analysis_text(detail.marks, stream_id, detail.statistics))

    def _fill_tree(self, no: int, layers: tuple[Layer, ...], length: int) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.set_label(Text(f"Packet {no}: {length} bytes captured"))
        for layer in layers:
            node = tree.root.add(Text(layer.name, style="bold"), expand=True)
            for name, value in layer.fields:
                # Field values came off the wire: Text, never markup.
                node.add_leaf(Text.assemble((f"{name}: ", "cyan"), value))
        tree.root.expand()

    def _analysis_text(self, marks: tuple[Mark, ...], stream_id: int | None, statistics: tuple[str, ...]) -> Text:
        out = Text()
        if marks:
            out.append("This packet\n", style="bold")
            for mark in marks:
                out.append(f"  {mark}\n", style=SEVERITY_STYLE.get(mark.severity, ""))
                out.append(f"    {mark.rule}\n")
        else:
            out.append("No analysis flags on this packet.\n", style="dim")
        for line in statistics:
            out.append(f"  {line}\n")
        if stream_id is not None:
            stream = self.feed.stream(stream_id)
            out.append("\nThis connection\n", style="bold")
            out.append(f"  {stream.description}\n")
            out.append(f"  {stream.completeness}\n")
            flagged = self.feed.flagged(stream_id)
            if flagged:
                out.append(f"  flagged packets: {', '.join(f'#{n}' for n in flagged[:40])}"
                           + (" …" if len(flagged) > 40 else "") + "\n")
        out.append("\nThe rules\n", style="bold")
        for rule in RULES.values():
            out.append(f"  {rule.label}: ", style="cyan")
            out.append(rule.rule + "\n")
        out.rstrip()
        return out

    def action_step(self, delta: int) -> None:
        """Previous/next packet (within the same list order)."""
        target = self.no + delta
        status = self.feed.status()
        if status.first <= target <= status.last:
            self.show(target)

    def action_show_tab(self, name: str) -> None:
        """Switch tab by number key, and give the new tab the focus."""
        # Drop the focus first: a focused widget in the old pane would pull its tab back.
        self.set_focus(None)
        self.query_one(TabbedContent).active = name
        target = self.query_one(f"#{name}").query("Tree, VerticalScroll").first()
        self.call_after_refresh(target.focus)

    def action_goto_connection(self) -> None:
        """Back to the main screen with this packet's connection selected."""
        self.dismiss(self.no)

    def action_back(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
