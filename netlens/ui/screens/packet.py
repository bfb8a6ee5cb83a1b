"""One packet in depth: dissection tree and hex, follow stream, ladder diagram, analysis."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane, Tree

from netlens.capture import RULES, Ladder, PacketStore
from netlens.ui.widgets.packets import LockedStore, packet_row

#: Arrows drawn at most in a ladder (a bulk transfer can have thousands).
MAX_ARROWS = 2000
#: Bytes of a followed stream shown per chunk.
FOLLOW_LIMIT = 8192


def arrow_style(label: str, marks: tuple[str, ...]) -> str:
    """Colour of a ladder arrow, matching the packet list."""
    if marks and "reset" not in marks:
        return "bold yellow"
    if "RST" in label:
        return "bold red"
    if "SYN" in label:
        return "cyan"
    if "FIN" in label:
        return "magenta"
    if "len=" in label:
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
        style = arrow_style(arrow.label, arrow.marks)
        if arrow.no == current:
            style = f"{style} reverse".strip()
        out.append(line + "\n", style=style)
    if len(model.arrows) > MAX_ARROWS:
        out.append(f"… {len(model.arrows) - MAX_ARROWS} more packets not drawn\n", style="dim")
    out.rstrip()
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

    def __init__(self, store: PacketStore | LockedStore, no: int) -> None:
        super().__init__()
        self.store = store
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
        store = self.store
        summary = store.summary(no)
        self.query_one("#packet-title", Static).update(packet_row(summary))
        self._fill_tree(no)
        hex_text = Text("\n".join(store.hexdump(no)), no_wrap=True)
        self.query_one("#hex", Static).update(hex_text)
        stream_id = summary.stream
        if stream_id is None:
            for pane in ("#follow-body", "#ladder-body"):
                self.query_one(pane, Static).update(Text("Not a TCP packet: no stream.", style="dim"))
        else:
            follow = store.follow(stream_id)
            self.query_one("#follow-body", Static).update(self._follow_text(follow))
            width = max(60, self.size.width - 4)
            self.query_one("#ladder-body", Static).update(ladder_text(store.ladder(stream_id), width, no))
        self.query_one("#analysis-body", Static).update(self._analysis_text(no, stream_id))

    def _fill_tree(self, no: int) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        layers = self.store.dissect(no)
        tree.root.set_label(Text(f"Packet {no}: {len(self.store.ring.frame(no))} bytes captured"))
        for layer in layers:
            node = tree.root.add(Text(layer.name, style="bold"), expand=True)
            for name, value in layer.fields:
                # Field values came off the wire: Text, never markup.
                node.add_leaf(Text.assemble((f"{name}: ", "cyan"), value))
        tree.root.expand()

    def _follow_text(self, follow) -> Text:  # type: ignore[no-untyped-def]
        out = Text(no_wrap=False)
        lines = follow.render(limit=FOLLOW_LIMIT)
        out.append(lines[0] + "\n", style="bold")
        direction = 0
        for line in lines[1:]:
            if line.startswith("── client"):
                direction = 0
                out.append(line + "\n", style="bold red")
            elif line.startswith("── server"):
                direction = 1
                out.append(line + "\n", style="bold blue")
            elif line.startswith("── "):
                out.append(line + "\n", style="dim")
            else:
                out.append(line + "\n", style="red" if direction == 0 else "blue")
        out.rstrip()
        return out

    def _analysis_text(self, no: int, stream_id: int | None) -> Text:
        out = Text()
        marks = self.store.analysis(no)
        if marks:
            out.append("This packet\n", style="bold")
            for mark in marks:
                out.append(f"  {mark}\n", style="bold yellow")
                out.append(f"    {mark.rule}\n")
        else:
            out.append("No analysis flags on this packet.\n", style="dim")
        if stream_id is not None:
            stream = self.store.stream(stream_id)
            out.append("\nThis connection\n", style="bold")
            out.append(f"  {stream.describe()}\n")
            out.append(f"  {stream.completeness()}\n")
            flagged = [n for n in self.store.stream_packets(stream_id) if self.store.analysis(n)]
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
        if self.store.first <= target <= self.store.last:
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
