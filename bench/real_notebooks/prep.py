"""Make untagged.ipynb (original + necessary substitutions) and tagged.ipynb (stage tags as a researcher
following the irt_nb README would add them) in each /tmp/realnb/nb/<name>/ folder.
Cell numbers are 1-based over all cells (markdown included), as irt-nb reports them."""

import json
import sys
from pathlib import Path

NB = Path("/tmp/realnb/nb")

# (cell, old, new): the only code changes; each is listed in the report
SUBSTITUTIONS = {
    "titanic": [(4, "'/content/Titanic-Dataset.csv'", "'Titanic-Dataset.csv'")],  # Colab path -> repo file beside it
    "heart": [
        (5, "pd.set_option('precision', 2)", "pd.set_option('display.precision', 2)"),  # pandas>=1.4: 'precision' ambiguous
        (6, 'path = "..\\\\Data Sets\\\\heart.csv"', 'path = "heart.csv"'),  # Windows path -> repo's Data/heart_disease_data_raw.csv
        (54, "pd.reset_option('precision')", "pd.reset_option('display.precision')"),
    ],
}
# variant heart_enabled: the author's note (cell 1) says "Comment out the magic to run these cells again";
# plus the author's NameError model1 -> model_full (cell 51), else the notebook cannot run end to end
HEART_ENABLE = [(51, "model1['columns']", "model_full['columns']")]

TAGS = {
    "iris": {3: "preparation", 7: "processing"},
    "titanic": {4: "preparation", 6: "processing", 7: "processing", 8: "processing", 10: "processing",
                11: "processing", 12: "processing", 13: "processing", 14: "calculation", 16: "calculation"},
    "bfi": {2: "preparation", 4: "processing", 5: "processing", 8: "calculation", 10: "calculation",
            14: "calculation", 18: "calculation", 19: "calculation", 22: "calculation"},
    "heart": {6: "preparation", 8: "processing", 13: "processing", 14: "processing", 16: "processing",
              18: "processing", 19: "processing", 25: "processing", 28: "processing", 29: "processing",
              54: "processing"},
    "heart_enabled": {6: "preparation", 8: "processing", 13: "processing", 14: "processing", 16: "processing",
                      18: "processing", 19: "processing", 25: "processing", 28: "processing", 29: "processing",
                      45: "calculation", 47: "calculation", 51: "calculation", 54: "calculation", 55: "calculation"},
    "raschpy": {2: "preparation", 4: "preparation", 9: "preparation", 11: "preparation", 17: "processing",
                19: "calculation", 23: "calculation", 25: "calculation", 29: "calculation", 35: "calculation",
                39: "calculation"},
    "girth": {3: "preparation", 5: "calculation", 7: "calculation", 9: "calculation", 11: "calculation",
              13: "calculation", 15: "calculation", 17: "preparation", 18: "calculation", 19: "calculation",
              20: "calculation"},
}


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def substitute(nb, subs):
    for number, old, new in subs:
        cell = nb["cells"][number - 1]
        text = source(cell)
        assert old in text, (number, old, text[:200])
        cell["source"] = text.replace(old, new)


def tag(nb, tags):
    for number, stage in tags.items():
        cell = nb["cells"][number - 1]
        assert cell["cell_type"] == "code", number
        lines = source(cell).split("\n")
        at = 1 if lines[0].startswith("%%") else 0  # below a cell magic, as the README says
        lines.insert(at, f"#| stage {stage}")
        cell["source"] = "\n".join(lines)


def write(nb, path):
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def main(names):
    for name in names:
        folder = NB / name
        base = "heart" if name == "heart_enabled" else name
        nb = json.loads((NB / base / "original.ipynb").read_text())
        substitute(nb, SUBSTITUTIONS.get(base, []))
        if name == "heart_enabled":
            substitute(nb, HEART_ENABLE)
            for cell in nb["cells"]:
                if cell["cell_type"] == "code" and source(cell).startswith("%%script false"):
                    cell["source"] = "# " + source(cell)  # the author's own instruction
            folder.mkdir(exist_ok=True)
            (folder / "heart.csv").write_bytes((NB / "heart/heart.csv").read_bytes())
            (folder / "Data").mkdir(exist_ok=True)
        write(nb, folder / "untagged.ipynb")
        tag(nb, TAGS[name])
        write(nb, folder / "tagged.ipynb")
        print(name, "->", folder / "tagged.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:] or list(TAGS))
