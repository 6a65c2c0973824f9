"""The report's first screen, generated from the run's results: which method is most accurate at each density (and
at each loss budget once a calibration result is present), each paper's simulated result in one line, how many of
the papers' claims land and why the others miss (linked to each claim's derivation further down), and the sentence
that reconciles the two GPU comparisons (a whole H100 running FlashAttention vs the papers' eager PyTorch).

Nothing here is a constant about results: every number is read from the store and tagged measured / simulated /
paper (:data:`sparseattn.report.html.TAG`)."""

from __future__ import annotations

import html
from collections.abc import Callable

from .html import TAG, significant
from .rows import AccuracyRow, CalibrationRow, ClaimRow, HardwareComparison, RunView

PAPERS = ("sofa", "star", "pade")
# Extra summary paragraphs (HTML) from steps that other modules add (e.g. calibration: the most accurate method at
# each loss budget); each reads the store and returns "" when its step has no result.
SUMMARY_HOOKS: list[Callable[[RunView], str]] = []


def is_oracle(method: str) -> bool:
    """An oracle needs the exact scores it is meant to avoid (top-k, threshold, block top-k): a bound, not a
    design; the registry's summary says so."""
    from ..methods.entry import list_methods

    info = list_methods().get(method)
    return bool(info and info.summary.startswith("oracle"))


def pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def times(x: float) -> str:
    """A ratio with three significant digits, never an exponent (0.00612x, 0.711x, 65.5x, 1,090x)."""
    return f"{significant(x)}x"


def claim_anchor(claim: ClaimRow) -> str:
    return f"claim-{html.escape(str(claim.id or claim.text).replace(' ', '-'))}"


# ------------------------------------------------------------------------------------------------ accuracy
def accuracy_front(acc: dict[str, AccuracyRow]) -> list[tuple[str, AccuracyRow]]:
    """The methods (oracles excluded) no other method beats at the same or a lower density: sorted by density, each
    is the most accurate method at its density or below."""
    rows = sorted(((m, r) for m, r in acc.items() if m != "dense" and not is_oracle(m) and r.ppl_change is not None),
                  key=lambda mr: (mr[1].density, mr[1].ppl_change))
    front, best = [], float("inf")
    for m, r in rows:
        if r.ppl_change < best:
            front.append((m, r))
            best = r.ppl_change
    return front


def which_method(view: RunView) -> str:
    acc = view.accuracy()
    front = accuracy_front(acc)
    if not front or "dense" not in acc:
        return "<p><b>Which method.</b> No method besides the oracles has an accuracy result in this run.</p>"
    m = TAG["measured"]
    items = "".join(
        f"<li>density up to {r.density:.3f} {m}: <b>{html.escape(name)}</b>, perplexity {pct(r.ppl_change)} "
        f"{m} vs dense (the exact top-k at that density: {pct(r.oracle.ppl_change) if r.oracle else '-'} {m})</li>"
        for name, r in front)
    dense = acc["dense"]
    return (f"<p><b>Which method.</b> The most accurate method at each density, every layer of "
            f"{html.escape(view.config.model)} sparse on {dense.n_tokens} tokens of {html.escape(dense.text)}"
            f" (no fine-tuning; oracles left out; each method at its default setting):</p><ul>{items}</ul>")


def calibration_rows(view: RunView) -> list[CalibrationRow]:
    """The calibration step's rows (:mod:`sparseattn.report.equal_accuracy`: per method, one row per loss budget),
    if the run has that step; oracles are left out, as in the accuracy summary."""
    return [r for method, rows in view.calibration().items() if not is_oracle(method) for r in rows]


def which_method_per_budget(view: RunView) -> str:
    """At each loss budget, the method that stays within it (on the judged text) at the lowest density."""
    rows = [r for r in calibration_rows(view) if r.judged_on_budget]
    if not rows:
        return ""
    m = TAG["measured"]
    loss = "perplexity" if rows[0].kind == "decoder" else "1 - cosine"
    items = []
    for budget in sorted({r.budget for r in rows}):
        best = min((r for r in rows if r.budget == budget), key=lambda r: r.judge_density)
        items.append(f"<li>{loss} within {100 * budget:+.1f}%: <b>{html.escape(best.method)}</b> at density "
                     f"{best.judge_density:.3f} {m} ({loss} {100 * best.judge_loss:+.1f}% {m} on "
                     f"{html.escape(best.judge_text)})</li>")
    return ("<p><b>At each loss budget</b> (each method calibrated to the budget on one text, judged on another), "
            f"the method that keeps the fewest pairs:</p><ul>{''.join(items)}</ul>")


# ------------------------------------------------------------------------------------------------ papers
def _hardware(view: RunView, arch: str, workload: str = "decoder") -> HardwareComparison | None:
    from .render import hardware_rows

    return next((h for h in hardware_rows(view) if h.row.arch == arch and h.row.workload == workload), None)


def paper_line(view: RunView, paper: str) -> str | None:
    """One line: the paper's method in the model (measured), on its accelerator vs the GPUs (simulated), and its
    claims (paper vs ours)."""
    acc = view.accuracy().get(paper)
    hw = _hardware(view, paper)
    claims = [c for c in view.claims() if c.paper == paper]
    if acc is None and hw is None and not claims:
        return None
    m, s = TAG["measured"], TAG["simulated"]
    parts = []
    if acc is not None and acc.ppl_change is not None:
        parts.append(f"density {acc.density:.3f} {m}, perplexity {pct(acc.ppl_change)} {m}")
    if hw is not None and hw.vs:
        g = max(hw.vs)  # the newest GPU (h100 after a100)
        v = hw.vs[g]
        vs = f"{times(v.speedup)} the {g.upper()}'s speed {s}, {times(v.energy)} its energy efficiency {s}"
        parts.append(f"its accelerator on {html.escape(hw.row.shape)} at {hw.row.seq} tokens: {vs}")
    if claims:
        n = sum(c.within_25pct for c in claims)
        parts.append(f'<a href="#the-papers-headline-claims">{n} of {len(claims)} headline claims</a> within '
                     "±25%")
    return f"<li><b>{paper.upper()}</b>: " + "; ".join(parts) + ".</li>"


def which_accelerator(view: RunView) -> str:
    """The fastest and the most frugal accelerator on each workload (each running its own method's trace)."""
    from .render import hardware_rows

    s = TAG["simulated"]
    items = []
    for workload in ("decoder", "encoder"):
        rows = [h.row for h in hardware_rows(view) if h.row.workload == workload]
        if not rows:
            continue
        fast = min(rows, key=lambda r: r.latency_ms)
        frugal = min(rows, key=lambda r: r.energy_mj)
        items.append(f"<li>{workload} traces on {html.escape(fast.shape)} at {fast.seq} tokens: fastest "
                     f"<b>{html.escape(fast.arch)}</b> ({significant(fast.latency_ms)} ms {s}), least energy "
                     f"<b>{html.escape(frugal.arch)}</b> ({significant(frugal.energy_mj)} mJ {s})</li>")
    if not items:
        return ""
    return ("<p><b>Which accelerator.</b> Each accelerator running its own method's traces, one attention "
            f"prefill of every layer:</p><ul>{''.join(items)}</ul>")


def papers(view: RunView) -> str:
    lines = [line for p in PAPERS if (line := paper_line(view, p))]
    if not lines:
        return ""
    return "<p><b>Each paper, simulated.</b></p><ul>" + "".join(lines) + "</ul>"


def _why(claim: ClaimRow, limit: int = 160) -> str:
    """The first reason a claim misses (its derivation, else its evaluation method), cut at ``limit`` characters
    (the whole derivation is one click away)."""
    texts = [*claim.derivation, claim.method]
    text = next((x for x in texts if x), "")
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def claims_verdict(view: RunView) -> str:
    claims = view.claims()
    if not claims:
        why = ("this quick run does not recompute them" if view.config.quick
               else "this run was configured without them")
        return (f"<p><b>Do the papers hold.</b> The papers' headline claims are not in this report: {why} (run "
                "<code>sparseattn run</code> without <code>--quick</code>, or <code>sparseattn reproduce</code>).</p>")
    within = [c for c in claims if c.within_25pct]
    misses = "".join(
        f'<li><a href="#{claim_anchor(c)}">{c.paper.upper()}, {html.escape(c.text)}</a>: ours '
        f"{times(c.ours)} {TAG['simulated']} vs the paper's {times(c.paper_value)} {TAG['quoted']}. "
        f"{html.escape(_why(c))}</li>" for c in claims if not c.within_25pct)
    return (f"<p><b>Do the papers hold.</b> {len(within)} of {len(claims)} headline claims land within ±25% when "
            "evaluated as each paper evaluated them. The misses, with the first reason each (the link opens the "
            f"claim's derivation):</p><ul>{misses}</ul>")


# ------------------------------------------------------------------------------------------------ GPUs
def gpu_reconciliation(view: RunView) -> str:
    """The sentence that reconciles the hardware table (a ~5 mm² accelerator vs a whole H100 running FlashAttention)
    with the claims (vs eager PyTorch on the A100, as the papers measured); "" when neither comparison is here."""
    from ..hw import load_arch

    s, q = TAG["simulated"], TAG["quoted"]
    for paper in PAPERS:
        hw = _hardware(view, paper)
        if hw is None or not hw.vs:
            continue
        gpu = sorted(hw.vs)[-1]
        clock = getattr(load_arch(hw.row.arch), "clock_mhz", None)
        size = f"{hw.row.area_mm2:.3g} mm² {s}" + (f", {clock / 1000:.3g} GHz" if clock else "")
        text = (f"Two GPU comparisons appear in this report and answer different questions. In the table of "
                f"accelerators against GPUs, {paper.upper()}'s accelerator ({size}) runs the same attention as a "
                f"whole {gpu.upper()} running FlashAttention and reaches {times(hw.vs[gpu].speedup)} its "
                f"speed {s}.")
        claim = next((c for c in view.claims() if c.id.startswith(f"{paper}_speed_vs")), None)
        if claim is not None:
            text += (f" The papers' claims compare, as the papers did, with unfused eager PyTorch attention on a GPU "
                     f"({html.escape(claim.text)}): there ours is {times(claim.ours)} {s} against the paper's "
                     f"{times(claim.paper_value)} {q}. The gap between the two is the GPU baseline, not the "
                     "accelerator.")
        return f"<p class='note'>{text}</p>"
    return ""


def summary_section(view: RunView) -> str:
    """The whole first section of the report."""
    hooks = "".join(h(view) for h in SUMMARY_HOOKS)
    return (which_method(view) + which_method_per_budget(view) + hooks + which_accelerator(view) + papers(view)
            + claims_verdict(view) + gpu_reconciliation(view))
