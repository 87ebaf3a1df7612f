"""Render the README, the pages under docs/ and every notebook into a browsable site (`make docs`).

    python docs/build.py [--out _docs]

The README becomes index.html, docs/NAME.md becomes NAME.html, nbs/PART/NAME.ipynb becomes nbs/PART/NAME.html
(nbs/reports/ too), each page with the same navigation. Links between them are rewritten to the
rendered pages (.md -> .html, .ipynb -> .html). Markdown goes through mistune (installed with the
project), and a notebook is its markdown cells as prose and its code cells as code: quarto, nbdev's own
renderer, cannot be downloaded here, and nbconvert's exporter took 12 of the build's 13 seconds.
Notebooks are rendered as stored (the repository keeps them without outputs): prose, mathematics and
code; `nbdev-test` is what executes them. The mathematics stays as TeX source: the site loads
nothing from other sites.
"""

import argparse
import html
import json
import re
import shutil
from pathlib import Path

import mistune

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = mistune.create_markdown(plugins=["table", "strikethrough"], escape=False)
STYLE = """body{font-family:system-ui,sans-serif;margin:0;display:flex}
nav{width:17rem;min-width:17rem;height:100vh;overflow:auto;position:sticky;top:0;background:#f6f7f9;
padding:1rem;font-size:.9rem;box-sizing:border-box}nav h3{margin:1rem 0 .3rem}nav a{display:block;
padding:.1rem 0;color:#1f4e9c;text-decoration:none}main{max-width:60rem;padding:1rem 2rem;overflow:auto}
pre{background:#f6f7f9;padding:.6rem;overflow:auto}code{font-size:.9em}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;vertical-align:top}
pre.code{border-left:3px solid #1f4e9c}pre.output{background:#fff;border-left:3px solid #aaa}"""


def title_of(path: Path) -> str:
    "The first heading of a page or notebook (its file name when it has none)."
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    found = re.search(r"^#\s+(.+)$", text, re.M)
    return found.group(1).strip() if found else path.stem


def pages() -> list[tuple[Path, str]]:
    "(source, page path in the site) of everything the site renders."
    found = [(ROOT / "README.md", "index.html")]
    found += [(p, f"{p.stem}.html") for p in sorted((ROOT / "docs").glob("*.md"))]
    for folder in (
        "nbs",
        "nbs/science",
        "nbs/serving",
        "nbs/serving/api",
        "nbs/workbench",
        "nbs/workbench/commands",  # the command groups of irt-nb
        "nbs/reports",
    ):
        found += [(p, f"{folder}/{p.stem}.html") for p in sorted((ROOT / folder).glob("*.ipynb"))]
    return found


def site_link(target: str, source: Path, site: dict[Path, str], here: str) -> str:
    "A link of a page, rewritten to the rendered page when it points at one (else left alone)."
    if re.match(r"^[a-z]+:|^#", target):
        return target
    path, _, anchor = target.partition("#")
    resolved = (source.parent / path).resolve()
    if resolved not in site:
        return target
    depth = here.count("/")
    return "../" * depth + site[resolved] + (f"#{anchor}" if anchor else "")


def navigation(site: dict[Path, str], titles: dict[Path, str], here: str) -> str:
    "The sidebar: the front page, the docs pages, then the notebooks."
    up = "../" * here.count("/")
    groups = {
        "irt_nb": [],
        "The science": [],
        "The serving": [],
        "The workbench": [],
        "Report notebooks": [],
    }
    folders = {"science": "The science", "serving": "The serving", "workbench": "The workbench"}
    for source, page in site.items():
        folder = page.split("/")[1] if page.count("/") >= 2 else ""  # nbs/PART/[SUB/]NAME.html
        group = (
            "Report notebooks"
            if folder == "reports"
            else folders.get(folder, "irt_nb")
        )
        groups[group].append(f'<a href="{up}{page}">{html.escape(titles[source])}</a>')
    return "".join(f"<h3>{name}</h3>{''.join(links)}" for name, links in groups.items())


def notebook_html(source: Path) -> str:
    "A notebook as a chapter: markdown cells as prose, code cells as code, outputs (if stored) as text."
    parts = []
    for cell in json.loads(source.read_text(encoding="utf-8"))["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(MARKDOWN(text))
        elif cell["cell_type"] == "code" and text.strip():
            parts.append(f'<pre class="code"><code>{html.escape(text)}</code></pre>')
            for output in cell.get("outputs", []):
                shown = output.get("text") or output.get("data", {}).get("text/plain", "")
                if shown:
                    parts.append(f'<pre class="output">{html.escape("".join(shown))}</pre>')
    return "\n".join(parts)


def render(source: Path, here: str, site: dict[Path, str]) -> str:
    "The page's HTML body, its links rewritten."
    if source.suffix == ".ipynb":
        body = notebook_html(source)
    else:
        body = MARKDOWN(source.read_text(encoding="utf-8"))
    return re.sub(
        r'href="([^"]+)"',
        lambda m: f'href="{html.escape(site_link(html.unescape(m.group(1)), source, site, here))}"',
        body,
    )


def build(out: Path) -> list[Path]:
    "Write the site into `out` (replaced); the pages written."
    if out.exists():
        shutil.rmtree(out)
    site = {source.resolve(): page for source, page in pages()}
    titles = {
        source: title_of(source) for source in site
    }  # read once: every page's sidebar lists them
    written = []
    for source, page in site.items():
        body = render(source, page, site)
        target = out / page
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(titles[source])} · irt_nb</title><style>{STYLE}</style>"
            f"</head><body><nav>{navigation(site, titles, page)}</nav><main>{body}</main></body></html>",
            encoding="utf-8",
        )
        written.append(target)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_docs")
    args = parser.parse_args()
    written = build(args.out)
    print(f"{len(written)} pages in {args.out}: open {args.out / 'index.html'}")
