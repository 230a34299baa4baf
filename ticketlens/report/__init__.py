"""Report layer: one self-contained HTML file of plotly figures drawn from analysis results."""
