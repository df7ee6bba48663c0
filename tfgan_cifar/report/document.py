"""The report as a document written twice, as Markdown and as LaTeX, and its PDF."""

import contextlib
import os
import shutil
import subprocess

from tfgan_cifar.atomic import write_text

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "±": r"$\pm$",
    "×": r"$\times$", "–": "--", "−": "$-$", "…": r"\ldots{}",
    "/": r"/\allowbreak{}",  # long paths may break after a slash instead of running over
}

_TEX_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage[margin=2cm]{geometry}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage{float}
\title{%s}
\date{}
\begin{document}
\maketitle
"""


class Document:
    """Builds report.md and report.tex in the folder `out` side by side, section by section."""

    def __init__(self, out):
        self.out = out
        self.md, self.tex = [], []

    def section(self, title):
        """A section headed `title`."""
        self.md += [f"## {title}", ""]
        self.tex += [rf"\section{{{latex_escape(title)}}}", ""]

    def paragraph(self, text):
        """A paragraph of plain text."""
        self.md += [text, ""]
        self.tex += [latex_escape(text), ""]

    def bullets(self, items):
        """A bulleted list of plain text items."""
        self.md += [f"- {item}" for item in items] + [""]
        self.tex += [r"\begin{itemize}"] + [rf"\item {latex_escape(i)}" for i in items]
        self.tex += [r"\end{itemize}", ""]

    def table(self, header, rows, align=None):
        """A table of plain text cells; `align` is LaTeX's column spec (default: all "l")."""
        self.md += _md_table(header, rows) + [""]
        self.tex += _tex_table(header, rows, align or "l" * len(header)) + [""]

    def images(self, items, per_row):
        """Images side by side, `per_row` to a row; items are (title, path or None, caption)
        with paths of files under `out`."""
        items = [(title, self._relative(path), caption) for title, path, caption in items]
        self.md += _md_images(items, per_row)
        self.tex += _tex_images(items, per_row) + [""]

    def write(self, title):
        """Writes `<out>/report.md` and `<out>/report.tex`; returns their paths."""
        markdown = os.path.join(self.out, "report.md")
        latex = os.path.join(self.out, "report.tex")
        write_text(markdown, "\n".join([f"# {title}", ""] + self.md).rstrip() + "\n")
        write_text(latex, _TEX_PREAMBLE % latex_escape(title) + "\n".join(self.tex)
                   + "\n\\end{document}\n")
        return markdown, latex

    def _relative(self, path):
        return os.path.relpath(path, self.out).replace(os.sep, "/") if path else None


def latex_escape(text):
    """`text` with LaTeX's special characters escaped, safe inside a paragraph or a cell.

    "--" stays two hyphens (as in --flag) rather than becoming an en dash.
    """
    text = str(text)
    return "".join("-{}" if c == "-" and text[i + 1:i + 2] == "-" else _LATEX_SPECIAL.get(c, c)
                   for i, c in enumerate(text))


def markdown_escape(text):
    """`text` safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header, rows):
    lines = ["| " + " | ".join(markdown_escape(h) for h in header) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(markdown_escape(c) for c in row) + " |" for row in rows]
    return lines


def _md_images(items, per_row):
    """Images side by side: a table per `per_row` items; items are (title, path, caption)."""
    lines = []
    for start in range(0, len(items), per_row):
        chunk = items[start:start + per_row]
        lines += ["| " + " | ".join(markdown_escape(t) for t, _, _ in chunk) + " |",
                  "|" + "|".join(" :---: " for _ in chunk) + "|",
                  "| " + " | ".join(f"![{os.path.splitext(os.path.basename(p))[0]}]({p})"
                                    if p else "(none)" for _, p, _ in chunk) + " |",
                  "| " + " | ".join(markdown_escape(c) for _, _, c in chunk) + " |", ""]
    return lines


def _tex_table(header, rows, align):
    # about 100 characters of \small text fit the line: shrink wider tables to fit
    wide = sum(max(len(str(c)) + 2 for c in column) for column in zip(header, *rows)) > 100
    lines = [r"\begin{table}[H]", r"\centering", r"\small"]
    if wide:
        lines.append(r"\resizebox{\linewidth}{!}{%")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
              " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}" + ("}" if wide else ""), r"\end{table}"]
    return lines


def _tex_images(items, per_row):
    """One figure per row of images, so that rows can go to the next page; no image is taller
    than 40% of the page, so that a row and its captions always fit on one."""
    width = 0.96 / per_row
    lines = []
    for start in range(0, len(items), per_row):
        lines += [r"\begin{figure}[H]", r"\centering"]
        for title, path, caption in items[start:start + per_row]:
            lines.append(rf"\begin{{minipage}}[t]{{{width:.2f}\linewidth}}\centering")
            if path:
                lines.append(r"\includegraphics[width=\linewidth,height=0.4\textheight,"
                             rf"keepaspectratio]{{{path}}}\\")
            lines.append(rf"\small\textbf{{{latex_escape(title)}}}: {latex_escape(caption)}")
            lines.append(r"\end{minipage}\hfill")
        lines.append(r"\end{figure}")
    return lines


def compile_pdf(latex):
    """Runs pdflatex on `latex` if it is installed; returns the PDF's path or None.

    Prints one line when pdflatex is missing or fails.
    """
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        print(f"pdflatex not found: wrote {latex} without a PDF (compile it with pdflatex)",
              flush=True)
        return None
    folder, name = os.path.split(os.path.abspath(latex))
    try:
        result = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", name],
                                cwd=folder, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        result = None
    pdf = os.path.join(folder, os.path.splitext(name)[0] + ".pdf")
    if result is None or result.returncode != 0 or not os.path.exists(pdf):
        log = os.path.splitext(latex)[0] + ".log"
        print(f"pdflatex failed on {latex} (see {log}): no PDF written", flush=True)
        return None
    for extension in (".aux", ".log"):  # pdflatex's side files, kept only when it fails
        with contextlib.suppress(OSError):
            os.remove(os.path.splitext(pdf)[0] + extension)
    return pdf
