"""Tables and figures for results (markdown for the README, PNG plots)."""

from .figures import plot_perplexity_vs_density
from .tables import markdown_table, perplexity_rows_markdown

__all__ = ["markdown_table", "perplexity_rows_markdown", "plot_perplexity_vs_density"]
