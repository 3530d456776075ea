"""axe-core in a Playwright page: `assert_accessible(page)` runs it over what the page shows now and fails with a
readable list of each serious or critical violation (rule, what it asks for, where, the HTML).

axe-core comes from npm (package.json pins it, `make test` installs it with `npm ci`); tests that use it are marked
`axe`, so conftest skips them, or fails them under SHOP_REQUIRE_SERVICES=1, when it is missing."""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import AXE_JS

# WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = ("serious", "critical")
ALL = ("minor", "moderate", "serious", "critical")


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    url: str
    nodes: tuple[tuple[str, str, str], ...]  # (target selectors, HTML snippet, axe's summary of what to fix)

    def describe(self) -> str:
        lines = [f"[{self.impact}] {self.rule}: {self.help} ({self.url})"]
        for target, html, summary in self.nodes:
            lines.append(f"    at {target}")
            lines.append(f"       {html}")
            if summary:
                lines.append("       " + summary.replace("\n", "\n       "))
        return "\n".join(lines)


def axe_violations(page, *, impacts: tuple[str, ...] = BLOCKING) -> list[Violation]:
    """axe.run over the whole document with TAGS; the violations of the given impacts."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return r.violations.map(v => ({
                rule: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                nodes: v.nodes.map(n => [n.target.map(t => [].concat(t).join(" >> ")).join(", "),
                                          n.html.slice(0, 300), n.failureSummary || ""]),
            }));
        }""",
        TAGS,
    )
    return [
        Violation(
            rule=v["rule"],
            impact=v["impact"] or "",
            help=v["help"],
            url=v["url"],
            nodes=tuple(tuple(n) for n in v["nodes"]),
        )
        for v in result
        if v["impact"] in impacts
    ]


def broken_references(page) -> list[Violation]:
    """aria-describedby, aria-labelledby and aria-controls naming an id the page does not have (axe leaves these
    to review, since a script might add the element later; in this shop nothing does)."""
    found = page.evaluate(
        """() => {
            const bad = [];
            for (const name of ["aria-describedby", "aria-labelledby", "aria-controls"]) {
                for (const el of document.querySelectorAll(`[${name}]`)) {
                    const ids = el.getAttribute(name).split(/\\s+/);
                    const missing = ids.filter(id => id && !document.getElementById(id));
                    if (missing.length) {
                        const target = el.id ? "#" + el.id : el.tagName.toLowerCase();
                        const html = el.outerHTML.slice(0, 300);
                        bad.push([name, target, html, "no element with id " + missing.join(", ")]);
                    }
                }
            }
            return bad;
        }"""
    )
    return [
        Violation(
            rule="idref",
            impact="serious",
            help=f"{name} must name elements on the page",
            url="",
            nodes=((target, html, summary),),
        )
        for name, target, html, summary in found
    ]


def assert_accessible(page, what: str = "") -> None:
    """Fail listing every serious or critical axe-core violation on the page as it is now."""
    violations = axe_violations(page) + broken_references(page)
    if violations:
        where = what or page.url
        count = sum(len(v.nodes) for v in violations)
        report = "\n".join(v.describe() for v in violations)
        raise AssertionError(f"{where}: {count} serious or critical accessibility problem(s) (axe-core)\n{report}")
