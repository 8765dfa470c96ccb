"""What every console page must pass on a phone-width screen and from the keyboard, checked in the
browser: no sideways scroll, a `lang`, one `<main>` with a skip link to it, a label for every field
and a name for every link and button, no positive tabindex, and a Tab walk that reaches every link,
button and field in reading order, each one showing a focus outline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WALK_LIMIT = 150
"""Tab stops walked per page. The operator's account list grows with every test of a run sharing
the database; its first rows stand for the rest (the same template renders them)."""

STATIC_AUDIT = """() => {
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.getAttribute('name') ? '[name=' + el.getAttribute('name') + ']' : '')
    + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '')
    + ' "' + (el.textContent || el.value || '').trim().replace(/\\s+/g, ' ').slice(0, 30) + '"';
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden' && !el.closest('[inert]');
  };
  // What sticks out to the right of a phone's screen, outside any sideways scroller of its own.
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(up).overflowX)) return true;
    }
    return false;
  };
  // An element past the right edge, or one whose text runs out of it (a long word in a heading).
  const wide = [...document.body.querySelectorAll('*')]
    .filter((el) => !el.matches('.skip') && !clipped(el) && (el.getBoundingClientRect().right > innerWidth + 0.5
      || (getComputedStyle(el).overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0)))
    .map(describe);
  const fields = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(shown);
  const unlabelled = fields.filter((el) => !(el.labels && [...el.labels].some((l) => l.textContent.trim()))
    && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')).map(describe);
  const nameless = [...document.querySelectorAll('a[href], button')].filter(shown)
    .filter((el) => !(el.textContent.trim() || el.getAttribute('aria-label') || el.getAttribute('title')))
    .map(describe);
  const positive = [...document.querySelectorAll('[tabindex]')].filter((el) => el.tabIndex > 0).map(describe);
  // The stops a keyboard must reach, numbered in document order. A radio group is one stop.
  const stops = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
    .filter((el) => !el.disabled && shown(el) && !(el.type === 'radio' && !el.checked));
  stops.forEach((el, i) => { el.dataset.kb = String(i); });
  const mains = document.querySelectorAll('main, [role=main]');
  const skip = document.querySelector('a.skip');
  return {
    lang: document.documentElement.lang,
    scrollWidth: document.documentElement.scrollWidth,
    viewport: innerWidth,
    wide: wide.slice(-8),
    mains: mains.length,
    skipTarget: skip ? (document.querySelector(skip.getAttribute('href')) || {}).tagName || null : null,
    unlabelled, nameless, positive,
    stops: stops.map(describe),
    // Tab stops that are not in the list: scrolling boxes, players, and a date field's day, month and year.
    extra: document.querySelectorAll('.scroll, video, iframe, details').length
      + 3 * document.querySelectorAll('input[type=date], input[type=time], input[type=datetime-local]').length,
  };
}"""

RECORD_FOCUS = """() => {
  window.__stops = [];
  document.addEventListener('focusin', (event) => {
    const el = event.target;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    window.__stops.push({
      kb: el.dataset ? el.dataset.kb ?? null : null,
      tag: el.tagName,
      text: (el.textContent || '').trim().slice(0, 40),
      href: el.getAttribute ? el.getAttribute('href') : null,
      outline: (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== 'none',
      sized: box.width > 0 && box.height > 0,
    });
  }, true);
}"""


@dataclass
class Audit:
    """What one page got wrong (an empty list of problems is a pass)."""

    page: str
    problems: list[str]

    def __str__(self) -> str:
        return f"{self.page}:\n  " + "\n  ".join(self.problems)

    def check(self) -> None:
        if self.problems:
            raise AssertionError(str(self))


def to_top(tab: Any) -> None:
    """Move the keyboard's starting point back to the top of the page, as a fresh load has it."""
    tab.evaluate("document.body.tabIndex = -1; document.body.focus(); document.body.removeAttribute('tabindex')")


def audit_page(tab: Any, name: str) -> Audit:
    """Run every check on the page the tab shows (freshly loaded: focus is still at its top)."""
    found: dict[str, Any] = tab.evaluate(STATIC_AUDIT)
    problems: list[str] = []
    if not found["lang"]:
        problems.append("<html> has no lang")
    if found["scrollWidth"] > found["viewport"]:
        problems.append(f"scrolls sideways: {found['scrollWidth']} px wide at {found['viewport']} px; {found['wide']}")
    if found["mains"] != 1:
        problems.append(f"{found['mains']} <main> landmarks")
    if found["skipTarget"] != "MAIN":
        problems.append(f"the skip link leads to {found['skipTarget']}, not <main>")
    for key, what in (("unlabelled", "fields without a label"), ("nameless", "links/buttons without a name")):
        if found[key]:
            problems.append(f"{what}: {found[key]}")
    if found["positive"]:
        problems.append(f"positive tabindex (reorders the Tab walk): {found['positive']}")
    problems += _walk(tab, found["stops"], found["extra"])
    return Audit(name, problems)


def _walk(tab: Any, stops: list[str], extra: int) -> list[str]:
    """Press Tab from the top of the page and see where the focus goes."""
    wanted = min(len(stops), WALK_LIMIT)
    tab.evaluate(RECORD_FOCUS)
    for _ in range(wanted + extra + 1):
        tab.keyboard.press("Tab")
    visited: list[dict[str, Any]] = tab.evaluate("window.__stops")
    problems: list[str] = []
    if not visited or visited[0]["text"] != "Skip to content":
        problems.append(f"the first Tab stop is {visited[:1]}, not the skip link")
    order: list[int] = []
    for stop in visited:
        if stop["kb"] is not None and int(stop["kb"]) not in order:
            order.append(int(stop["kb"]))
    reached = [i for i in order if i < wanted]
    missed = sorted(set(range(wanted)) - set(reached))
    if missed:
        problems.append(f"Tab never reaches: {[stops[i] for i in missed[:10]]}")
    if reached != sorted(reached):
        problems.append(f"Tab order differs from the reading order: {[stops[i] for i in reached[:20]]}")
    unmarked = [s for s in visited if s["tag"] not in ("VIDEO", "AUDIO") and not (s["outline"] and s["sized"])]
    if unmarked:
        problems.append(f"focus without a visible outline: {unmarked[:5]}")
    return problems
